"""Switching classifier versions without restarts, re-scans that keep history, analyst labels."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from fakewatch.cli import cli
from fakewatch.config import load_settings
from fakewatch.db.tables import Verdict
from fakewatch.mode import open_mode
from fakewatch.registry import Registry
from tests.integration.conftest import write_photos


def _install(home: Path, *versions) -> None:  # type: ignore[no-untyped-def]
    for version in versions:
        shutil.copytree(version.path, home / "classifiers" / version.version)


def _verdict_versions(intake) -> list[str]:  # type: ignore[no-untyped-def]
    with intake.database.session() as session:
        return list(session.scalars(select(Verdict.classifier).order_by(Verdict.id)))


def test_embedded_runtime_switches_version_between_batches(tmp_path: Path, stand_in_classifier,
                                                           other_stand_in) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    _install(home, stand_in_classifier, other_stand_in)
    settings = load_settings({"home": str(home)}, env={})
    registry = Registry(settings)
    registry.activate(stand_in_classifier.version)
    with open_mode(settings) as mode:
        intake = mode.intake
        intake.process([str(path) for path in write_photos(tmp_path / "a", 5)])
        registry.activate(other_stand_in.version)  # a promotion, while the runtime keeps running
        intake.process([str(path) for path in write_photos(tmp_path / "b", 5, seed=3)])
        registry.activate(stand_in_classifier.version)  # and a rollback
        intake.process([str(path) for path in write_photos(tmp_path / "c", 5, seed=4)])
    assert _verdict_versions(intake) == [stand_in_classifier.version] * 5 + [other_stand_in.version] * 5 + \
        [stand_in_classifier.version] * 5


def test_rescan_keeps_old_verdicts_and_results_show_changes(tmp_path: Path, stand_in_classifier,
                                                            other_stand_in) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    _install(home, stand_in_classifier, other_stand_in)
    env = {"FAKEWATCH_HOME": str(home)}
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args), env=env, obj={})
        assert result.exit_code == 0, result.output
        return result.stdout

    run("classifiers", "activate", stand_in_classifier.version)
    write_photos(tmp_path / "in", 40)
    run("scan", str(tmp_path / "in"))
    before = {row["path"]: row for row in map(json.loads, run("results", "--format", "json").splitlines())}
    run("classifiers", "activate", other_stand_in.version)
    assert "40 images classified" in run("rescan")
    after = {row["path"]: row for row in map(json.loads, run("results", "--format", "json").splitlines())}
    assert {row["classifier"] for row in after.values()} == {other_stand_in.version}
    record = json.loads(run("show", next(iter(after)), "--json"))
    assert [entry["classifier"] for entry in record["history"]] == [stand_in_classifier.version,
                                                                    other_stand_in.version]
    old = run("results", "--classifier", stand_in_classifier.version, "--format", "json").splitlines()
    assert len(old) == 40  # history kept
    changed = {row["path"] for row in map(json.loads, run("results", "--changed", "--format", "json").splitlines())}
    assert changed == {path for path in after if after[path]["label"] != before[path]["label"]}


def test_analyst_labels_and_disagreements(tmp_path: Path, stand_in_classifier) -> None:  # type: ignore[no-untyped-def]
    env = {"FAKEWATCH_HOME": str(tmp_path / "home"), "FAKEWATCH_CLASSIFIER": str(stand_in_classifier.path)}
    runner = CliRunner()
    write_photos(tmp_path / "in", 12)
    assert runner.invoke(cli, ["scan", str(tmp_path / "in")], env=env, obj={}).exit_code == 0
    rows = {row["path"]: row for row in map(json.loads, runner.invoke(
        cli, ["results", "--format", "json"], env=env, obj={}).stdout.splitlines())}
    definite = [path for path, row in rows.items() if row["label"] in ("fake", "real")]
    assert len(definite) >= 2  # the stand-in's verdicts are fixed by the pixels: this holds for these photos
    agree, disagree = definite[0], definite[1]
    opposite = {"fake": "real", "real": "fake"}
    for path, label in ((agree, rows[agree]["label"]), (disagree, opposite[rows[disagree]["label"]])):
        result = runner.invoke(cli, ["label", path, f"--{label}", "--note", "checked the source",
                                     "--author", "ana"], env=env, obj={})
        assert result.exit_code == 0, result.output
    listed = [json.loads(line)["path"] for line in runner.invoke(
        cli, ["results", "--disagreements", "--format", "json"], env=env, obj={}).stdout.splitlines()]
    assert listed == [disagree]
    shown = json.loads(runner.invoke(cli, ["show", disagree, "--json"], env=env, obj={}).stdout)
    assert shown["labels"][0]["author"] == "ana" and shown["labels"][0]["note"] == "checked the source"
    assert runner.invoke(cli, ["label", disagree], env=env, obj={}).exit_code != 0  # needs --fake or --real


def test_running_worker_picks_up_promotion_and_rollback(tmp_path: Path, stand_in_classifier,
                                                        other_stand_in) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.services import WorkerProcess, flush_redis, redis_or_skip, throwaway_postgres

    redis_url = redis_or_skip()
    flush_redis(redis_url)
    home = tmp_path / "home"
    _install(home, stand_in_classifier, other_stand_in)
    with throwaway_postgres() as database_url:
        env = {"FAKEWATCH_HOME": str(home), "FAKEWATCH_DATABASE_URL": database_url,
               "FAKEWATCH_BROKER_URL": redis_url, "FAKEWATCH_CONFIG": ""}
        settings = load_settings(env=env)
        from fakewatch.db.session import make_engine, upgrade

        upgrade(make_engine(database_url))
        registry = Registry(settings)
        registry.activate(stand_in_classifier.version)
        worker = WorkerProcess(env, tmp_path / "worker.log")
        try:
            intake = open_mode(settings).intake

            def drop(folder: str, seed: int, version: str) -> None:
                intake.process([str(path) for path in write_photos(tmp_path / folder, 5, seed=seed)])
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    with intake.database.session() as session:
                        done = list(session.scalars(select(Verdict.classifier)))
                    if len(done) % 5 == 0 and done and done[-1] == version and len(done) >= 5 * (seed + 1):
                        return
                    time.sleep(0.2)
                raise AssertionError(worker.output()[-3000:])

            drop("a", 0, stand_in_classifier.version)
            registry.activate(other_stand_in.version)
            drop("b", 1, other_stand_in.version)
            registry.activate(stand_in_classifier.version)  # rollback
            drop("c", 2, stand_in_classifier.version)
            assert worker.alive()
            assert "switched classifier" in worker.output()
            with intake.database.session() as session:
                versions = list(session.scalars(select(Verdict.classifier).order_by(Verdict.id)))
            assert versions == [stand_in_classifier.version] * 5 + [other_stand_in.version] * 5 + \
                [stand_in_classifier.version] * 5
        finally:
            worker.stop()
            flush_redis(redis_url)
