"""What the layout promises: no import cycles, training imported only by its own commands, no TensorFlow on
the scan and query paths, unit tests without TensorFlow, and a distributed watcher that never loads a
classifier."""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.integration.conftest import write_photos
from tests.integration.services import flush_redis, redis_or_skip

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("tensorflow", "keras", "fakewatch.classifiers.base", "fakewatch.classifiers.loading",
         "fakewatch.classifiers.keras_runtime", "fakewatch.classify.runtime")
# Outside fakewatch.training, only these may import it: the CLI's training commands, and the worker's
# scheduled refresh task (which runs on the training queue)
TRAINING_USERS = ("fakewatch.cli.training", "fakewatch.worker.tasks")
# What scanning, querying, watching, serving and the workers load when imported: none of it may bring in
# TensorFlow or Keras (the Keras runtime, export and training are imported only where they are used)
LIGHT_ENTRY_POINTS = ("fakewatch.cli", "fakewatch.cli.__main__", "fakewatch.mode", "fakewatch.intake.scan",
                      "fakewatch.intake.embedded", "fakewatch.intake.distributed", "fakewatch.watcher.observer",
                      "fakewatch.classify.runtime", "fakewatch.classify.heatmap", "fakewatch.classifiers.loading",
                      "fakewatch.classifiers.onnx_runtime", "fakewatch.db.results", "fakewatch.status",
                      "fakewatch.web.app", "fakewatch.worker.app", "fakewatch.worker.tasks")
TENSORFLOW = ("tensorflow", "keras", "tf2onnx", "torch", "fakewatch.training", "fakewatch.classifiers.keras_runtime",
              "fakewatch.classifiers.layers", "fakewatch.classifiers.export")


def _fakewatch_modules() -> dict[str, Path]:
    """Every module of the package by its dotted name (a package by its own name)."""
    modules = {}
    for path in sorted((ROOT / "fakewatch").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _fakewatch_modules()


def _target(name: str) -> str:
    """The module an imported name lives in: a module itself, else the nearest package or module above."""
    while name and name not in MODULES and name.startswith("fakewatch."):
        name = name.rpartition(".")[0]
    return name


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name | ast.Attribute) and ast.unparse(node.test).endswith("TYPE_CHECKING")


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The modules one import statement names (fakewatch modules resolved, others by their top name)."""
    if isinstance(node, ast.Import):
        return {_target(alias.name) if alias.name.startswith("fakewatch") else alias.name.split(".")[0]
                for alias in node.names}
    base = node.module or ""
    if node.level:  # relative: from the module's package upwards
        package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
        base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
    if not base.startswith("fakewatch"):
        return {base.split(".")[0]}
    return {_target(f"{base}.{alias.name}") if f"{base}.{alias.name}" in MODULES else _target(base)
            for alias in node.names}


def _imports(module: str, everywhere: bool) -> set[str]:
    """What ``module`` imports: ``everywhere``, every import statement in it (in functions and under
    TYPE_CHECKING too); else only those that run when it is imported."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.update(_imported(module, node))
            elif not everywhere and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            elif not everywhere and isinstance(node, ast.If) and _is_type_checking(node):
                visit(node.orelse)
            else:
                visit([child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)])

    visit(ast.parse(MODULES[module].read_text(encoding="utf-8")).body)
    found.discard(module)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def _package_graph(everywhere: bool) -> dict[str, set[str]]:
    return {module: {name for name in _imports(module, everywhere) if name in MODULES} for module in MODULES}


def test_no_import_cycles_between_modules_or_between_subpackages() -> None:
    graph = _package_graph(everywhere=True)
    assert _cycles(graph) == [], "import cycles (function-level imports included)"
    unit = {module: ".".join(module.split(".")[:2]) for module in MODULES}  # fakewatch.db.tables -> fakewatch.db
    between: dict[str, set[str]] = {}
    for module, names in graph.items():
        between.setdefault(unit[module], set()).update(unit[name] for name in names if unit[name] != unit[module])
    assert _cycles(between) == [], "subpackages and top-level modules that import each other"


def test_the_web_package_runs_no_sql_of_its_own() -> None:
    """The console and the API call fakewatch.db functions: no SQLAlchemy import (function-level ones
    included) and no statement built or written in fakewatch/web."""
    offences = []
    for module, path in MODULES.items():
        if not module.startswith("fakewatch.web"):
            continue
        if "sqlalchemy" in _imports(module, everywhere=True):
            offences.append(f"{module} imports sqlalchemy")
        source = path.read_text(encoding="utf-8")
        offences += [f"{module} calls {call}" for call in ("select(", "text(", "insert(", "update(", "delete(")
                     if re.search(r"(?<![\w.])" + re.escape(call), source)]
    assert offences == [], "SQL in fakewatch/web: move it into fakewatch/db"


def test_the_layout_check_finds_sql_where_it_is() -> None:
    assert "sqlalchemy" in _imports("fakewatch.db.results", everywhere=True)
    assert re.search(r"(?<![\w.])" + re.escape("select("), "query = select(Image.id)")
    assert not re.search(r"(?<![\w.])" + re.escape("select("), "<select name=label>; form.select(x)")


def test_only_training_and_its_commands_import_training() -> None:
    graph = _package_graph(everywhere=True)
    importers = sorted(module for module, names in graph.items() if not module.startswith("fakewatch.training")
                       and any(name.startswith("fakewatch.training") for name in names))
    assert set(importers) <= set(TRAINING_USERS), importers
    classifiers = {module: names for module, names in graph.items() if module.startswith("fakewatch.classifiers")}
    assert all(not name.startswith("fakewatch.training") for names in classifiers.values() for name in names)


def test_scan_and_query_paths_import_no_tensorflow() -> None:
    """What importing each entry point runs (module-level imports, and every package above an imported
    module) reaches neither TensorFlow nor Keras nor the modules that import them."""
    for entry in LIGHT_ENTRY_POINTS:
        reached: set[str] = set()
        waiting = [entry]
        while waiting:
            module = waiting.pop()
            if module in reached:
                continue
            reached.add(module)
            if module in MODULES:  # a library is noted, not followed
                parents = [".".join(module.split(".")[:end]) for end in range(1, module.count(".") + 1)]
                waiting += [*_imports(module, everywhere=False), *parents]
        heavy = sorted(name for name in reached if name.startswith(TENSORFLOW))
        assert heavy == [], f"importing {entry} imports {heavy}"


def test_the_static_checks_see_function_level_and_type_checking_imports() -> None:
    assert "fakewatch.classifiers.keras_runtime" in _imports("fakewatch.classifiers.loading", everywhere=True)
    assert "fakewatch.classifiers.keras_runtime" not in _imports("fakewatch.classifiers.loading", everywhere=False)
    assert "fakewatch.classify.runtime" in _imports("fakewatch.mode", everywhere=True)  # under TYPE_CHECKING
    assert "keras" in _imports("fakewatch.classifiers.keras_runtime", everywhere=False)
    assert "fakewatch.training.refresh" in _imports("fakewatch.worker.tasks", everywhere=True)
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_unit_tests_pass_with_tensorflow_and_keras_unimportable(tmp_path: Path) -> None:
    for name in ("tensorflow", "keras"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked for this run')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "error" not in result.stdout.splitlines()[-1]


WATCH_AND_REPORT_MODULES = """
import json, pathlib, sys
report = pathlib.Path(sys.argv[1])
sys.argv = ["fakewatch", "watch", sys.argv[2], "--stability-delay", "0.2"]
try:
    from fakewatch.cli import main
    main()
finally:
    report.write_text(json.dumps(sorted(sys.modules)))
"""


def test_distributed_watch_imports_neither_the_classifier_nor_tensorflow(tmp_path: Path) -> None:
    redis_url = redis_or_skip()
    flush_redis(redis_url)
    watched = tmp_path / "watched"
    watched.mkdir()
    database = tmp_path / "fakewatch.db"
    env = {key: value for key, value in os.environ.items() if not key.startswith("FAKEWATCH_")}
    env.update({"FAKEWATCH_HOME": str(tmp_path / "home"), "FAKEWATCH_BROKER_URL": redis_url,
                "FAKEWATCH_DATABASE_URL": f"sqlite:///{database}", "PYTHONPATH": str(ROOT)})
    modules_file = tmp_path / "modules.json"
    daemon = subprocess.Popen([sys.executable, "-c", WATCH_AND_REPORT_MODULES, str(modules_file), str(watched)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not database.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        (photo,) = write_photos(tmp_path / "camera", 1)
        photo.rename(watched / "dropped.jpg")
        engine = create_engine(f"sqlite:///{database}")
        queued = None
        while queued is None and time.monotonic() < deadline:
            try:
                with engine.connect() as connection:
                    queued = connection.execute(text("SELECT queued_at FROM images WHERE status = 'pending'")).scalar()
            except OperationalError:
                pass  # the schema is still being created
            time.sleep(0.1)
        engine.dispose()
        assert queued is not None, "the watcher did not record and queue the dropped file"
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=60)
        flush_redis(redis_url)
    assert daemon.returncode == 0, output
    loaded = set(json.loads(modules_file.read_text()))
    assert "fakewatch.watcher.observer" in loaded and "fakewatch.broker" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.fixture(scope="module")
def scanned_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """A data folder that holds one scanned image, and the environment that points at it."""
    folder = tmp_path_factory.mktemp("scanned")
    (photo,) = write_photos(folder / "photos", 1)
    env = {key: value for key, value in os.environ.items() if not key.startswith("FAKEWATCH_")}
    env.update({"FAKEWATCH_HOME": str(folder / "home"), "PYTHONPATH": str(ROOT)})
    subprocess.run([sys.executable, "-m", "fakewatch.cli", "-q", "scan", str(photo)], env=env, check=True,
                   capture_output=True, timeout=120)
    return env, photo


def _modules_after(env: dict[str, str], command: list[str]) -> set[str]:
    """The modules loaded by running one CLI command in a fresh interpreter."""
    script = ("import json, sys\nfrom fakewatch.cli import cli\n"  # the group: main() skips teardown
              "try:\n    cli(obj={})\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
              "print(json.dumps(sorted(sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", f"import sys; sys.argv = {['fakewatch', *command]!r}\n{script}"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("command", [["settings"], ["stats"], ["results"], ["status"], ["show", "PHOTO"],
                                     ["label", "PHOTO", "--real"]])
def test_commands_that_do_not_classify_load_neither_a_classifier_nor_a_runtime(
        scanned_home: tuple[dict[str, str], Path], command: list[str]) -> None:
    env, photo = scanned_home
    loaded = _modules_after(env, [str(photo) if part == "PHOTO" else part for part in command])
    assert not loaded & {*HEAVY, "onnxruntime"}, sorted(loaded & {*HEAVY, "onnxruntime"})


def test_an_embedded_scan_runs_the_shipped_classifiers_without_tensorflow(
        scanned_home: tuple[dict[str, str], Path]) -> None:
    env, photo = scanned_home
    loaded = _modules_after(env, ["-q", "scan", "--force", str(photo)])
    assert "fakewatch.classifiers.onnx_runtime" in loaded
    heavy = sorted(name for name in loaded if name.startswith(TENSORFLOW))
    assert heavy == [], heavy


def _console(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fakewatch.cli", *command], env=env, capture_output=True,
                          text=True, timeout=120)


def test_quick_commands_leave_early_with_their_output_exit_code_and_writes_intact(
        scanned_home: tuple[dict[str, str], Path]) -> None:
    """The console script leaves a quick command without the interpreter's teardown: what it printed, its
    exit code and what it wrote must survive that."""
    from click.testing import CliRunner

    from fakewatch.cli import cli

    env, photo = scanned_home
    in_process = CliRunner().invoke(cli, ["results", "--format", "json"], env=env, obj={})
    console = _console(env, "results", "--format", "json")
    assert console.returncode == 0 and console.stdout == in_process.stdout and json.loads(console.stdout)
    missing = _console(env, "show", "no-such-image.jpg")
    assert missing.returncode == 2 and "no image 'no-such-image.jpg'" in missing.stderr
    before = json.loads(_console(env, "show", str(photo), "--json").stdout)["labels"]
    assert _console(env, "label", str(photo), "--fake", "--note", "quick exit").returncode == 0
    after = json.loads(_console(env, "show", str(photo), "--json").stdout)["labels"]  # read back by another process
    assert len(after) == len(before) + 1 and after[-1]["label"] == "fake" and after[-1]["note"] == "quick exit"
