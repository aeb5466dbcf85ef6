"""A private PostgreSQL cluster: ``initdb`` from the machine's PostgreSQL binaries into a directory of its own, on
a free loopback port, so a run may stop and restart its database freely without touching the one the tests use.

PostgreSQL refuses to run as root, so as root every command runs as the machine's ``postgres`` user (runuser);
the cluster's directory is then owned by that user. When the caller's directory is not reachable by it (pytest's
tmp_path sits under a 0700 directory of root's), the cluster lives in a directory of its own under the system's
temporary directory instead, and is removed with the cluster. Used by ``chaos/run.py``, ``benchmarks/scale.py``
and the database-outage tests.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")


def binaries() -> Path | None:
    """The newest PostgreSQL server's bin directory on this machine (LOGISTICS_PG_BIN overrides), or None."""
    configured = os.environ.get("LOGISTICS_PG_BIN")
    candidates = [Path(configured)] if configured else sorted(PG_ROOT.glob("*/bin"), key=_version, reverse=True)
    for found in candidates:
        if (found / "initdb").exists() and (found / "pg_ctl").exists():
            if os.geteuid() == 0 and not _has_postgres_user():
                return None
            return found
    return None


def _version(path: Path) -> float:
    try:
        return float(path.parent.name)
    except ValueError:
        return 0.0


def _has_postgres_user() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reachable_by_others(path: Path) -> bool:
    """Can another user walk down to ``path`` (every ancestor searchable by others)?"""
    return all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents] if p.exists())


class PrivatePostgres:
    """``start`` runs initdb once, then the server; ``stop`` is a fast shutdown; ``destroy`` removes everything."""

    def __init__(self, parent: Path, *, port: int | None = None, max_connections: int = 300) -> None:
        bin_dir = binaries()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql")
        self.bin = bin_dir
        parent = parent.resolve()
        parent.mkdir(parents=True, exist_ok=True)
        self._own_dir: Path | None = None
        if os.geteuid() == 0 and not _reachable_by_others(parent):
            self._own_dir = Path(tempfile.mkdtemp(prefix="logistics-pg-"))
            os.chmod(self._own_dir, 0o755)
            self.dir = self._own_dir / "postgres"
        else:
            self.dir = parent / "postgres"
        self.data = self.dir / "data"
        self.log = self.dir / "postgresql.log"
        self.port = port or free_port()
        self.max_connections = max_connections
        self.initialised = False

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, timeout=timeout, check=True, stdin=subprocess.DEVNULL
        )

    def init(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(self.dir, 0o755)  # root (this process) reads the log; the data directory itself stays 0700
        self._as_postgres(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )
        self.initialised = True

    def start(self, timeout: float = 60) -> str:
        if not self.initialised:
            self.init()
        if self.running():
            return self.admin_url
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            f"-c max_connections={self.max_connections} -c log_line_prefix='%m [%p] ' "
            "-c log_lock_waits=on -c deadlock_timeout=1s"
        )
        self._as_postgres(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            timeout=timeout + 10,
        )
        return self.admin_url

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        """Stop the server (``fast``: disconnect every client, roll back their transactions, shut down cleanly)."""
        if not self.running():
            return
        self._as_postgres(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", str(int(timeout)), "stop"],
            timeout=timeout + 10,
        )

    def running(self) -> bool:
        return self.initialised and (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop("immediate")
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
        else:
            shutil.rmtree(self.data, ignore_errors=True)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""
