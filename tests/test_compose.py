"""docker-compose.yml scales as its comment says: `docker compose up --scale api=3 --scale worker=4` has no host
port to clash on, because only the proxy publishes one and its configuration routes to the `api` service.

With the compose plugin installed, `docker compose config` (which needs no Docker engine) resolves the file as
compose itself reads it; otherwise the YAML is read as it stands. Either way the same promises are asserted.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
# What `docker compose config` needs to resolve the `${VAR:?…}` placeholders: made-up values, never used.
DUMMY_ENV = {
    "POSTGRES_PASSWORD": "compose-config-check",
    "LOGISTICS_EMS_AUTHORIZATION": "compose-config-check",
    "LOGISTICS_EMS_SIGN_KEY": "Y29tcG9zZS1jb25maWctY2hlY2s=",
}


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0


def _services() -> dict[str, Any]:
    if _compose_plugin():
        resolved = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE), "--profile", "sim", "config", "--format", "yaml"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin:/usr/local/bin", **DUMMY_ENV},
            check=True,
        )
        return yaml.safe_load(resolved.stdout)["services"]
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _host_ports(service: dict[str, Any]) -> list[Any]:
    """Published ports in either syntax: "8080:8080" / {published: 8080, target: 8080}."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            if port.get("published"):
                found.append(port)
        elif ":" in str(port):
            found.append(port)
    return found


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return _services()


def test_scaled_services_publish_no_host_port(services: dict[str, Any]) -> None:
    assert _host_ports(services["api"]) == []
    assert _host_ports(services["worker"]) == []


def test_only_the_proxy_publishes_the_api_port(services: dict[str, Any]) -> None:
    publishing = {name for name, service in services.items() if _host_ports(service)}
    assert publishing == {"proxy"}
    published = _host_ports(services["proxy"])[0]
    target = published["target"] if isinstance(published, dict) else str(published).rsplit(":", 1)[-1]
    assert int(target) == 8080


def _proxy_config(services: dict[str, Any]) -> str:
    for volume in services["proxy"]["volumes"]:
        source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
        target = volume["target"] if isinstance(volume, dict) else volume.split(":")[1]
        if target.endswith("haproxy.cfg"):
            return (ROOT / source).read_text() if not Path(source).is_absolute() else Path(source).read_text()
    raise AssertionError("the proxy mounts no haproxy.cfg")


def test_the_proxy_routes_to_every_container_of_the_api_service(services: dict[str, Any]) -> None:
    config = _proxy_config(services)
    # One address per api container, from Docker's DNS: scaling the service needs no change to the file.
    routes = re.findall(r"^\s*server-template\s+\S+\s+(\d+)\s+api:8080\b.*resolvers\s+docker", config, re.M)
    assert routes and int(routes[0]) >= 4
    assert re.search(r"^\s*bind\s+:8080\s*$", config, re.M)
    assert re.search(r"^\s*nameserver\s+\S+\s+127\.0\.0\.11:53", config, re.M)


def test_carrier_pushes_reach_the_api_through_the_proxy(services: dict[str, Any]) -> None:
    command = services["ems-sim"]["command"]
    assert command[command.index("--callback-url") + 1] == "http://proxy:8080/carriers/ems/push"
