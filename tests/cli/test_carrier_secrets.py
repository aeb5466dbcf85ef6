"""Carrier credentials: api and worker never run on a key anyone can read (only `logistics dev` makes its own)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from logistics.config import fresh_carrier_secrets

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_SIGN_KEY = "TvaBgrhE46sft3nZlfe7xw=="  # EMS's documentation sample, which the simulator also uses
CREDENTIALS = ("LOGISTICS_EMS_SIGN_KEY", "LOGISTICS_EMS_AUTHORIZATION")


def _env(tmp: Path, **settings: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOGISTICS_")}
    return base | {"LOGISTICS_DATA_DIR": str(tmp), "LOGISTICS_LOG_LEVEL": "WARNING"} | settings


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logistics", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    assert run("migrate", env=_env(tmp_path)).returncode == 0
    return tmp_path


@pytest.mark.parametrize("command", ["api", "worker"])
def test_the_published_sample_sign_key_stops_the_start(migrated: Path, command: str) -> None:
    configured = fresh_carrier_secrets() | {"LOGISTICS_EMS_SIGN_KEY": SAMPLE_SIGN_KEY, "LOGISTICS_EMS_SANDBOX": "false"}
    result = run(command, env=_env(migrated, **configured))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("logistics: LOGISTICS_EMS_SIGN_KEY is empty or the published sample value")


@pytest.mark.parametrize("command", ["api", "worker"])
def test_nothing_configured_names_both_carrier_credentials(migrated: Path, command: str) -> None:
    result = run(command, env=_env(migrated))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "LOGISTICS_EMS_SIGN_KEY and LOGISTICS_EMS_AUTHORIZATION are empty or the published sample value" in line


@pytest.mark.parametrize("value", ["", "  ", "sim-authorization-code", "sim-authorization-0001"])
def test_an_empty_or_simulator_authorization_stops_the_worker(migrated: Path, value: str) -> None:
    configured = fresh_carrier_secrets() | {"LOGISTICS_EMS_AUTHORIZATION": value}
    result = run("worker", env=_env(migrated, **configured))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("logistics: LOGISTICS_EMS_AUTHORIZATION is empty or the published sample value")


def test_the_worker_with_its_own_credentials_goes_on_to_its_next_check(migrated: Path) -> None:
    # Past the credentials, the next thing the worker checks is Redis: unreachable here on purpose.
    configured = fresh_carrier_secrets() | {"LOGISTICS_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = run("worker", env=_env(migrated, **configured))
    assert result.returncode == 2
    assert result.stderr.startswith("logistics: cannot reach Redis at redis://127.0.0.1:1/0")


def test_the_api_with_its_own_credentials_starts_and_answers(migrated: Path, redis_url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    configured = fresh_carrier_secrets() | {"LOGISTICS_PORT": str(port), "LOGISTICS_REDIS_URL": redis_url,
                                            "LOGISTICS_EMS_SANDBOX": "false"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "logistics", "api"], env=_env(migrated, **configured), stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                    assert answer.status == 200
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the API did not answer"
                time.sleep(0.1)  # polling another process's port: there is no event to await
    finally:
        proc.terminate()
        proc.wait(10)


def _compose_text() -> str:
    return (ROOT / "docker-compose.yml").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", [*CREDENTIALS, "POSTGRES_PASSWORD"])
def test_compose_requires_every_credential_and_supplies_none(name: str) -> None:
    uses = re.findall(r"\$\{" + name + r"(:?[-?=+]?)[^}]*\}", _compose_text())
    assert uses, f"{name} is not read from the environment"
    assert set(uses) == {":?"}, f"{name} must be required (${{{name}:?…}}), never defaulted"


def test_compose_holds_no_published_credential() -> None:
    text = _compose_text()
    for published in (SAMPLE_SIGN_KEY, "sim-authorization-code", "sim-authorization-0001", ":logistics@"):
        assert published not in text


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="docker compose is not installed",
)
def test_docker_compose_refuses_to_configure_without_the_sign_key() -> None:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS and k != "POSTGRES_PASSWORD"}
    result = subprocess.run(["docker", "compose", "config"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "LOGISTICS_EMS_" in result.stderr or "POSTGRES_PASSWORD" in result.stderr
