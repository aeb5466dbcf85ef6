"""The `logistics` command as an operator uses it: clear output, clear one-line errors, exit code 2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from logistics.config import fresh_carrier_secrets

# A configured service's credentials: api and worker refuse to start on the published ones.
CARRIER = fresh_carrier_secrets()


def run(*args: str, env: dict[str, str] | None = None, tmp: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOGISTICS_")}
    base |= {"LOGISTICS_DATA_DIR": str(tmp), "LOGISTICS_LOG_LEVEL": "WARNING", **CARRIER}
    return subprocess.run(
        [sys.executable, "-m", "logistics", *args], env=base | (env or {}), capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    assert run("migrate", tmp=tmp_path).returncode == 0
    return tmp_path


def test_migrate_creates_the_sqlite_database(tmp_path: Path) -> None:
    result = run("migrate", tmp=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "latest schema" in result.stdout
    assert (tmp_path / "logistics.db").exists()


@pytest.mark.parametrize("command", ["migrate", "api", "worker"])
def test_a_sqlite_path_that_cannot_be_created_is_one_line_and_exit_2(tmp_path: Path, command: str) -> None:
    (tmp_path / "not-a-dir").write_text("a file where the database's folder should be")
    url = f"sqlite:///{tmp_path / 'not-a-dir' / 'logistics.db'}"
    result = run(command, env={"LOGISTICS_DATABASE_URL": url}, tmp=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "cannot create the SQLite database file: Not a directory" in result.stderr
    assert processes_naming(tmp_path) == []  # the private Redis it started stopped with it


def processes_naming(path: Path) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended meanwhile
        if str(path) in args:
            found.append(args)
    return found


def test_clients_create_json_gives_id_key_and_secret(migrated: Path) -> None:
    result = run(
        "clients",
        "create",
        "--name",
        "上街区行政审批系统",
        "--webhook-url",
        "https://sp.sj.gov.cn/hooks",
        "--json",
        tmp=migrated,
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["id"].startswith("cli_")
    assert created["api_key"].startswith("lgk_")
    assert created["webhook_secret"].startswith("whsec_")
    listed = json.loads(run("clients", "list", "--json", tmp=migrated).stdout)
    assert [c["name"] for c in listed] == ["上街区行政审批系统"]
    assert "api_key" not in listed[0]


def test_duplicate_client_name_is_a_clear_error(migrated: Path) -> None:
    run("clients", "create", "--name", "二七区行政审批系统", tmp=migrated)
    result = run("clients", "create", "--name", "二七区行政审批系统", tmp=migrated)
    assert result.returncode == 2
    assert result.stderr.strip() == "logistics: a client named '二七区行政审批系统' already exists"


def test_rotate_key_issues_a_new_key(migrated: Path) -> None:
    first = json.loads(run("clients", "create", "--name", "中原区审批系统", "--json", tmp=migrated).stdout)
    rotated = json.loads(run("clients", "rotate-key", "--client", "中原区审批系统", "--json", tmp=migrated).stdout)
    assert rotated["api_key"].startswith("lgk_") and rotated["api_key"] != first["api_key"]


def test_unknown_client_is_a_clear_error(migrated: Path) -> None:
    result = run("clients", "rotate-key", "--client", "cli_nobody", tmp=migrated)
    assert result.returncode == 2
    assert "no client with id or name 'cli_nobody'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    result = run("clients", "create", tmp=tmp_path)
    assert result.returncode == 2
    assert "--name" in result.stderr


def test_invalid_configuration_names_the_variable(tmp_path: Path) -> None:
    result = run("migrate", env={"LOGISTICS_PORT": "eighty"}, tmp=tmp_path)
    assert result.returncode == 2
    assert "LOGISTICS_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    result = run("migrate", env={"LOGISTICS_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/logistics"}, tmp=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("logistics: cannot reach the database")
    assert "Traceback" not in result.stderr


def test_missing_schema_points_to_migrate(tmp_path: Path) -> None:
    result = run("clients", "list", tmp=tmp_path)
    assert result.returncode == 2
    assert "run `logistics migrate` first" in result.stderr


def test_worker_with_unreachable_redis_is_a_clear_error(migrated: Path) -> None:
    result = run("worker", env={"LOGISTICS_REDIS_URL": "redis://127.0.0.1:1/0"}, tmp=migrated)
    assert result.returncode == 2
    assert result.stderr.startswith("logistics: cannot reach Redis at redis://127.0.0.1:1/0")


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_api_on_a_port_in_use_is_a_clear_error(migrated: Path, taken_port: int) -> None:
    # Redis unreachable is only a warning for the API, so the run gets as far as binding its port.
    env = {"LOGISTICS_PORT": str(taken_port), "LOGISTICS_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = run("api", env=env, tmp=migrated)
    assert result.returncode == 2
    assert f"logistics: cannot listen on 127.0.0.1:{taken_port} (address already in use)" in result.stderr
    assert "LOGISTICS_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulator_on_a_port_in_use_is_a_clear_error(tmp_path: Path, taken_port: int) -> None:
    result = run("ems-sim", "--port", str(taken_port), tmp=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"logistics: cannot listen on 127.0.0.1:{taken_port} (address already in use)")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("speed", ["0", "fast"])
def test_a_simulator_clock_slower_than_real_time_is_a_clear_error(tmp_path: Path, speed: str) -> None:
    result = run("ems-sim", "--clock-speed", speed, tmp=tmp_path)
    assert result.returncode == 2
    assert "argument --clock-speed: clock.speed must be a number from 1 to 1e+06" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["api", "dev"])
def test_a_bad_halls_file_stops_the_start_naming_department_and_field(tmp_path: Path, command: str) -> None:
    halls = tmp_path / "halls.json"
    entry = {"name": "上街区政务服务中心", "phone": "68123456", "province": "河南省", "city": "郑州市",
             "district": "上街区", "address": "中心路132号"}  # fmt: skip
    halls.write_text(json.dumps({"上街区市场监督管理局": entry}, ensure_ascii=False), encoding="utf-8")
    result = run(command, env={"LOGISTICS_HALLS_FILE": str(halls)}, tmp=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"logistics: the halls file {halls}: 上街区市场监督管理局: phone must be")
    assert "LOGISTICS_HALLS_FILE" in result.stderr and "Traceback" not in result.stderr
