"""Keeps a worker's consumer running whatever happens to it.

`fakewatch worker` runs the Celery worker (the consumer and its pool) in a child process and starts it
again after any exit it was not asked for: a broker error the consumer could not recover from (such as
kombu's ``'NoneType' object has no attribute 'hostname'`` on a reconnect while it held a message waiting
to retry), a crash, or a SIGKILL. (A consumer whose stop after an unrecoverable error hangs exits after a
grace period: :class:`fakewatch.worker.app.Worker`.) Restarts back off as the ``retry_max_delay`` setting
says; a consumer that ran for a minute counts as healthy again. SIGTERM, SIGINT, SIGQUIT and SIGHUP are
passed on to the consumer (a warm shutdown), and the supervisor then exits with the consumer's exit code.

The supervisor imports neither Celery nor TensorFlow; a consumer that loses its supervisor is stopped
by the kernel (``PR_SET_PDEATHSIG``), so a killed supervisor never leaves a consumer behind.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

from fakewatch.config import child_environment

log = logging.getLogger(__name__)
HEALTHY_AFTER = 60.0  # seconds a consumer must run before its restart count starts over
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the consumer outlives a killed supervisor
        pass


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """Run ``command`` until it exits on request; restart it after every other exit."""

    def __init__(self, command: Sequence[str], delay: Callable[[int], float], env: dict[str, str] | None = None,
                 healthy_after: float = HEALTHY_AFTER) -> None:
        self.command = list(command)
        self.delay = delay
        self.env = env
        self.healthy_after = healthy_after
        self.stopping = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping.set()
        child = self.child
        if child is not None and child.poll() is None:
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

    @staticmethod
    def _wait(child: subprocess.Popen[bytes]) -> int:
        while True:  # in short waits, so a signal's handler runs promptly whichever thread received it
            try:
                return child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue

    def run(self) -> int:
        previous = {number: signal.signal(number, self._on_signal) for number in FORWARDED}
        try:
            return self._loop()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _loop(self) -> int:
        failures = 0
        while True:
            started = time.monotonic()
            self.child = subprocess.Popen(self.command, env=self.env, preexec_fn=_die_with_parent)
            code = self._wait(self.child)
            if self.stopping.is_set():
                return 128 - code if code < 0 else code
            if code == 0:
                log.info("worker consumer stopped on request (exit code 0)")
                return 0
            failures = 1 if time.monotonic() - started >= self.healthy_after else failures + 1
            wait = self.delay(failures)
            self.restarts += 1
            log.warning("worker consumer ended with %s; starting it again in %.1f s (restart %d)",
                        describe_exit(code), wait, self.restarts)
            if self.stopping.wait(wait):
                return 0


def consumer_command(python: str, verbose: int, options: Sequence[str]) -> list[str]:
    """The command line of the consumer process: `fakewatch worker --no-restart` with the same options."""
    return [python, "-m", "fakewatch.cli", *(["-" + "v" * verbose] if verbose else []), "worker", *options,
            "--no-restart"]


def consumer_environment(overrides: dict[str, str | None]) -> dict[str, str]:
    """The supervisor's environment plus its command-line settings (passwords stay out of argv)."""
    return child_environment({f"FAKEWATCH_{name.upper()}": value for name, value in overrides.items()
                              if value is not None})
