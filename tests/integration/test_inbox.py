"""The training inbox refuses what it did not find inside it, and labels only bring their own content."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import select

from fakewatch.db.labels import add_label
from fakewatch.db.session import Database
from fakewatch.db.tables import Image
from fakewatch.training.inbox import TrainingSets
from tests.integration.conftest import write_photos


def test_links_out_of_the_inbox_and_special_files_are_not_collected(tmp_path: Path, env_settings) -> None:  # type: ignore[no-untyped-def]
    inbox = tmp_path / "inbox"
    (good,) = write_photos(inbox / "fake", 1)
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$planted-hash:19000:0:99999:7:::\n")
    (inbox / "fake" / "x.jpg").symlink_to(secret)
    (inbox / "real").mkdir()
    os.mkfifo(inbox / "real" / "pipe.jpg")
    (inbox / "real" / "inside.jpg").symlink_to(good)  # a link that stays inside the inbox is fine
    sets = TrainingSets(tmp_path / "trainsets")
    database = Database(env_settings.resolved_database_url)
    found = sets.collect(database, inbox, env_settings.limits)  # a FIFO read would hang here
    assert all(b"planted-hash" not in data for _, data in found.values())
    assert len(found) == 1  # the good photo (under two names, one content)
    version = sets.publish(found)
    stored = list((tmp_path / "trainsets" / "objects").rglob("*.jpg"))
    assert version == 1 and len(stored) == 1
    for folder in (tmp_path / "trainsets", tmp_path / "trainsets" / "objects", stored[0].parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE(stored[0].stat().st_mode) == 0o600
    assert sets.collect(database, inbox, env_settings.limits, follow_outside_links=True)  # the setting allows it


def test_a_label_is_never_collected_with_other_content(tmp_path: Path, run_cli, env_settings) -> None:  # type: ignore[no-untyped-def]
    first, second = write_photos(tmp_path / "in", 2, seed=21)
    run_cli("scan", str(tmp_path / "in"))
    run_cli("label", str(first), "--fake")
    first.write_bytes(second.read_bytes())  # new content under the labelled name, not yet re-scanned
    database = Database(env_settings.resolved_database_url)
    assert TrainingSets(tmp_path / "sets").collect(database, tmp_path / "inbox", env_settings.limits) == {}
    with database.session() as session, session.begin():
        image = session.scalar(select(Image).where(Image.path == str(second)))
        assert image is not None
        add_label(session, image, "real", "analyst", None)
    found = TrainingSets(tmp_path / "sets").collect(database, tmp_path / "inbox", env_settings.limits)
    assert [item.label for item, _ in found.values()] == ["real"]


def test_each_domain_remembers_the_set_it_trained_from_and_older_stores_keep_their_meaning(
        tmp_path: Path, env_settings) -> None:  # type: ignore[no-untyped-def]
    inbox = tmp_path / "inbox"
    write_photos(inbox / "fake", 2)
    sets = TrainingSets(tmp_path / "trainsets")
    database = Database(env_settings.resolved_database_url)
    first = sets.publish(sets.collect(database, inbox, env_settings.limits))
    # a store from before per-domain refresh: its sets were made by (and for) thumbnail refreshes
    assert sets.consumed("thumbnail") == first and sets.consumed("photo") is None
    write_photos(inbox / "real", 2, seed=9)
    second = sets.publish(sets.collect(database, inbox, env_settings.limits))
    assert second == first + 1
    assert sets.consumed("thumbnail") == first and sets.consumed("photo") is None  # publishing consumes nothing
    sets.mark_consumed("photo", second)
    assert sets.consumed("photo") == second and sets.consumed("thumbnail") == first
    item = next(iter(sets.latest_items().values()))
    assert sets.object_bytes(item)[:2] == b"\xff\xd8"  # the stored JPEG itself


def test_a_label_folder_that_is_a_symlink_is_refused_and_recorded(tmp_path: Path, env_settings) -> None:  # type: ignore[no-untyped-def]
    inbox = tmp_path / "inbox"
    (kept,) = write_photos(inbox / "fake", 1, seed=3)
    private = tmp_path / "root-only"
    (secret,) = write_photos(private, 1, seed=4)
    private.chmod(0o700)
    (inbox / "real").symlink_to(private, target_is_directory=True)  # real/ is a door to a private folder
    (inbox / "fake" / "sub").symlink_to(private, target_is_directory=True)  # and a folder further down
    sets = TrainingSets(tmp_path / "trainsets")
    database = Database(env_settings.resolved_database_url)
    found = sets.collect(database, inbox, env_settings.limits)
    assert [data for _, data in found.values()] == [kept.read_bytes()]
    assert all(secret.read_bytes() != data for _, data in found.values())
    (message,) = sets.refused
    assert str(inbox / "real") in message and "symlink" in message and str(private) in message
    version = sets.publish(found)
    assert sets.manifest(version)["refused"] == [message]
    for follow in (True, False):  # follow_outside_links is about file links, never label folders
        (inbox / "real").unlink()
        (inbox / "real").symlink_to(inbox / "fake" if follow else private, target_is_directory=True)
        assert sets.collect(database, inbox, env_settings.limits, follow_outside_links=follow) == {}
        assert len(sets.refused) == 1
