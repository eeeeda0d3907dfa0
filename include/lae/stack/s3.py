"""The local S3: S3Proxy 4 serving a plain directory (its filesystem-nio2 blob store).

Runs ``org.gaul.s3proxy.Main`` from the jars ``scripts/fetch-jars.sh`` resolved
(``$LAE_JARS_DIR/s3proxy``). Buckets are directories under ``<service dir>/data``, so objects
survive ``down``/``up``. ``prepare`` rewrites the properties and logback config on every start.
"""

from __future__ import annotations

from pathlib import Path

from lae.health import s3_put_get
from lae.s3 import s3_client
from lae.stack.base import Service
from lae.stack.process import ServiceError, port_open

# Objects are written to and read back from here by the health check only.
HEALTH_BUCKET = "lae-health"

_LOGBACK = """\
<!-- Written by lae.stack.s3: INFO to stdout, which the stack appends to s3.log. Without a
     config logback falls back to DEBUG for everything, including each request's headers. -->
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>[%d{ISO8601}] %-5level %msg \\(%logger{36}\\)%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


class S3Service(Service):
    name = "s3"
    start_timeout = 60.0

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def config_file(self) -> Path:
        return self.dir / "s3proxy.properties"

    @property
    def logback_file(self) -> Path:
        return self.dir / "logback.xml"

    def ports(self) -> list[int]:
        return [self.settings.s3_port]

    def properties(self) -> dict[str, str]:
        return {
            "s3proxy.endpoint": self.settings.s3_endpoint,
            # No authentication: the endpoint binds 127.0.0.1 only and holds local test data,
            # and it spares every client (boto3, s3a, Airflow's aws_default) a shared secret.
            # Clients still sign with the placeholder keys from Settings; S3Proxy ignores them.
            # A deployment points the same code at AWS S3 or a secured store instead.
            "s3proxy.authorization": "none",
            # S3Proxy's NIO.2 filesystem store (jclouds' "filesystem" provider is deprecated).
            # A directory per bucket, a file per object, metadata in extended attributes.
            "jclouds.provider": "filesystem-nio2",
            # AWS SDKs >= 2.30 / botocore >= 1.36 add x-amz-checksum-* headers (e.g. to S3A's
            # bulk DeleteObjects); S3Proxy answers 501 NotImplemented to headers it does not
            # know unless told to ignore them.
            "s3proxy.ignore-unknown-headers": "true",
            "jclouds.filesystem.basedir": str(self.data_dir),
            # Unused by the filesystem provider, but jclouds requires both to be set.
            "jclouds.identity": self.settings.s3_access_key,
            "jclouds.credential": self.settings.s3_secret_key,
        }

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            "# Written by lae.stack.s3 on every start; edit the settings, not this file.\n"
            + "".join(f"{k}={v}\n" for k, v in self.properties().items())
        )
        self.logback_file.write_text(_LOGBACK)

    def command(self) -> tuple[list[str], dict[str, str]]:
        jars = self.settings.jars_dir / "s3proxy"
        if not (jars / ".complete").exists():
            raise ServiceError(
                f"{self.name}: jars missing in {jars}; run scripts/fetch-jars.sh. "
                f"Log: {self.log_file}"
            )
        argv = [
            "java", "-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlogback.configurationFile={self.logback_file}",
            "-cp", f"{jars}/*",
            "org.gaul.s3proxy.Main", "--properties", str(self.config_file),
        ]
        return argv, {}

    def healthy(self) -> bool:
        """Put, read back and delete a small object in the health bucket."""
        if not port_open(self.settings.host, self.settings.s3_port):
            return False  # not listening yet; skip boto3's connect retries
        client = s3_client(self.settings)
        _ensure_bucket(client, HEALTH_BUCKET)
        s3_put_get(client, HEALTH_BUCKET)
        return True

    def provision(self) -> None:
        _ensure_bucket(s3_client(self.settings), self.settings.bucket)


def _ensure_bucket(client, bucket: str) -> None:
    """Create ``bucket`` unless it exists (idempotent, also under concurrent callers)."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
