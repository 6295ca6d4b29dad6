"""Readable summaries for `show` and `classifiers show`: the records their `--json` prints whole, as lines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fakewatch.names import shown
from fakewatch.values import Reason


def _scores(item: dict[str, Any]) -> str:
    """p_fake, confidence and threshold, or why there are none."""
    if item.get("reason") == Reason.OUT_OF_DOMAIN:
        return "not judged: no classifier covers this image"
    if item.get("p_fake") is None:
        return "-"
    return f"p_fake {item['p_fake']:.3f}  confidence {item['confidence']:.2f}  threshold {item['threshold']:.2f}"


def _field(name: str, value: object) -> str:
    return f"  {name:<14}{shown(value)}"


def record_lines(record: dict[str, Any]) -> Iterator[str]:
    """The lines of `fakewatch show` for one image's record (:func:`fakewatch.db.results.image_record`)."""
    yield f"image {record['id']}: {shown(record['path'])}"
    status = record["status"] + (" (deleted)" if record["deleted"] else "")
    if record["status"] == "error":
        status += f": {record['error_kind']}: {record['error']}"
    yield _field("status", status)
    if record["classifier"] is not None:
        yield _field("verdict", f"{record['label']}  {_scores(record)}")
        reason = record["reason"] + (f": {record['reason_detail']}" if record["reason_detail"] else "")
        yield _field("reason", reason)
        yield _field("classifier", f"{record['classifier']} at {record['classified_at']}")
    else:
        yield _field("verdict", "none yet")
    yield _field("sha256", record["sha256"] or "-")
    yield _field("size", f"{record['size']:,} bytes" if record["size"] is not None else "-")
    yield _field("seen", f"first {record['first_seen']}, last {record['last_seen']}")
    for name, key in (("found at", "original_path"), ("warnings", "warnings")):
        if record.get(key):
            yield _field(name, record[key])
    yield from _section("history", record["history"], lambda item: (
        f"{item['created_at']}  {item['classifier']}  {item['label']}  {_scores(item)}  [{item['reason']}]"))
    yield from _section("same content", record["same_content"], shown)
    yield from _section("labels", record["labels"], lambda item: (
        f"{item['created_at']}  {item['label']} by {item['author']}" + (f": {item['note']}" if item["note"] else "")))
    yield from _section("evidence", record["evidence"], lambda item: f"{item['strength']}: {item['summary']}")
    yield from _section("actions", record["actions"], lambda item: (
        f"{item['action']} {item['status']}" + (f": {item['detail']}" if item["detail"] else "")))
    yield "(`fakewatch show --json` prints the whole record)"


def _section(title: str, items: list[Any], line: Any) -> Iterator[str]:
    if items:
        yield f"{title} ({len(items)}):"
        for item in items:
            yield f"  {shown(line(item))}"


def card_lines(path: str, card: dict[str, Any], headline: dict[str, float], active: bool) -> Iterator[str]:
    """The lines of `fakewatch classifiers show` for one version's card (``headline``: its test figures)."""
    domain = card.get("domain") or {}
    yield f"{card['version']}{'  (active)' if active else ''}"
    yield _field("path", path)
    if isinstance(domain, dict) and domain:
        yield _field("domain", f"{domain.get('name')}: {domain.get('description', '')}".rstrip(": "))
    parameters = f" ({card['parameters']:,} parameters)" if isinstance(card.get("parameters"), int) else ""
    yield _field("architecture", f"{card.get('architecture', '-')}{parameters}")
    for name, key in (("network", "network"), ("output", "output"), ("crops", "crop_policy")):
        if card.get(key):
            yield _field(name, card[key])
    spec = card.get("input_spec") or {}
    if spec:
        yield _field("input", f"{spec.get('size')} px {spec.get('color_order', '')}, {spec.get('resize', '')}")
    margin = card.get("uncertain_margin")
    yield _field("threshold", f"{card.get('threshold')}" + (f" (uncertain within {margin})" if margin else "")
                 + (f", temperature {card['temperature']:.3f}" if card.get("temperature") else ""))
    yield _field("created", card.get("created_at", "-"))
    yield _field("parent", card.get("parent") or "-")
    figures = [f"{name} {headline[key]:.4f}" for name, key in (("accuracy", "accuracy"), ("ROC-AUC", "roc_auc"),
                                                                ("false positives", "false_positive_rate"))
               if isinstance(headline.get(key), float)]
    yield _field("test figures", ", ".join(figures) or "-")
    gate = card.get("gate")
    if gate:
        yield _field("gate", gate.get("status", "-") + (f" ({gate['reason']})" if gate.get("reason") else ""))
    export = card.get("export")
    if isinstance(export, dict) and export.get("file"):
        yield _field("export", export["file"])
    yield "(`fakewatch classifiers show --json` prints the whole card)"
