from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fakewatch.cli import cli
from fakewatch.config import Settings, load_settings
from tests.conftest import noisy_image, smooth_image, write_image


@pytest.fixture
def env(tmp_path: Path, stand_in_classifier) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Environment for CLI runs: a private home, and the pixel-hash stand-in classifier."""
    return {"FAKEWATCH_HOME": str(tmp_path / "home"), "FAKEWATCH_CLASSIFIER": str(stand_in_classifier.path),
            "FAKEWATCH_CONFIG": "", "FAKEWATCH_DATABASE_URL": "", "FAKEWATCH_BROKER_URL": ""}


@pytest.fixture
def run_cli(env: dict[str, str]):  # type: ignore[no-untyped-def]
    def run(*args: str, expect: int = 0):  # type: ignore[no-untyped-def]
        result = CliRunner().invoke(cli, list(args), env=env, obj={}, catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result
    return run


@pytest.fixture
def env_settings(env: dict[str, str]) -> Settings:
    return load_settings(env={key: value for key, value in env.items() if value})


def write_photos(folder: Path, count: int, seed: int = 0, start: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(start, start + count):
        maker = noisy_image if index % 2 else smooth_image
        paths.append(write_image(folder / f"img_{index:04d}.jpg", maker(rng), quality=95))
    return paths


def write_sleeping_hook(folder: Path) -> tuple[Path, Path]:
    """A hook script that appends its last argument to ``calls`` and, the first time only, sleeps 60 s (long
    enough to be killed mid-hook): (hook, calls)."""
    calls, hook = folder / "calls", folder / "hook.py"
    hook.write_text("import pathlib, sys, time\n"
                    f"calls = pathlib.Path({str(calls)!r})\n"
                    "first = not calls.exists()\n"
                    "with calls.open('a') as out:\n"
                    "    out.write(sys.argv[-1] + '\\n')\n"
                    "if first:\n"
                    "    time.sleep(60)\n")
    return hook, calls
