"""Settings: one frozen object, resolved once from defaults, a config file, FAKEWATCH_* variables and flags.

Precedence, lowest to highest: built-in default < config file < environment < command-line flag.
The config file is TOML with the same names as below (``database_url = "..."``); it is read from
``FAKEWATCH_CONFIG`` or, if that is unset, ``$XDG_CONFIG_HOME/fakewatch/config.toml`` when it exists.

This is the only module that reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fakewatch.errors import ConfigError
from fakewatch.queues import CLASSIFY_QUEUES

ENV_PREFIX = "FAKEWATCH_"
RUNTIMES = ("lite", "keras")


def _xdg(name: str, fallback: str) -> Path:
    value = os.environ.get(name)
    return Path(value) if value else Path.home() / fallback


def default_home() -> Path:
    """Where fakewatch keeps its database and classifiers unless told otherwise."""
    return _xdg("XDG_DATA_HOME", ".local/share") / "fakewatch"


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up chatter out of the logs, unless the user chose a level."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus ``extra``, for a command fakewatch starts (action hook, worker consumer)."""
    return {**os.environ, **extra}



def cores() -> int:
    """CPU cores this process may run on (its affinity mask, as a container's cpuset sets it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

@dataclass(frozen=True)
class Limits:
    """How much of one file fakewatch reads and decodes (from ``max_file_bytes`` and ``max_pixels``)."""

    max_pixels: int
    max_file_bytes: int


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Every knob fakewatch has. Each field's ``help`` is shown in ``fakewatch settings`` and the README."""

    home: str = _setting("", "Data folder for the default database and the classifier registry "
                             "(default: $XDG_DATA_HOME/fakewatch, i.e. ~/.local/share/fakewatch).")
    database_url: str = _setting("", "SQLAlchemy URL of the results database "
                                     "(default: sqlite:///HOME/fakewatch.db). PostgreSQL: "
                                     "postgresql+psycopg://user:pass@host/db.")
    classifier: str = _setting("", "Classifier to use: a version id from `fakewatch classifiers list` or a "
                                   "path to a classifier directory (default: the active version).")
    runtime: str = _setting("lite", "What runs a trained network: lite (its ONNX export in ONNX Runtime, no "
                                    "TensorFlow; versions without an export fall back to keras with a warning) "
                                    "or keras (TensorFlow, e.g. for a GPU worker).")
    registry_dir: str = _setting("", "Where trained classifier versions are stored (default: HOME/classifiers).")
    broker_url: str = _setting("", "Celery broker URL, e.g. redis://localhost:6379/0. Empty means embedded "
                                   "mode: classify in-process, no servers.")
    queue: str = _setting("cpu", "Queue that classification tasks are sent to in distributed mode: cpu or gpu.")
    task_batch: int = _setting(256, "Image ids per queued task in distributed mode.")
    visibility_timeout: int = _setting(3600, "Seconds before Redis redelivers a task a worker took but never "
                                             "acknowledged; longer than the slowest batch.")
    task_soft_time_limit: int = _setting(600, "Seconds a classification task may run before it is asked to stop.")
    task_time_limit: int = _setting(900, "Seconds after which a stuck task's worker process is killed.")
    sweep_after: float = _setting(600.0, "Seconds an image may stay pending after being queued before the "
                                         "sweeper queues it again (lost message, killed worker).")
    sweep_interval: float = _setting(60.0, "Seconds between sweeps in a distributed-mode watcher (0 disables).")
    retry_max_delay: float = _setting(60.0, "Longest wait, in seconds, between retries after a broker or database "
                                            "outage. The watcher's steps and the workers' tasks back off from 1 s, "
                                            "doubling up to this.")
    batch_size: int = _setting(256, "Images per classifier call (and per queued task in distributed mode).")
    runtime_threads: int = _setting(0, "Threads one process's lite runtime (ONNX Runtime) computes with. 0: "
                                       "automatic, the process's CPU cores, shared out among a worker's "
                                       "processes (`fakewatch worker --concurrency N` gives each cores / N, "
                                       "at least 1).")
    uncertain_margin: float = _setting(0.1, "Images whose calibrated p_fake lies within this distance of the "
                                            "classifier's threshold get the label 'uncertain'. 0 disables.")
    max_pixels: int = _setting(100_000_000, "Largest image (width x height) that is decoded; bigger ones are "
                                            "recorded as error kind 'too_large' (decompression-bomb guard).")
    max_file_bytes: int = _setting(200 * 1024 * 1024, "Largest file, in bytes, that is read; bigger ones are "
                                                      "recorded as error kind 'too_large'.")
    stability_delay: float = _setting(2.0, "Seconds a file's size and mtime must stay unchanged before the "
                                           "watcher treats it as complete.")
    polling: bool = _setting(False, "Watch by polling the file system instead of OS events (network shares).")
    poll_interval: float = _setting(1.0, "Seconds between polls when polling is on.")
    rescan_interval: float = _setting(300.0, "Seconds between the watcher's safety-net rescans of its folders "
                                             "(0 disables).")
    include: tuple[str, ...] = _setting((), "Glob patterns a file name must match to be scanned "
                                            "(comma-separated in the environment; default: all).")
    exclude: tuple[str, ...] = _setting((), "Glob patterns of file names or paths to ignore, on top of the "
                                            "built-in temp/system-file list (comma-separated in the environment).")
    follow_outside_links: bool = _setting(False, "Follow file symlinks whose target lies outside every scanned "
                                                 "or watched folder (and, for refresh, the inbox). Off: such "
                                                 "links are recorded as error kind outside_root and never read.")
    inbox_dir: str = _setting("", "Folder whose real/ and fake/ sub-folders feed the next refresh "
                                  "(default: HOME/inbox).")
    base_data: str = _setting("", "Labelled folder (real/ + fake/, or train/valid/test) that refreshes extend "
                                  "with new labelled images; one for every domain, or one per domain as "
                                  "`thumbnail=FOLDER;photo=FOLDER`. Empty: train on the labelled images alone.")
    benchmark_dir: str = _setting("", "Labelled folder every refresh candidate and the active classifier are "
                                      "compared on (the promotion gate's fixed benchmark); one for every domain, "
                                      "or one per domain as `thumbnail=FOLDER;photo=FOLDER`. Required by refresh.")
    refresh_min_labels: int = _setting(50, "New labelled images needed before `fakewatch refresh` retrains.")
    refresh_mode: str = _setting("finetune", "How refresh trains: finetune (from the active classifier) or "
                                             "scratch (a new network).")
    refresh_epochs: int = _setting(5, "Epochs a refresh trains for.")
    refresh_domain: str = _setting("thumbnail", "Which domain's active classifier refresh retrains: thumbnail, "
                                                "photo (any domain an active classifier declares), or all (each "
                                                "active domain in turn).")
    refresh_tolerance: float = _setting(0.005, "How much worse (accuracy and ROC-AUC) on the benchmark a "
                                               "candidate may be and still be promoted.")
    refresh_interval: float = _setting(0.0, "Seconds between scheduled refreshes run by the Celery beat "
                                            "(`fakewatch worker --beat`); 0 = off.")
    quarantine_dir: str = _setting("", "Verdict action: move files whose verdict is in action_labels into this "
                                       "folder (never overwriting; the database keeps both paths). Must lie "
                                       "outside every scanned or watched folder. Empty: off.")
    action_command: str = _setting("", "Verdict action: a command run for each such file, without a shell, with "
                                       "the file's path as its last argument and the verdict in "
                                       "FAKEWATCH_VERDICT_* variables. Empty: off.")
    webhook_url: str = _setting("", "Verdict action: an http:// or https:// URL that receives each such "
                                    "verdict as a JSON POST. Empty: off.")
    action_labels: tuple[str, ...] = _setting(("fake",), "Verdict labels that trigger the actions "
                                                         "(comma-separated: fake, real, uncertain).")
    action_timeout: float = _setting(30.0, "Seconds the action command and each webhook request may take.")
    webhook_retries: int = _setting(3, "Times a failed webhook request is tried again (with the retry backoff).")
    c2pa_trust_anchors: str = _setting("", "PEM file of trusted root certificates for C2PA signers. Signers "
                                           "under them are shown as trusted; without it none is.")
    c2pa_strict: bool = _setting(False, "Count a C2PA AI-source assertion as proof only when its signer is "
                                        "trusted (c2pa_trust_anchors); other signers then only suggest AI.")
    api_token: str = _setting("", "Token for `fakewatch serve`: API calls send `Authorization: Bearer TOKEN`, "
                                  "browsers open the login URL once. Empty: serve makes a random one at each "
                                  "start and prints the login URL. Required to serve beyond loopback.")
    web_hosts: tuple[str, ...] = _setting((), "Extra Host names the console answers to besides the address it "
                                              "is bound to (comma-separated), e.g. a reverse proxy's name.")
    train_input_size: int = _setting(32, "Square input size, in pixels, of newly trained classifiers.")
    seed: int = _setting(1337, "Random seed for dataset splits, augmentation and weight initialisation.")
    log_level: str = _setting("INFO", "Logging level: DEBUG, INFO, WARNING or ERROR.")

    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser() if self.home else default_home()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home_path / 'fakewatch.db'}"

    @property
    def registry_path(self) -> Path:
        return Path(self.registry_dir).expanduser() if self.registry_dir else self.home_path / "classifiers"

    @property
    def inbox_path(self) -> Path:
        return Path(self.inbox_dir).expanduser() if self.inbox_dir else self.home_path / "inbox"

    @property
    def uploads_path(self) -> Path:
        """Where the console stores uploaded images, content-addressed."""
        return self.home_path / "uploads"

    @property
    def web_cache_path(self) -> Path:
        """Where the console caches thumbnails and previews."""
        return self.home_path / "web-cache"

    @property
    def limits(self) -> Limits:
        return Limits(self.max_pixels, self.max_file_bytes)

    @property
    def embedded(self) -> bool:
        return not self.broker_url

    def retry_delay(self, failures: int, first: float = 1.0) -> float:
        """Seconds to wait after ``failures`` failures in a row (1, 2, 4, ... up to ``retry_max_delay``)."""
        return min(self.retry_max_delay, first * 2 ** min(max(failures - 1, 0), 30))

    def for_domain(self, name: str, domain: str) -> str:
        """A folder setting (``base_data``, ``benchmark_dir``) for one domain: the plain value, or this
        domain's entry of ``thumbnail=FOLDER;photo=FOLDER`` (empty when it names none)."""
        return per_domain(getattr(self, name), domain)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


_PER_DOMAIN = re.compile(r"^[A-Za-z0-9_-]+=")


def per_domain(value: str, domain: str) -> str:
    """``value`` when it is one folder for every domain; else ``domain``'s entry of ``name=FOLDER;...``."""
    if not _PER_DOMAIN.match(value):
        return value
    folders = {}
    for entry in filter(str.strip, value.split(";")):
        name, separator, folder = entry.partition("=")
        if not separator or not name.strip():
            raise ConfigError(f"{value!r}: expected one folder, or DOMAIN=FOLDER entries separated by ';'")
        folders[name.strip()] = folder.strip()
    return folders.get(domain, "")


def setting_fields() -> list[dataclasses.Field[Any]]:
    return list(fields(Settings))


def _coerce(name: str, raw: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"expected true/false, got {raw!r}")
        if isinstance(default, tuple):
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(item).strip() for item in items if str(item).strip())
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: {exc}. Fix the value in the config file or "
                          f"{ENV_PREFIX}{name.upper()}.") from exc


def _config_file(env: Mapping[str, str]) -> Path | None:
    explicit = env.get(ENV_PREFIX + "CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} (from {ENV_PREFIX}CONFIG) does not exist.")
        return path
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    candidate = base / "fakewatch" / "config.toml"
    return candidate if candidate.is_file() else None


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc


def load_settings(overrides: Mapping[str, Any] | None = None,
                  env: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings from defaults, config file, environment and ``overrides`` (flags; None = unset)."""
    env = os.environ if env is None else env
    known = {f.name: f.default for f in setting_fields()}
    values: dict[str, Any] = {}
    path = _config_file(env)
    if path is not None:
        for name, raw in _read_config_file(path).items():
            if name not in known:
                raise ConfigError(f"unknown setting {name!r} in {path}; see `fakewatch settings`.")
            values[name] = _coerce(name, raw, known[name])
    for name, default in known.items():
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _coerce(name, raw, default)
    for name, raw in (overrides or {}).items():
        if name not in known:
            raise ConfigError(f"unknown setting {name!r}")
        if raw is not None:
            values[name] = _coerce(name, raw, known[name])
    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if settings.queue not in CLASSIFY_QUEUES:
        raise ConfigError(f"queue must be one of {', '.join(CLASSIFY_QUEUES)}.")
    if settings.task_batch < 1 or settings.visibility_timeout < 1 or settings.task_soft_time_limit < 1:
        raise ConfigError("task_batch, visibility_timeout and task_soft_time_limit must be positive.")
    if settings.task_time_limit <= settings.task_soft_time_limit:
        raise ConfigError("task_time_limit must be longer than task_soft_time_limit.")
    if settings.visibility_timeout <= settings.task_time_limit:
        raise ConfigError("visibility_timeout must be longer than task_time_limit, or Redis redelivers "
                          "tasks that are still running.")
    if settings.runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)}.")
    if not set(settings.action_labels) <= {"fake", "real", "uncertain"}:
        raise ConfigError("action_labels may name fake, real and uncertain only.")
    if settings.action_timeout <= 0 or settings.webhook_retries < 0:
        raise ConfigError("action_timeout must be positive and webhook_retries at least 0.")
    _validate_actions(settings)
    if settings.retry_max_delay <= 0:
        raise ConfigError("retry_max_delay must be positive.")
    if settings.batch_size < 1:
        raise ConfigError("batch_size must be at least 1.")
    if settings.runtime_threads < 0:
        raise ConfigError("runtime_threads must be 0 (automatic) or a positive number of threads.")
    if not 0 <= settings.uncertain_margin < 0.5:
        raise ConfigError("uncertain_margin must be between 0 and 0.5.")
    if settings.max_pixels < 1 or settings.max_file_bytes < 1:
        raise ConfigError("max_pixels and max_file_bytes must be positive.")
    if settings.stability_delay < 0 or settings.poll_interval <= 0:
        raise ConfigError("stability_delay must be >= 0 and poll_interval > 0.")
    if settings.refresh_mode not in ("finetune", "scratch"):
        raise ConfigError("refresh_mode must be finetune or scratch.")
    if settings.refresh_min_labels < 1 or settings.refresh_epochs < 1 or settings.refresh_tolerance < 0:
        raise ConfigError("refresh_min_labels and refresh_epochs must be positive, refresh_tolerance >= 0.")
    for name in ("base_data", "benchmark_dir"):
        settings.for_domain(name, "")  # a malformed per-domain list fails here, before any work
    if settings.train_input_size < 16:
        raise ConfigError("train_input_size must be at least 16 pixels.")
    if settings.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log_level must be DEBUG, INFO, WARNING or ERROR.")


def _validate_actions(settings: Settings) -> None:
    """The webhook must be an http(s) URL; the quarantine folder, when it exists, a folder."""
    if settings.webhook_url:
        parts = urlsplit(settings.webhook_url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"webhook_url must be an http:// or https:// URL with a host, not a "
                              f"{parts.scheme or 'scheme-less'} URL.")
    if settings.quarantine_dir:
        folder = os.path.realpath(os.path.expanduser(settings.quarantine_dir))
        if os.path.lexists(folder) and not os.path.isdir(folder):
            raise ConfigError(f"quarantine_dir {folder!r} exists and is not a folder.")
