"""Evidence in the database: which contents the current analyzers have read, their findings, and proofs.

A finding's details are stored as JSON of at most ``MAX_DETAILS`` characters. Longer details are cut by
structure, never mid-string: long strings and lists are shortened, then keys dropped, and the result says
``"truncated": true``, so whatever reads them back (``fakewatch show``, the API, the image page) gets
valid JSON.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from fakewatch.db.common import Prepared, among, as_utc, listed, upsert, utcnow
from fakewatch.db.tables import Content
from fakewatch.db.tables import Evidence as EvidenceRow
from fakewatch.evidence import VERSION, Evidence, proof
from fakewatch.values import EvidenceStrength, choices

MAX_DETAILS = 20_000  # characters of JSON details kept per finding
_SHORTER = ((2000, 100), (500, 20), (100, 5), (20, 2))  # (characters per string, items per list or object)
CONTENTS = cast(Table, Content.__table__)
_EVIDENCE_VERSIONS = Prepared(lambda dialect: select(CONTENTS.c.id, CONTENTS.c.evidence_version).where(
    listed(CONTENTS.c.id, "ids", dialect)))
_ANALYZED = Prepared(lambda dialect: update(CONTENTS).where(listed(CONTENTS.c.id, "ids", dialect)).values(
    evidence_version=bindparam("version", type_=CONTENTS.c.evidence_version.type)))
_PROOFS = Prepared(lambda dialect: select(EvidenceRow.content_id, EvidenceRow.analyzer, EvidenceRow.analyzer_version,
                                          EvidenceRow.kind, EvidenceRow.summary).where(
    listed(EvidenceRow.content_id, "ids", dialect), EvidenceRow.strength == EvidenceStrength.PROVES_AI.value
).order_by(EvidenceRow.id))


def unanalyzed(session: Session, content_ids: Iterable[int]) -> set[int]:
    """The contents among ``content_ids`` that the current analyzer versions have not read yet."""
    content_ids = list(content_ids)
    if not content_ids:
        return set()
    rows = _EVIDENCE_VERSIONS(session, ids=content_ids).all()
    return {content_id for content_id, version in rows if version != VERSION}


def record(session: Session, found: Mapping[int, list[Evidence]]) -> None:
    """Store the findings of the current analyzers for these contents (a repeat adds nothing)."""
    if not found:
        return
    now = utcnow()
    rows = [{"content_id": content_id, "analyzer": item.analyzer, "analyzer_version": item.version,
             "kind": item.kind, "strength": item.strength, "summary": item.summary[:1000],
             "details": details_json(item.details) if item.details else None,
             "created_at": now}
            for content_id, items in sorted(found.items()) for item in items]
    if rows:
        upsert(session, EvidenceRow.__table__, rows, keys=["content_id", "analyzer", "analyzer_version", "kind"])
    _ANALYZED(session, ids=list(found), version=VERSION)


def details_json(details: Mapping[str, Any], limit: int = MAX_DETAILS) -> str:
    """``details`` as JSON of at most ``limit`` characters, shortened by structure when longer."""
    text = json.dumps(details, default=str)
    if len(text) <= limit:
        return text
    plain = json.loads(text)  # what JSON makes of it (tuples as lists, other values as strings)
    for characters, items in _SHORTER:
        shortened = {"truncated": True, **_shorten(plain, characters, items, 0)}
        text = json.dumps(shortened)
        if len(text) <= limit:
            return text
    kept: dict[str, Any] = {"truncated": True}  # still too long: as many keys as fit
    for key, value in shortened.items():
        if len(json.dumps({**kept, key: value})) <= limit:
            kept[key] = value
    return json.dumps(kept)


def _shorten(value: Any, characters: int, items: int, depth: int) -> Any:
    """``value`` with strings cut to ``characters`` and lists and objects to ``items`` entries (each cut
    marked), nested at most 8 deep."""
    if isinstance(value, str):
        return value if len(value) <= characters else value[:characters] + f"... ({len(value):,} characters)"
    if depth >= 8 and isinstance(value, (dict, list)):
        return _shorten(json.dumps(value), characters, items, depth)
    if isinstance(value, list):
        shortened = [_shorten(item, characters, items, depth + 1) for item in value[:items]]
        return shortened + ([f"... ({len(value) - items:,} more)"] if len(value) > items else [])
    if isinstance(value, dict):
        kept = {key[:characters]: _shorten(item, characters, items, depth + 1)
                for key, item in list(value.items())[:items]}
        if len(value) > items:
            kept["..."] = f"{len(value) - items:,} more keys"
        return kept
    return value


def _details(stored: str | None) -> dict[str, Any]:
    """Stored details as a dict; details that an older version cut mid-string come back as their text."""
    if not stored:
        return {}
    try:
        loaded = json.loads(stored)
    except ValueError:
        return {"truncated": True, "text": stored[:2000]}
    return loaded if isinstance(loaded, dict) else {"value": loaded}


def proofs(session: Session, content_ids: Iterable[int]) -> dict[int, Evidence]:
    """For contents with ``proves_ai`` evidence: the proof (signed first, else the newest finding)."""
    content_ids = list(content_ids)
    if not content_ids:
        return {}
    found: dict[int, list[Evidence]] = defaultdict(list)
    for content_id, analyzer, version, kind, summary in _PROOFS(session, ids=content_ids).all():
        found[content_id].insert(0, Evidence(analyzer, version, kind, "proves_ai", summary))
    return {content_id: item for content_id, items in found.items() if (item := proof(items))}


def evidence_of(session: Session, content_ids: Iterable[int], details: bool = False) -> dict[int, list[dict[str, Any]]]:
    """Each content's findings, strongest first, for listings (``details`` adds the raw details)."""
    content_ids = [content_id for content_id in content_ids if content_id is not None]
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not content_ids:
        return found
    order = {strength: rank for rank, strength in enumerate(choices(EvidenceStrength))}  # strongest first
    for row in session.scalars(select(EvidenceRow).where(among(session, EvidenceRow.content_id, content_ids))
                               .order_by(EvidenceRow.id)):
        item: dict[str, Any] = {"kind": row.kind, "strength": row.strength, "summary": row.summary,
                                "analyzer": f"{row.analyzer}/{row.analyzer_version}"}
        if details:
            item["details"] = _details(row.details)
            item["created_at"] = as_utc(row.created_at).isoformat()  # type: ignore[union-attr]
        found[row.content_id].append(item)
    for items in found.values():
        items.sort(key=lambda item: order.get(item["strength"], 9))
    return found
