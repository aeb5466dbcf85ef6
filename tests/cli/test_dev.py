"""`logistics dev`, README command 1: everything on embedded defaults in one process tree."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from support import delivery_body


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dev:
    """A running `logistics dev`, its output read line by line as it comes."""

    def __init__(self, tmp: Path, env: dict[str, str], *, session: bool = False) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("LOGISTICS_")}
        base |= {"LOGISTICS_DATA_DIR": str(tmp), "LOGISTICS_LOG_LEVEL": "WARNING"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "logistics", "dev"],
            env=base | env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # A group of its own, as a terminal gives a foreground command: Ctrl-C signals the whole group.
            start_new_session=session,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines.put), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr.append), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str], sink: Any) -> None:
        for line in stream:
            sink(line)

    def wait_for_line(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            match = re.search(pattern, line)
            if match:
                return match

    def wait(self, timeout: float) -> int:
        """The exit code, once the process has ended and all its output is read."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        for reader in self._readers:
            reader.join(5)
        return code

    def wait_for_stderr(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.stderr):
            assert self.proc.poll() is None, "".join(self.stderr)
            assert time.monotonic() < deadline, f"no {text!r} on stderr"
            time.sleep(0.1)  # another process's output, read by a thread: there is no event to await

    def descendants(self) -> set[int]:
        """Every process below `logistics dev`: its children and theirs (the label renderers)."""
        found: set[int] = set()
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            for children in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    for child in map(int, children.read_text().split()):
                        if child not in found:
                            found.add(child)
                            todo.append(child)
        return found

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(30)


@pytest.fixture
def ports() -> dict[str, str]:
    return {"LOGISTICS_PORT": str(_free_port()), "LOGISTICS_EMS_SIM_PORT": str(_free_port())}


@pytest.fixture
def dev(tmp_path: Path, ports: dict[str, str]) -> Iterator[Dev]:
    running = Dev(tmp_path, ports | {"LOGISTICS_EMS_SIM_STEP_SECONDS": "1"})
    yield running
    running.stop()


def _alive(pid: int) -> bool:
    """Running, or a zombie not yet reaped (its state is read from /proc: a zombie still answers kill 0)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _call(method: str, url: str, key: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:
        result: dict[str, Any] = json.load(answer)
        return result


def _create_when_up(dev: Dev, ports: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    """The demo key, the API's base URL and a shipment created as soon as the API answers."""
    key = dev.wait_for_line(r"API key\s+(lgk_\S+)").group(1)
    base = f"http://127.0.0.1:{ports['LOGISTICS_PORT']}"
    deadline = time.monotonic() + 30
    while True:  # the banner comes as the children start: the API answers once it has bound its port
        try:
            created = _call("POST", f"{base}/v1/shipments", key, delivery_body())
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # polling another process's port: there is no event to await
    return key, base, created


def test_dev_takes_a_shipment_to_an_ems_order_and_stops_on_sigterm(dev: Dev, ports: dict[str, str]) -> None:
    key, base, created = _create_when_up(dev, ports)
    assert created["status"] == "pending"
    deadline = time.monotonic() + 60
    shipment = created
    while shipment["status"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.2)  # the worker, in another process, orders it from the simulator
        shipment = _call("GET", f"{base}/v1/shipments/{created['id']}", key)
    assert shipment["status"] == "ordered"
    assert re.fullmatch(r"\d{13}", shipment["waybill_no"])
    assert dev.stop() == 0
    assert any("logistics dev: stopped" in line for line in dev.stderr)


def test_dev_stops_with_the_reason_when_its_api_port_is_taken(tmp_path: Path, ports: dict[str, str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        running = Dev(tmp_path, ports | {"LOGISTICS_PORT": str(taken)})
        code = running.wait(60)
    stderr = "".join(running.stderr)
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{taken} (address already in use)" in stderr
    assert "logistics: dev: api could not start (its message is above)" in stderr
    assert "restarting" not in stderr and "Traceback" not in stderr


def test_ctrl_c_stops_dev_and_its_label_renderers_quietly(tmp_path: Path, ports: dict[str, str]) -> None:
    # INFO, so that the worker's label_stored line tells when its renderer processes exist.
    env = ports | {"LOGISTICS_EMS_SIM_STEP_SECONDS": "1", "LOGISTICS_LOG_LEVEL": "INFO"}
    running = Dev(tmp_path, env, session=True)
    try:
        _create_when_up(running, ports)
        running.wait_for_stderr('"event":"label_stored"')
        below = running.descendants()
        os.killpg(running.proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        code = running.wait(60)
    finally:
        running.stop()
    output = "".join(running.stderr) + "".join(running.lines.queue)
    assert code == 0
    assert "logistics dev: stopped" in output
    for noise in ("Traceback", "KeyboardInterrupt", "resource_tracker", "leaked"):
        assert noise not in output
    deadline = time.monotonic() + 30
    while (left := {pid for pid in below if _alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)  # orphans are reaped by init, in its own time
    assert not left
