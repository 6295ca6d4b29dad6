import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fakewatch.cli import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_compose_file_is_valid() -> None:
    result = subprocess.run(["docker-compose", "--env-file", ".env.example", "config"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_container_runs_a_real_fakewatch_command() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "postgres", "migrate", "watcher", "worker", "gpu-worker", "flower"} <= set(services)
    for name in ("migrate", "watcher", "worker", "gpu-worker"):
        command = services[name]["command"]
        assert command[0] in cli.commands, (name, command)
    assert "ports" not in services["redis"]  # Redis stays inside the compose network
    assert services["gpu-worker"]["profiles"] == ["gpu"]
    assert services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


@pytest.mark.parametrize("unit", ["fakewatch-worker.service", "fakewatch-watcher.service"])
def test_systemd_units_restart_always_and_run_a_real_command(unit: str) -> None:
    import configparser
    import shlex

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((ROOT / unit).read_text())
    service = parser["Service"]
    assert service["Restart"] == "always"
    command = shlex.split(service["ExecStart"])
    if command[0] == "/bin/sh":  # the watcher expands its folder list
        command = shlex.split(command[2])[1:]
    assert command[0].endswith("/fakewatch") and command[1] in cli.commands
    assert parser["Install"]["WantedBy"] == "multi-user.target"
