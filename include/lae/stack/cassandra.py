"""A single-node Cassandra 5.0 run from the Maven Central jars in ``.lae/jars/cassandra``.

No tarball and no ``bin/cassandra`` script: the JVM is started directly with the options that
Cassandra's own ``conf/jvm-server.options``, ``conf/jvm17-server.options`` and
``cassandra-env.sh`` would give it, trimmed for a 2-core development machine. ``prepare`` writes
``cassandra.yaml`` and ``logback.xml`` into the service dir from templates kept next to this
module; data, commit log and hints live under the service dir so they survive down/up.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from string import Template

from lae.stack.base import Service
from lae.stack.process import ServiceError, port_open

_CONF = Path(__file__).with_name("conf")
MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"

# From conf/jvm17-server.options (Cassandra 5.0): Cassandra reaches into JDK internals
# (Unsafe, direct buffers, JMX, attach for jamm) and fails at start-up without these.
JPMS_OPTIONS = [
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
]

# G1 and Netty settings from jvm17-server.options, general ones from jvm-server.options.
# Left out on purpose: -XX:+AlwaysPreTouch (touches the whole heap at start: slower start and
# the full heap resident even when idle) and -XX:+UseNUMA (no NUMA on a laptop).
JVM_OPTIONS = [
    "-ea",
    "-da:net.openhft...",  # chronicle asserts run out of memory by design (upstream note)
    "-XX:+UseThreadPriorities",
    "-Xss256k",
    "-XX:+UseTLAB",
    "-XX:+ResizeTLAB",
    "-XX:+PerfDisableSharedMem",
    "-Djava.net.preferIPv4Stack=true",
    "-XX:+UseG1GC",
    "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1",
    "-XX:G1HeapRegionSize=16m",
    "-XX:G1RSetUpdatingPauseTimePercent=5",
    "-XX:MaxGCPauseMillis=300",
    "-XX:InitiatingHeapOccupancyPercent=70",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
]

# Start-up shortcuts that are safe for a lone seed node: there are no peers to wait for.
FAST_START_OPTIONS = [
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.ring_delay_ms=1000",
    "-Dcassandra.superuser_setup_delay_ms=0",
]


def _initial_heap(heap: str) -> str:
    """256 MiB, or the whole heap when that is smaller ("1G" -> "256m", "128m" -> "128m")."""
    units = {"k": 1 / 1024, "m": 1, "g": 1024}
    try:
        mib = float(heap[:-1]) * units[heap[-1].lower()]
    except (KeyError, ValueError):
        return heap  # unusual spelling: let the JVM judge it, same as -Xmx
    return heap if mib <= 256 else "256m"


class CassandraService(Service):
    name = "cassandra"
    # Healthy in ~9 s on an idle 2-core machine, ~30 s when the rest of the stack is busy.
    start_timeout = 180.0

    @property
    def jars_dir(self) -> Path:
        return self.settings.jars_dir / "cassandra"

    def ports(self) -> list[int]:
        s = self.settings
        return [s.cassandra_port, s.cassandra_storage_port, s.cassandra_jmx_port]

    def prepare(self) -> None:
        if not any(self.jars_dir.glob("cassandra-all-*.jar")):
            raise ServiceError(
                f"cassandra: no jars in {self.jars_dir}; run scripts/fetch-jars.sh first"
            )
        for sub in ("data", "logs", "triggers"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        s = self.settings
        values = {
            "host": s.host,
            "storage_port": s.cassandra_storage_port,
            "native_port": s.cassandra_port,
            "data_dir": self.dir / "data",
            "log_dir": self.dir / "logs",
        }
        # Rewritten on every start (cheap) so a change of LAE_* ports takes effect; the data
        # directories keep their contents.
        for name in ("cassandra.yaml", "logback.xml"):
            template = Template((_CONF / f"{name}.tmpl").read_text())
            (self.dir / name).write_text(template.substitute(values))

    def command(self) -> tuple[list[str], dict[str, str]]:
        s = self.settings
        java = shutil.which("java") or "java"
        jamm = sorted(self.jars_dir.glob("jamm-*.jar"))
        argv = [
            java,
            # Upstream sets -Xms = -Xmx to avoid resize pauses; a dev node instead starts small
            # and lets idle G1 cycles hand unused heap back, so an idle node stays light.
            f"-Xms{_initial_heap(s.cassandra_heap)}",
            f"-Xmx{s.cassandra_heap}",
            "-XX:G1PeriodicGCInterval=30000",
            *JVM_OPTIONS,
            *JPMS_OPTIONS,
            *FAST_START_OPTIONS,
            # cassandra-env.sh: jamm measures object sizes for memtable accounting.
            *([f"-javaagent:{jamm[-1]}"] if jamm else []),
            # JMX (nodetool) on loopback only: the "local" port binds 127.0.0.1.
            f"-Dcassandra.jmx.local.port={s.cassandra_jmx_port}",
            f"-Djava.rmi.server.hostname={s.host}",
            # Pin JMX's RMI objects to the same port, else RMI listens on a random one too.
            f"-Dcom.sun.management.jmxremote.rmi.port={s.cassandra_jmx_port}",
            # Cassandra's start-up check asks for this: a JVM past an OOM may corrupt data.
            # (No heap dump: a 1 GiB file per crash is worse than useless on a laptop.)
            "-XX:+ExitOnOutOfMemoryError",
            f"-Dcassandra.triggers_dir={self.dir / 'triggers'}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.config=file://{self.dir / 'cassandra.yaml'}",
            f"-Dlogback.configurationFile={self.dir / 'logback.xml'}",
            f"-Dcassandra.logdir={self.dir / 'logs'}",
            f"-Dcassandra.storagedir={self.dir / 'data'}",
            "-cp",
            f"{self.jars_dir}/*",
            MAIN_CLASS,
        ]
        return argv, {}

    def healthy(self) -> bool:
        from lae.cassandra import connect
        from lae.health import cassandra_release

        session = connect(self.settings, connect_timeout=2.0)
        try:
            cassandra_release(session)
            return True
        finally:
            session.cluster.shutdown()

    def down(self) -> bool:
        stopped = super().down()
        if stopped:
            # The JVM's main thread turns zombie while its last threads still tear down and
            # hold the listeners (measured: 7199 open ~0.25 s after stop() returned), which
            # made an immediate up() fail its port check. Wait for our ports to close.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(
                port_open(self.settings.host, p) for p in self.ports()
            ):
                time.sleep(0.1)
        return stopped

    def provision(self) -> None:
        from lae.cassandra_schema import migrate

        migrate(self.settings)
