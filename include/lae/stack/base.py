"""What every local service offers to the stack manager."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from lae.config import Settings
from lae.stack.process import ManagedProcess, ensure_ports_free, wait_until


class Service(ABC):
    """A local service: a process started from the repo's own files, plus an idempotent setup.

    Subclasses say how to start the process (``command``), how to tell it is healthy
    (``healthy``, a real round trip, not only an open port), and what to create once it is
    (``provision``: topics, keyspace, bucket, connections), which must be safe to repeat.
    """

    name: str = ""
    start_timeout: float = 120.0

    def __init__(self, settings: Settings):
        self.settings = settings
        self.process = ManagedProcess(self.name, settings.service_dir(self.name))

    @property
    def dir(self) -> Path:
        return self.settings.service_dir(self.name)

    @property
    def log_file(self) -> Path:
        return self.process.log_file

    @abstractmethod
    def ports(self) -> list[int]: ...

    @abstractmethod
    def command(self) -> tuple[list[str], dict[str, str]]:
        """argv and extra environment of the service process."""

    def prepare(self) -> None:  # noqa: B027 - optional hook, most services need nothing
        """Idempotent preparation before a start (write config, format storage once)."""

    @abstractmethod
    def healthy(self) -> bool:
        """A real round trip against the service; raise or return False when not ready."""

    def provision(self) -> None:  # noqa: B027 - optional hook
        """Idempotent setup once healthy (topics, schema, bucket, connections)."""

    def start(self) -> bool:
        """Start the process unless it already runs. Returns True if it was started now."""
        if self.process.is_running():
            return False
        ensure_ports_free(self.name, self.settings.host, self.ports(), self.log_file)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        argv, env = self.command()
        self.process.start(argv, env=env, cwd=self.dir)
        return True

    def wait_healthy(self) -> float:
        """Block until ``healthy`` passes (or raise ServiceError); returns seconds waited."""
        return wait_until(self.name, self.healthy, self.start_timeout, self.log_file,
                          process=self.process)

    def up(self) -> float:
        """Start if not running, wait for health, provision. Returns seconds until healthy."""
        self.start()
        waited = self.wait_healthy()
        self.provision()
        return waited

    def down(self) -> bool:
        return self.process.stop()
