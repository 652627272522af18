"""docker/: no engine runs here, so check what can be checked — the compose file parses and
wires PostgreSQL, the image runs the same ``vsgw serve`` the tests start, and its config loads."""

from __future__ import annotations

from pathlib import Path
import json

import yaml

from gateway.cli import main
from gateway.config import Config, NodeConfig, StorageConfig

DOCKER = Path(__file__).resolve().parent.parent / "docker"


def test_compose_runs_the_gateway_against_postgresql() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    gw = compose["services"]["vsgw"]
    assert gw["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert gw["environment"]["VSGW_STORAGE_URL"].startswith("postgresql+asyncpg://")
    assert compose["services"]["postgres"]["image"].startswith("postgres:15")


def test_image_command_is_vsgw_serve_with_a_config_that_loads(capsys) -> None:  # noqa: ANN001
    lines = (DOCKER / "Dockerfile").read_text().splitlines()
    cmd = [line for line in lines if line.startswith("CMD ")][-1]
    argv = json.loads(cmd[4:])
    assert argv[:2] == ["vsgw", "serve"]
    env = {"VSGW_STORAGE_URL": "postgresql+asyncpg://vsgw:x@postgres/vsgw"}
    cfg = Config.load(DOCKER / "vsgw.toml", env=env)
    assert cfg.get(NodeConfig).data_dir == "/var/lib/vsgw"
    assert cfg.get(StorageConfig).url == env["VSGW_STORAGE_URL"]
    assert main(["serve", "--config", "/nonexistent.toml"]) == 2
    assert "configuration error" in capsys.readouterr().err
