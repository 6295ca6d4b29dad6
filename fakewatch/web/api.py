"""The HTTP API under /api/v1: the CLI's operations, with the JSON row shape of `scan --format json`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi import Path as PathParameter
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from fakewatch.errors import FilterError
from fakewatch.filters import MAX_ID, ResultFilter
from fakewatch.names import csv_cell
from fakewatch.values import RESULT_COLUMNS, AnalystLabel, Order
from fakewatch.web.console import Console, NotFound, Upload

router = APIRouter(prefix="/api/v1")
MAX_FILES = 64
PAGE_LIMIT = 1000
ImageId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="an image id, as listings give it")]
TOO_MANY_FILES = "{count} files in one request; at most {limit} are checked at once: send them in batches"


def console_of(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


def result_filter(label: str | None = None, min_confidence: float | None = None, since: str | None = None,
                  path: str | None = None, classifier: str | None = None, status: str | None = None,
                  disagreements: bool = False, changed: bool = False, include_deleted: bool = False,
                  limit: int | None = 50, after: int | None = None, order: str = "newest",
                  offset: int | None = None, reason: str | None = None, evidence: str | None = None) -> ResultFilter:
    """The `fakewatch results` filters from query parameters; a bad value is a 422 that says why."""
    try:
        return ResultFilter.parse(label=label, min_confidence=min_confidence, since=since, path=path,
                                  classifier=classifier, status=status, disagreements=disagreements,
                                  changed=changed, include_deleted=include_deleted, limit=limit, after=after,
                                  order=order, offset=offset, reason=reason, evidence=evidence,
                                  max_limit=PAGE_LIMIT)
    except FilterError as exc:
        raise HTTPException(422, str(exc)) from exc


def _found(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """Liveness and database reachability; needs no token."""
    try:
        console_of(request).ping()
    except Exception:  # noqa: BLE001 - any failure means: not healthy
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


async def read_uploads(request: Request, limit: int) -> list[Upload]:
    """The files of multipart field ``files`` (at most MAX_FILES: more is a 413 that says so), each read up
    to one byte over ``limit``."""
    # the page routes' CSRF check may have parsed the form already (with the default limits): count here
    form = await request.form(max_files=MAX_FILES * 16, max_fields=16)
    files = [value for name, value in form.multi_items() if name == "files" and not isinstance(value, str)]
    if len(files) > MAX_FILES:
        raise HTTPException(413, TOO_MANY_FILES.format(count=len(files), limit=MAX_FILES))
    uploads = []
    for value in files:
        data = await value.read(limit + 1)  # one byte more than allowed is enough to refuse it
        uploads.append(Upload(name=value.filename or "upload", data=data))
    if not uploads:
        raise HTTPException(422, "send one or more files in multipart field 'files'")
    return uploads


SCAN_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"],
    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"},
                             "description": f"the images, one part each (at most {MAX_FILES})"}}}}}}}


@router.post("/scan", openapi_extra=SCAN_BODY)
async def scan(request: Request) -> JSONResponse:
    """Check uploaded images (multipart field ``files``, repeatable). Embedded mode answers with verdicts;
    distributed mode with pending rows that workers finish (poll ``GET /images/{id}``)."""
    console = console_of(request)
    uploads = await read_uploads(request, console.settings.max_file_bytes)
    from starlette.concurrency import run_in_threadpool

    rows = await run_in_threadpool(console.scan, uploads)
    refused = [row for row in rows if row.get("status") == "refused"]
    code = refused[0]["http_status"] if refused and len(refused) == len(rows) else 200
    return JSONResponse({"results": rows, "mode": "embedded" if console.settings.embedded else "distributed"},
                        status_code=code)


def _csv(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        cells = {**row, "evidence": "; ".join(f"{item['strength']}: {item['summary']}" for item in row["evidence"])}
        writer.writerow({key: csv_cell(value) for key, value in cells.items()})
        if buffer.tell() > 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json_array(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield "["
    for index, row in enumerate(rows):
        yield ("," if index else "") + json.dumps(row, sort_keys=True)
    yield "]\n"


@router.get("/results")
def list_results(request: Request, label: str | None = None, min_confidence: float | None = None,
                 since: str | None = None, path: str | None = None, classifier: str | None = None,
                 status: str | None = None,
                 disagreements: bool = False, changed: bool = False, include_deleted: bool = False,
                 limit: int | None = 50, after: int | None = None, order: str = "newest",
                 offset: int | None = None, reason: str | None = None, evidence: str | None = None,
                 format: Literal["json", "csv", "export"] = "json") -> Response:  # noqa: A002
    """Images with their latest verdict, newest first, filtered as `fakewatch results` filters.
    ``format=csv`` or ``export`` (a JSON array) streams every matching row, without a page limit."""
    chosen = result_filter(label, min_confidence, since, path, classifier, status, disagreements, changed,
                           include_deleted, None if format != "json" else limit, after, order, offset, reason,
                           evidence)
    console = console_of(request)
    if format == "csv":
        return StreamingResponse(_csv(console.stream(chosen)), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="fakewatch-results.csv"'})
    if format == "export":
        return StreamingResponse(_json_array(console.stream(chosen)), media_type="application/json",
                                 headers={"Content-Disposition": 'attachment; filename="fakewatch-results.json"'})
    rows = console.results(chosen)
    following = None
    if chosen.limit and len(rows) == chosen.limit:
        following = ({"after": rows[-1]["id"]} if chosen.order == Order.NEWEST
                     else {"offset": (chosen.offset or 0) + len(rows)})
    return JSONResponse({"results": rows, "next": following})


@router.get("/results/counts")
def result_counts(request: Request, label: str | None = None, min_confidence: float | None = None,
                  since: str | None = None, path: str | None = None, classifier: str | None = None,
                  status: str | None = None, disagreements: bool = False, changed: bool = False,
                  include_deleted: bool = False) -> dict[str, int]:
    """How many images the filter matches per label (the label filter itself aside)."""
    chosen = result_filter(label, min_confidence, since, path, classifier, status, disagreements, changed,
                           include_deleted, None)
    return console_of(request).counts(chosen)


@router.get("/images/{image_id}")
def image(request: Request, image_id: ImageId) -> dict[str, Any]:
    """One image's record: latest verdict, history, other paths with the same content, labels, actions."""
    return _found(console_of(request).image, image_id)  # type: ignore[no-any-return]


@router.get("/images/{image_id}/thumbnail")
def thumbnail(request: Request, image_id: ImageId) -> Response:
    from fakewatch.web.console import THUMBNAIL_SIDE

    data = _found(console_of(request).picture, image_id, THUMBNAIL_SIDE)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/images/{image_id}/preview")
def preview(request: Request, image_id: ImageId) -> Response:
    """The picture itself, re-encoded as a JPEG of at most 1600 pixels a side."""
    from fakewatch.web.console import PREVIEW_SIDE

    data = _found(console_of(request).picture, image_id, PREVIEW_SIDE)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/images/{image_id}/heatmap")
async def heatmap(request: Request, image_id: ImageId) -> Response:
    """Where the classifier looked: an occlusion heatmap over the picture (PNG), as `fakewatch explain` draws."""
    from starlette.concurrency import run_in_threadpool

    data = await run_in_threadpool(_found, console_of(request).heatmap, image_id)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


class LabelIn(BaseModel):
    label: AnalystLabel
    note: str | None = Field(default=None, max_length=4000)
    author: str | None = Field(default=None, max_length=255)


@router.post("/images/{image_id}/labels")
def add_label(request: Request, image_id: ImageId, body: Annotated[LabelIn, Body()]) -> dict[str, Any]:
    """Record an analyst's judgement, as `fakewatch label` does; answers with the image's record."""
    return _found(console_of(request).add_label, image_id, body.label, body.note, body.author)  # type: ignore[no-any-return]


@router.get("/classifiers")
def classifiers(request: Request) -> list[dict[str, Any]]:
    return console_of(request).classifiers()


@router.post("/classifiers/{version}/activate")
def activate(request: Request, version: str) -> dict[str, str]:
    """Make ``version`` (one listed by ``GET /classifiers``) the active classifier."""
    return {"active": _found(console_of(request).activate, version)}


@router.get("/classifiers/{version}/plots/{name}")
def plot(request: Request, version: str, name: str) -> Response:
    console = console_of(request)
    if version not in {item["version"] for item in console.classifiers()}:
        raise HTTPException(404, f"no classifier version {version!r}")
    return Response(_found(console.plot, version, name), media_type="image/png")


@router.get("/status")
def status(request: Request) -> dict[str, Any]:
    console = console_of(request)
    return {**console.status(), "verdicts_last_hour_per_minute": console.per_minute()}


@router.get("/metrics")
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format (also at ``/metrics``, where Prometheus looks by default)."""
    return PlainTextResponse(console_of(request).metrics(), media_type="text/plain; version=0.0.4")
