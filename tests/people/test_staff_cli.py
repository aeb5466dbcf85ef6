"""`logistics staff create|list|revoke`: the operator's side of staff accounts, through the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGISTICS_")}
    env |= {"LOGISTICS_DATA_DIR": str(tmp), "LOGISTICS_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "logistics", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    assert run("migrate", tmp=tmp_path).returncode == 0
    return tmp_path


def test_create_prints_the_token_once_and_list_never_shows_it(migrated: Path) -> None:
    created = run(
        "staff",
        "create",
        "--name",
        "王建国",
        "--role",
        "courier",
        "--departments",
        "上街区市场监督管理局,上街区民政局",
        "--json",
        tmp=migrated,
    )
    assert created.returncode == 0, created.stderr
    member = json.loads(created.stdout)
    assert member["token"].startswith("stk_")
    assert member["departments"] == ["上街区市场监督管理局", "上街区民政局"]
    listed = run("staff", "list", "--json", tmp=migrated)
    assert [(s["name"], s["role"], s["revoked_at"]) for s in json.loads(listed.stdout)] == [("王建国", "courier", None)]
    assert member["token"] not in listed.stdout


def test_revoke_marks_the_member_revoked(migrated: Path) -> None:
    created = json.loads(
        run(
            "staff",
            "create",
            "--name",
            "李秀英",
            "--role",
            "clerk",
            "--departments",
            "上街区民政局",
            "--json",
            tmp=migrated,
        ).stdout
    )
    result = run("staff", "revoke", "--id", created["id"], tmp=migrated)
    assert result.returncode == 0, result.stderr
    listed = json.loads(run("staff", "list", "--json", tmp=migrated).stdout)
    assert listed[0]["revoked_at"] is not None


def test_an_unknown_role_is_refused_by_the_parser(migrated: Path) -> None:
    result = run("staff", "create", "--name", "赵磊", "--role", "driver", "--departments", "上街区民政局", tmp=migrated)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_revoking_an_unknown_id_is_a_clear_error(migrated: Path) -> None:
    result = run("staff", "revoke", "--id", "stf_01JD8Z6Q2M4X7V3K9T1R5N8B2C", tmp=migrated)
    assert result.returncode == 2
    assert result.stderr.strip() == "logistics: no staff member 'stf_01JD8Z6Q2M4X7V3K9T1R5N8B2C'"
