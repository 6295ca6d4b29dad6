"""Every `fakewatch ...` command line in the README's and the docs' code blocks runs: against a scratch home
and database, with the folders and files it names made in a temporary folder (a couple of generated
images in each). A usage error (exit code 2 with click's usage message, an unknown option, a bad choice)
fails; so does any exit code 2, which is also what a setup error gives.

Commands that start a server or a long loop (serve, watch, worker, supervise), that train or retrain
(train, train-photo, evaluate, refresh) or that need a broker or TensorFlow (enqueue, sweep, classifiers
export) run with `--help` added: click still parses every option and refuses unknown ones."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fakewatch.cli import cli
from tests.conftest import noisy_image, smooth_image, write_image

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# commands run with --help only, and why
HELP_ONLY = {
    "serve": "starts the web server", "watch": "watches folders until stopped", "worker": "starts a worker",
    "supervise": "supervises workers until stopped", "train": "trains a classifier",
    "train-photo": "trains a classifier", "evaluate": "needs a labelled data set", "refresh": "retrains",
    "enqueue": "needs a broker", "sweep": "needs a broker", "export": "needs TensorFlow",
}
PLACEHOLDERS = {"VERSION", "REFERENCE", "DATA_DIR", "KIND", "ID"}  # a synopsis's words, not values
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_COLUMNS = re.compile(r"\s{3,}[a-z][^#]*$")  # the description column beside an example in help text
_ENDS = {"|", ">", ">>", "&", "&&", ";"}  # a pipe, a redirection or the next command: the command ends there


@dataclass(frozen=True)
class DocCommand:
    page: str
    line: int
    words: tuple[str, ...]

    @property
    def text(self) -> str:
        return shlex.join(self.words)

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


def _code_lines(page: Path) -> list[tuple[int, str]]:
    """The lines inside fenced code blocks, continuation lines (ending in ``\\``) joined."""
    found: list[tuple[int, str]] = []
    inside = False
    pending: tuple[int, str] | None = None
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if not inside:
            continue
        if pending is not None:
            line = pending[1] + " " + line.strip()
            number = pending[0]
            pending = None
        if line.rstrip().endswith("\\"):
            pending = (number, line.rstrip()[:-1])
            continue
        found.append((number, line))
    return found


def doc_commands() -> list[DocCommand]:
    """Each `fakewatch` command line of the README and the docs, without comments, pipes, redirections or
    the description beside it; synopses (``[OPTIONS]``) left out."""
    commands = []
    for page in PAGES:
        for number, line in _code_lines(page):
            stripped = line.strip()
            if stripped.startswith("#") or "[OPTIONS]" in stripped:
                continue
            match = re.match(r"^(?:[A-Z_]+=\S+\s+|docker compose exec \w+\s+)*(fakewatch\s+[a-z].*)$", stripped)
            if not match:
                continue
            text = match.group(1) if "'" in line or '"' in line else _COLUMNS.sub("", match.group(1))
            commands.append(DocCommand(page.relative_to(ROOT).as_posix(), number, _words(text)))
    return commands


def _words(text: str) -> tuple[str, ...]:
    """A shell line's words up to a comment, a pipe, a redirection or a following command."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = []
    for word in lexer:
        if word in _ENDS:
            break
        words.append(word)
    return tuple(words)


def _arguments(command: DocCommand, scratch: Path) -> list[str]:
    """The command's arguments, with the paths it names moved into ``scratch`` (and made there)."""
    words = command.words[1:]
    arguments: list[str] = []
    for word in words:
        if re.fullmatch(r"\[[A-Z_]+\]", word):
            continue  # an optional placeholder: left out
        if word.startswith(("~", "/", "$PWD")) or (("/" in word) and not word.startswith(("-", "http"))
                                                   and "*" not in word and ":" not in word):
            word = str(_made(scratch, word))
        arguments.append(word)
    return arguments


def _made(scratch: Path, word: str) -> Path:
    """Where ``word`` (a path in the docs) lives in ``scratch``: a generated image for an image name, a
    folder holding two for a folder."""
    relative = re.sub(r"^(~|\$PWD)?/*", "", word).rstrip("/") or "root"
    target = scratch / relative
    rng = np.random.default_rng(len(relative))
    if target.suffix.lower() in IMAGE_SUFFIXES:
        if not target.exists():
            write_image(target, noisy_image(rng), quality=95)
    elif not target.suffix:
        if not target.exists():
            write_image(target / "smooth.jpg", smooth_image(rng), quality=95)
            write_image(target / "noisy.png", noisy_image(rng), fmt="PNG")
    return target


COMMANDS = doc_commands()


def _help_only(arguments: list[str]) -> str | None:
    """Why the command runs with --help only (None when it runs as written)."""
    names = [word for word in arguments if not word.startswith("-")][:2]
    for name in names:
        if name in HELP_ONLY:
            return HELP_ONLY[name]
    if any(word in PLACEHOLDERS for word in arguments):
        return "a synopsis: its arguments are placeholders"
    return None


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory, stand_in_classifier) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A scratch home with its own database, and the images the README's first steps scan already there."""
    folder = tmp_path_factory.mktemp("doc-commands")
    env = {"FAKEWATCH_HOME": str(folder / "home"), "FAKEWATCH_CLASSIFIER": str(stand_in_classifier.path),
           "FAKEWATCH_CONFIG": "", "FAKEWATCH_DATABASE_URL": "", "FAKEWATCH_BROKER_URL": "",
           "PWD": str(folder), "SCRATCH": str(folder)}
    for command in COMMANDS:  # every path the docs name exists before any command runs
        _arguments(command, folder)
    result = CliRunner().invoke(cli, ["scan", str(folder)], env=env, obj={}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return env


def test_the_docs_have_commands_to_run() -> None:
    pages = {command.page for command in COMMANDS}
    assert {"README.md", "docs/install.md", "docs/training.md", "docs/distributed.md"} <= pages
    assert len(COMMANDS) > 30


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_a_documented_command_runs_without_a_usage_error(command: DocCommand, scratch: dict[str, str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    folder = Path(scratch["SCRATCH"])
    monkeypatch.chdir(folder)  # anything a command writes beside it (explain's PNG) stays in the scratch folder
    arguments = _arguments(command, folder)
    if _help_only(arguments):
        arguments.append("--help")
    result = CliRunner().invoke(cli, arguments, env=scratch, obj={}, catch_exceptions=False)
    output = result.output
    assert "No such option" not in output and "Usage:" not in output or result.exit_code == 0, \
        f"{command}\n{output}"
    assert result.exit_code != 2, f"{command}: exit code 2\n{output}"


def test_the_check_reads_shell_lines_and_would_see_a_usage_error(scratch: dict[str, str]) -> None:
    assert _words("fakewatch results --since 1d --format csv > today.csv   # export") == (
        "fakewatch", "results", "--since", "1d", "--format", "csv")
    assert _words("fakewatch label x --note 'a & b' | cat") == ("fakewatch", "label", "x", "--note", "a & b")
    assert _help_only(["classifiers", "activate", "VERSION"]) and not _help_only(["results", "--label", "fake"])
    refused = CliRunner().invoke(cli, ["results", "--colour", "red"], env=scratch, obj={})
    assert refused.exit_code == 2 and "No such option" in refused.output
