"""The documentation pages generated from the code are current: commands, classifier cards, API, data sources."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def gen_docs() -> ModuleType:
    """scripts/gen_docs.py, imported once per process."""
    if "gen_docs" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["gen_docs"] = module
        spec.loader.exec_module(module)
    return sys.modules["gen_docs"]


@pytest.mark.parametrize("page", ["commands.md", "cards.md", "api-reference.md", "api/openapi.json",
                                  "data-sources.md"])
def test_generated_page_is_current(page: str) -> None:
    assert gen_docs().stale([page]) == [], f"docs/{page} is not current: run python scripts/gen_docs.py"


def test_commands_page_names_every_command_and_option() -> None:
    import click

    from fakewatch.cli import cli

    text = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")

    def walk(command: click.Command, path: list[str]) -> None:
        assert f"\n{'#' * min(len(path) + 1, 4)} {' '.join(path)}\n" in text, f"{' '.join(path)} has no section"
        for param in command.params:
            if isinstance(param, click.Option) and "--help" not in param.opts:
                assert all(option in text for option in param.opts), f"{' '.join(path)} {param.opts} missing"
        if isinstance(command, click.Group):
            for name, child in command.commands.items():
                walk(child, [*path, name])

    walk(cli, ["fakewatch"])


def test_cards_page_has_every_shipped_card() -> None:
    text = (ROOT / "docs" / "cards.md").read_text(encoding="utf-8")
    shipped = [path.parent.name for path in (ROOT / "fakewatch" / "builtin_classifiers").glob("*/card.json")]
    assert shipped and all(f"\n## {version}\n" in text for version in shipped)


def test_photo_classifier_figures_have_their_place() -> None:
    text = (ROOT / "docs" / "classifiers.md").read_text(encoding="utf-8")
    section = text.split("## Photo classifier: detection in the wild", 1)
    assert len(section) == 2 and "<!-- photo classifier figures -->" in section[1]
