"""Actions on a verdict, as a virus scanner's ``--move`` and event hooks: quarantine, a command, a webhook.

They are off until configured (``quarantine_dir``, ``action_command``, ``webhook_url``) and fire for the
verdict labels in ``action_labels`` (default: fake), in both modes, at most once per image and verdict
(claimed in the ``actions`` table). Order per image: the quarantine move first (so the command and the
webhook see the file's new path), then the command and the webhook on a small background pool, so a slow
hook never holds up classification. Every outcome, failures included, is recorded on the action's row.

- Quarantine moves the file into ``quarantine_dir``: a hard link then an unlink on the same file system
  (atomic, never overwrites), copy-then-unlink across file systems; a name already taken gets `` (2)``...
  The image row takes the new path and keeps the old one as ``original_path``.
- The command runs without a shell (``shlex`` splits the setting), the file's path as its last argument,
  the verdict in ``FAKEWATCH_VERDICT_*`` environment variables, and ``action_timeout`` seconds to finish.
- The webhook POSTs the image's JSON row (the shape of ``scan --format json``), retrying failures
  ``webhook_retries`` times with the usual backoff.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from fakewatch.config import Settings, child_environment
from fakewatch.db import actions as recorded
from fakewatch.db.results import rows_for_ids
from fakewatch.db.session import Database
from fakewatch.names import shown, to_fs, to_stored
from fakewatch.redact import mask_url

log = logging.getLogger(__name__)
ACTIONS = ("quarantine", "command", "webhook")


class ActionFailed(Exception):
    """An action could not be completed; the message is recorded on its row."""


def configured(settings: Settings) -> tuple[str, ...]:
    """The actions ``settings`` turn on, in the order they run."""
    wanted = {"quarantine": settings.quarantine_dir, "command": settings.action_command,
              "webhook": settings.webhook_url}
    return tuple(name for name in ACTIONS if wanted[name])


def quarantine(path: str, folder: Path) -> str:
    """Move ``path`` into ``folder`` without ever overwriting; returns the new path."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = os.path.basename(path)
    stem, suffix = os.path.splitext(name)
    for attempt in range(1, 10_000):
        candidate = os.path.join(os.fsdecode(folder), name if attempt == 1 else f"{stem} ({attempt}){suffix}")
        try:
            os.link(path, candidate, follow_symlinks=False)  # same file system: atomic, fails if taken
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise ActionFailed(f"cannot move {shown(path)} to {shown(candidate)}: {exc.strerror}") from exc
            try:
                _copy_exclusive(path, candidate)
            except FileExistsError:
                continue
        os.unlink(path)
        return candidate
    raise ActionFailed(f"no free name for {shown(name)} in {shown(folder)}")


def _copy_exclusive(source: str, target: str) -> None:
    """Copy across file systems into a name nobody holds (O_EXCL), durably, before the source goes."""
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open(source, "rb") as reader, os.fdopen(descriptor, "wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
            writer.flush()
            os.fsync(writer.fileno())
        shutil.copystat(source, target)
    except BaseException:
        os.unlink(target)
        raise


def verdict_environment(row: dict[str, Any]) -> dict[str, str]:
    """The ``FAKEWATCH_VERDICT_*`` variables a command hook receives."""
    values = {"LABEL": row["label"], "P_FAKE": row["p_fake"], "CONFIDENCE": row["confidence"],
              "CLASSIFIER": row["classifier"], "IMAGE_ID": row["id"], "SHA256": row["sha256"],
              "PATH": row["path"], "ORIGINAL_PATH": row.get("original_path") or ""}
    return {f"FAKEWATCH_VERDICT_{key}": "" if value is None else str(value) for key, value in values.items()}


def run_command(command: str, path: str, row: dict[str, Any], timeout: float) -> str:
    """Run the hook (no shell); returns what it printed, raises :class:`ActionFailed` on failure."""
    argv = [*shlex.split(command), path]
    try:
        done = subprocess.run(argv, env=child_environment(verdict_environment(row)), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ActionFailed(f"{argv[0]} timed out after {timeout:g} s and was killed") from exc
    except OSError as exc:
        raise ActionFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
    said = (done.stdout + done.stderr).decode("utf-8", "replace").strip()[-500:]
    if done.returncode != 0:
        raise ActionFailed(f"{argv[0]} exited {done.returncode}: {said}")
    return f"{argv[0]} exited 0" + (f": {said}" if said else "")


def post(url: str, row: dict[str, Any], timeout: float) -> str:
    body = json.dumps({"event": "verdict", "image": row}, sort_keys=True).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "fakewatch"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the user's URL
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        raise ActionFailed(f"HTTP {exc.code} from {mask_url(url)}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ActionFailed(f"cannot reach {mask_url(url)}: {getattr(exc, 'reason', exc)}") from exc


class VerdictActions:
    """Runs the configured actions for freshly classified images; :meth:`close` waits for the hooks."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.enabled = configured(settings)
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    def after(self, image_ids: list[int], classifier: str | list[str]) -> None:
        """Claim and run the actions owed for ``image_ids``' verdicts from ``classifier`` (one or several)."""
        if not self.enabled or not image_ids:
            return
        with self.database.session() as session, session.begin():
            claims = recorded.claim(session, image_ids, classifier, self.settings.action_labels, self.enabled)
        for claim in claims:
            if claim.action == "quarantine":
                self._quarantine(claim)
            else:
                self._pending = [future for future in self._pending if not future.done()]
                self._pending.append(self._executor().submit(self._hook, claim))

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="verdict-action")
        return self._pool

    def _quarantine(self, claim: recorded.Claim) -> None:
        try:
            new_path = quarantine(to_fs(claim.stored_path), Path(self.settings.quarantine_dir).expanduser())
        except (ActionFailed, OSError) as exc:
            self._finish(claim, "failed", str(exc), 1)
            return
        with self.database.session() as session, session.begin():
            recorded.moved(session, claim.image_id, to_stored(new_path), claim.stored_path)
        self._finish(claim, "done", f"moved to {to_stored(new_path)}", 1)

    def _hook(self, claim: recorded.Claim) -> None:
        with self.database.session() as session:
            (row,) = rows_for_ids(session, [claim.image_id])
        attempts, limit = 0, (1 + self.settings.webhook_retries) if claim.action == "webhook" else 1
        while True:
            attempts += 1
            try:
                if claim.action == "command":
                    detail = run_command(self.settings.action_command, to_fs(row["path"]), row,
                                         self.settings.action_timeout)
                else:
                    detail = post(self.settings.webhook_url, row, self.settings.action_timeout)
            except ActionFailed as exc:
                if attempts < limit:
                    time.sleep(self.settings.retry_delay(attempts))
                    continue
                self._finish(claim, "failed", str(exc), attempts)
                return
            self._finish(claim, "done", detail, attempts)
            return

    def _finish(self, claim: recorded.Claim, status: str, detail: str, attempts: int) -> None:
        if status == "failed":
            log.warning("%s action for image %d failed: %s", claim.action, claim.image_id, detail)
        with self.database.session() as session, session.begin():
            recorded.finish(session, claim.action_id, status, detail, attempts)

    def close(self, timeout: float | None = None) -> None:
        """Wait for running hooks (up to ``timeout`` seconds), then stop the pool."""
        if self._pending:
            wait(self._pending, timeout=timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
