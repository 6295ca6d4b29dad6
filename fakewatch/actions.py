"""Actions on a verdict, as a virus scanner's ``--move`` and event hooks: quarantine, a command, a webhook.

They are off until configured (``quarantine_dir``, ``action_command``, ``webhook_url``) and fire for the
verdict labels in ``action_labels`` (default: fake), in both modes, at most once per image and verdict
(claimed in the ``actions`` table once the verdict has committed). Order per image: the quarantine move
first (so the command and the webhook see the file's new path), then the command and the webhook. Every
outcome, failures included, is recorded on the action's row. Where they run:

    embedded     the move in the classifying thread, the hooks on a pool of HOOK_THREADS threads, so a
                 slow hook never holds up classification
    distributed  a ``fakewatch.act`` task per image (action ids and the claim's token) on the ``actions``
                 queue, which every worker consumes; the worker that takes it runs them in order

- Quarantine moves the judged file into ``quarantine_dir`` (:mod:`fakewatch.quarantine`); the image row
  takes the new path and keeps the old one as ``original_path``.
- The command runs without a shell (``shlex`` splits the setting), the file's path as its last argument,
  the verdict in ``FAKEWATCH_VERDICT_*`` environment variables, and ``action_timeout`` seconds to finish.
- The webhook POSTs the image's JSON row (the shape of ``scan --format json``) to an http(s) URL, retrying
  failures ``webhook_retries`` times with the usual backoff.

Shutdown waits at most ``SHUTDOWN_GRACE`` seconds for the hooks; the ones cut short are recorded
``pending`` and, like the ones a killed process (or worker) left ``running`` past their time, retried once
by :meth:`VerdictActions.sweep`: when a scan, watch or worker starts, with each sweep of a distributed
watcher or `fakewatch sweep`, and every ``sweep_interval`` seconds in each worker.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shlex
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError, IntegrityError

from fakewatch.config import Settings, child_environment
from fakewatch.db import actions as recorded
from fakewatch.db.results import rows_for_ids
from fakewatch.db.session import Database
from fakewatch.names import shown, to_fs, to_stored
from fakewatch.quarantine import ActionFailed, ActionSkipped, quarantine, quarantine_folder
from fakewatch.queues import ACT_TASK, ACTIONS_QUEUE
from fakewatch.redact import mask_url

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)
ACTIONS = ("quarantine", "command", "webhook")
WEBHOOK_SCHEMES = ("http", "https")
SHUTDOWN_GRACE = 5.0  # seconds close() waits for hooks before recording the rest as pending
STALE_MARGIN = 5.0  # seconds past an action's longest run before a claim still running is taken as abandoned
HOOK_THREADS = 2


def configured(settings: Settings) -> tuple[str, ...]:
    """The actions ``settings`` turn on, in the order they run."""
    wanted = {"quarantine": settings.quarantine_dir, "command": settings.action_command,
              "webhook": settings.webhook_url}
    return tuple(name for name in ACTIONS if wanted[name])


def longest_run(settings: Settings, action: str) -> float:
    """Seconds one action may take at most, retries and their backoff included."""
    if action != "webhook":
        return settings.action_timeout
    tries = 1 + settings.webhook_retries
    return tries * settings.action_timeout + sum(settings.retry_delay(failures) for failures in range(1, tries))


def verdict_environment(row: dict[str, Any]) -> dict[str, str]:
    """The ``FAKEWATCH_VERDICT_*`` variables a command hook receives."""
    values = {"LABEL": row["label"], "P_FAKE": row["p_fake"], "CONFIDENCE": row["confidence"],
              "CLASSIFIER": row["classifier"], "IMAGE_ID": row["id"], "SHA256": row["sha256"],
              "PATH": row["path"], "ORIGINAL_PATH": row.get("original_path") or ""}
    return {f"FAKEWATCH_VERDICT_{key}": "" if value is None else str(value) for key, value in values.items()}


def run_command(command: str, path: str, row: dict[str, Any], timeout: float,
                started: Callable[[subprocess.Popen[bytes]], None] = lambda child: None) -> str:
    """Run the hook (no shell); returns what it printed, raises :class:`ActionFailed` on failure.
    ``started`` is told about the child process (so a shutdown can stop it)."""
    argv = [*shlex.split(command), path]
    try:
        child = subprocess.Popen(argv, env=child_environment(verdict_environment(row)), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as exc:
        raise ActionFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
    with child:
        started(child)
        try:
            output, _ = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            child.kill()
            child.communicate()
            raise ActionFailed(f"{argv[0]} timed out after {timeout:g} s and was killed") from exc
    said = output.decode("utf-8", "replace").strip()[-500:]
    if child.returncode != 0:
        raise ActionFailed(f"{argv[0]} exited {child.returncode}: {said}")
    return f"{argv[0]} exited 0" + (f": {said}" if said else "")


class _WebRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http and https only (never ``file:`` or ``ftp:``)."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urllib.parse.urlsplit(newurl).scheme.lower() not in WEBHOOK_SCHEMES:
            raise urllib.error.HTTPError(newurl, code, "redirect to a scheme other than http(s)", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_WebRedirects)


def post(url: str, row: dict[str, Any], timeout: float) -> str:
    """POST the verdict to an http(s) ``url``; returns the HTTP status, raises :class:`ActionFailed`."""
    if urllib.parse.urlsplit(url).scheme.lower() not in WEBHOOK_SCHEMES:
        raise ActionFailed(f"{mask_url(url)} is not an http or https URL; not sent")
    body = json.dumps({"event": "verdict", "image": row}, sort_keys=True).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "fakewatch"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        raise ActionFailed(f"HTTP {exc.code} from {mask_url(url)}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ActionFailed(f"cannot reach {mask_url(url)}: {getattr(exc, 'reason', exc)}") from exc


class ActionRunner:
    """Runs claimed actions in this process and records their outcomes. ``abandoned``, once set, cuts a
    running hook short (its row is then left to the caller)."""

    def __init__(self, settings: Settings, database: Database, folder: str,
                 abandoned: threading.Event | None = None) -> None:
        self.settings = settings
        self.database = database
        self.folder = folder
        self.abandoned = abandoned or threading.Event()
        self._children: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def run(self, claim: recorded.Claim) -> None:
        if claim.action == "quarantine":
            self.quarantine(claim)
        else:
            self.hook(claim)

    def quarantine(self, claim: recorded.Claim) -> None:
        path = to_fs(claim.stored_path)
        if os.path.realpath(os.path.dirname(path)) == self.folder:  # moved by a run that stopped before the end
            self.finish(claim, "done", f"already in quarantine at {claim.stored_path}", 1)
            return
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            if os.path.realpath(self.folder) != self.folder:
                raise ActionFailed(f"the quarantine folder {shown(self.folder)} was replaced by a symlink")
            new_path = quarantine(path, self.folder, claim.sha256, lambda candidate: self._record_move(
                claim, candidate))
        except ActionSkipped as exc:
            self.finish(claim, "skipped", str(exc), 1)
        except (ActionFailed, OSError, DBAPIError) as exc:
            self.finish(claim, "failed", f"{exc.__class__.__name__}: {exc}" if isinstance(exc, DBAPIError)
                        else str(exc), 1)
        else:
            self.finish(claim, "done", f"moved to {to_stored(new_path)}", 1)

    def _record_move(self, claim: recorded.Claim, new_path: str) -> bool:
        try:
            with self.database.session() as session, session.begin():
                return recorded.moved(session, claim.image_id, to_stored(new_path), claim.stored_path)
        except IntegrityError:  # another row took the name between the check and the write
            return False

    def hook(self, claim: recorded.Claim) -> None:
        """Run the command or the webhook (with its retries) for ``claim``."""
        with self.database.session() as session:
            rows = rows_for_ids(session, [claim.image_id])
        if not rows:
            self.finish(claim, "failed", f"image {claim.image_id} is no longer recorded", 0)
            return
        row = rows[0]
        attempts, limit = 0, (1 + self.settings.webhook_retries) if claim.action == "webhook" else 1
        while True:
            attempts += 1
            try:
                if claim.action == "command":
                    detail = run_command(self.settings.action_command, to_fs(row["path"]), row,
                                         self.settings.action_timeout, self._started)
                else:
                    detail = post(self.settings.webhook_url, row, self.settings.action_timeout)
            except ActionFailed as exc:
                if self.abandoned.is_set():
                    return  # cut short by a shutdown: the caller records it
                if attempts < limit:
                    if self.abandoned.wait(self.settings.retry_delay(attempts)):
                        return
                    continue
                self.finish(claim, "failed", str(exc), attempts)
                return
            self.finish(claim, "done", detail, attempts)
            return

    def _started(self, child: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._children = {each for each in self._children if each.poll() is None} | {child}
        if self.abandoned.is_set():
            child.kill()

    def kill_children(self) -> None:
        with self._lock:
            children = [child for child in self._children if child.poll() is None]
        for child in children:
            child.kill()

    def finish(self, claim: recorded.Claim, status: str, detail: str, attempts: int) -> None:
        if status != "done":
            log.warning("%s action for image %d %s: %s", claim.action, claim.image_id, status, detail)
        with self.database.session() as session, session.begin():
            recorded.finish(session, claim.action_id, status, detail, attempts)


class VerdictActions:
    """Claims the configured actions for freshly judged images and has them run: here (embedded) or by a
    worker (distributed). Built when a process that runs or sends actions starts, it first sweeps up what
    a stopped one left; :meth:`close` waits a bounded time for this process's hooks."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.enabled = configured(settings)
        self.folder = quarantine_folder(settings)  # resolved once: a symlink swapped in later is not followed
        self._abandoned = threading.Event()  # set when close() stops waiting
        self.runner = ActionRunner(settings, database, self.folder, self._abandoned)
        self._waiting: queue.Queue[recorded.Claim] = queue.Queue()
        self._busy: dict[int, recorded.Claim] = {}  # action id -> a hook being run
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._sender: Celery | None = None
        if self.enabled:
            self.sweep()

    def sweep(self) -> int:
        """Retry, once, the actions a stopped process left pending or running past their time (safe to run
        in several processes at once: each claim is reclaimed by one). Returns how many were retried."""
        if not self.enabled:
            return 0
        longest = {name: longest_run(self.settings, name) + STALE_MARGIN for name in self.enabled}
        try:
            with self.database.session() as session, session.begin():
                claims, given_up = recorded.reclaim(session, longest)
        except DBAPIError as exc:  # the database is down: the next sweep tries again
            log.warning("cannot look for interrupted verdict actions: %s", exc)
            return 0
        if claims or given_up:
            log.info("retrying %d interrupted verdict actions; %d interrupted twice were failed",
                     len(claims), given_up)
        self._dispatch(claims)
        return len(claims)

    def after(self, image_ids: list[int], classifier: str | list[str]) -> None:
        """Claim and run the actions owed for ``image_ids``' verdicts from ``classifier`` (one or several)."""
        if not self.enabled or not image_ids:
            return
        with self.database.session() as session, session.begin():
            claims = recorded.claim(session, image_ids, classifier, self.settings.action_labels, self.enabled)
        self._dispatch(claims)

    def run_claimed(self, action_ids: Sequence[int], token: str) -> int:
        """Run now, in order, the claims among ``action_ids`` that ``token`` still holds (a worker's
        ``fakewatch.act``); returns how many ran."""
        with self.database.session() as session, session.begin():
            claims = recorded.take(session, action_ids, token, ACTIONS)
        for claim in claims:
            self.runner.run(claim)
        return len(claims)

    def _dispatch(self, claims: list[recorded.Claim]) -> None:
        if not claims:
            return
        if not self.settings.embedded:
            self._send(claims)
            return
        for claim in claims:
            if claim.action == "quarantine":
                self.runner.quarantine(claim)  # before the hooks, which see the new path
            else:
                self._submit(claim)

    def _send(self, claims: list[recorded.Claim]) -> None:
        """Queue one ``fakewatch.act`` per image and claim token; claims not sent wait for the next sweep."""
        from kombu.exceptions import OperationalError as BrokerError

        from fakewatch.broker import send_retry_policy, sender

        groups: dict[tuple[int, str], list[recorded.Claim]] = defaultdict(list)
        for claim in claims:
            groups[(claim.image_id, claim.token)].append(claim)
        if self._sender is None:
            self._sender = sender(self.settings)
        for (_, token), group in groups.items():
            try:
                self._sender.send_task(ACT_TASK, args=[[claim.action_id for claim in group], token],
                                       queue=ACTIONS_QUEUE, retry=True,
                                       retry_policy=send_retry_policy(self.settings))
            except BrokerError as exc:
                log.warning("cannot queue %d verdict actions (%s); the next sweep sends them", len(group), exc)
                with self.database.session() as session, session.begin():
                    recorded.unsent(session, group, f"the broker at {mask_url(self.settings.broker_url)} was "
                                                    f"unreachable; the next sweep sends it")

    def _submit(self, claim: recorded.Claim) -> None:
        with self._lock:
            self._threads = [thread for thread in self._threads if thread.is_alive()]
            if len(self._threads) < HOOK_THREADS:
                # daemon threads: a hook still running when close() gives up never holds the process up
                thread = threading.Thread(target=self._serve, name="verdict-action", daemon=True)
                self._threads.append(thread)
                thread.start()
            self._waiting.put(claim)

    def _serve(self) -> None:
        while not self._abandoned.is_set():
            with self._lock:
                try:
                    claim = self._waiting.get_nowait()
                except queue.Empty:
                    self._idle.notify_all()
                    self._threads.remove(threading.current_thread())
                    return
                self._busy[claim.action_id] = claim
            try:
                self.runner.hook(claim)
            finally:
                with self._lock:
                    self._busy.pop(claim.action_id, None)
                    self._idle.notify_all()

    def close(self, timeout: float = SHUTDOWN_GRACE) -> None:
        """Wait up to ``timeout`` seconds for this process's hooks; then stop the ones still running or
        waiting and record them as interrupted (``pending``: retried by the next sweep)."""
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        deadline = time.monotonic() + timeout
        with self._lock:
            while (self._busy or not self._waiting.empty()) and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(min(left, 0.1))
            if not self._busy and self._waiting.empty():
                return
            self._abandoned.set()
            cut = list(self._busy.values())
            while not self._waiting.empty():
                cut.append(self._waiting.get_nowait())
        self.runner.kill_children()
        log.warning("stopping with %d verdict actions unfinished; they are retried by the next sweep", len(cut))
        with self.database.session() as session, session.begin():
            for claim in cut:
                recorded.interrupted(session, claim)
