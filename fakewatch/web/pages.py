"""The console's pages: sign in, check an image, results, one image, classifiers, status and the API
reference (server-rendered)."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from fakewatch.errors import FilterError
from fakewatch.filters import ResultFilter
from fakewatch.names import shown
from fakewatch.values import AnalystLabel, EvidenceKind, Order, Reason, Status, VerdictLabel, choices, one_of
from fakewatch.web import reference
from fakewatch.web.api import MAX_FILES, ImageId, console_of, read_uploads
from fakewatch.web.console import NotFound
from fakewatch.web.security import COOKIE, client_of, require_csrf, throttled

router = APIRouter(dependencies=[Depends(require_csrf)], include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["shown"] = lambda value: shown(str(value)) if value is not None else ""
templates.env.filters["when"] = lambda value: f"{str(value)[:10]} {str(value)[11:19]} UTC" if value else "–"
FILTER_KEYS = ("label", "min_confidence", "since", "path", "classifier", "status", "disagreements", "changed",
               "include_deleted", "order", "view", "reason", "evidence")
PAGE = 60
# the console's filter menus: every value the filters take, with the words the menus show
MENUS = {
    "label": [(value, value) for value in choices(VerdictLabel)],
    "status": [(value, value) for value in choices(Status)],
    "reason": [(Reason.PROVENANCE.value, "proof in the file"), (Reason.CLASSIFIER.value, "classifier"),
               (Reason.OUT_OF_DOMAIN.value, "no classifier covers it")],
    "evidence": [(value, value) for value in choices(EvidenceKind)],
    "order": [(Order.NEWEST.value, "newest verdict"), (Order.P_FAKE.value, "most likely fake"),
              (Order.PATH.value, "path")],
}


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    console = console_of(request)
    guard = request.app.state.guard
    return templates.TemplateResponse(request, name, {
        "csrf": guard.csrf, "mode": "embedded" if console.settings.embedded else "distributed",
        "active_classifier": ", ".join(console.registry.in_use()), "page": name.removesuffix(".html"),
        "uploads": str(console.settings.uploads_path) + os.sep, "max_files": MAX_FILES, **context},
        status_code=status_code)


def _local(target: str) -> str:
    """``target`` if it is a path on this console, else the check page (no redirect to another site)."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/check"


def login_page(request: Request, message: str = "", status_code: int = 401, target: str = "") -> HTMLResponse:
    """The sign-in form, shown for any page asked for without the session cookie (then back to that page)."""
    if not target:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return templates.TemplateResponse(request, "login.html", {"message": message, "next": _local(target)},
                                      status_code=status_code)


def _signed_in(request: Request, token: str, target: str) -> Response:
    guard = request.app.state.guard
    if (refused := throttled(request, guard)) is not None:
        return refused
    if not token or not guard.token_matches(token):
        if token:
            guard.throttle.failed(client_of(request))
        return login_page(request, "Wrong or missing token." if token else "", 401, target)
    response = RedirectResponse(_local(target), status_code=303)
    response.set_cookie(COOKIE, guard.session, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.get("/login")
def login(request: Request, token: str = "", next: str = "/check") -> Response:  # noqa: A002
    """The login URL `fakewatch serve` prints (``?token=``), or the sign-in form without one."""
    return _signed_in(request, token, next)


@router.post("/login")
async def login_form(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=4)
    token, target = (str(form.get(key) or "") for key in ("token", "next"))
    return _signed_in(request, token, target or "/check")


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/check", status_code=303)


@router.get("/check", response_class=HTMLResponse)
def check_page(request: Request) -> HTMLResponse:
    return render(request, "check.html", cards=[])


@router.post("/check", response_class=HTMLResponse)
async def check_upload(request: Request) -> HTMLResponse:
    """One card per file: its verdict, or why it was refused."""
    console = console_of(request)
    try:
        uploads = await read_uploads(request, console.settings.max_file_bytes)
    except HTTPException as exc:
        return render(request, "check.html", status_code=exc.status_code, cards=[], error=exc.detail)
    cards = await run_in_threadpool(console.scan, uploads)
    return render(request, "check.html", cards=cards)


def _filters_from(request: Request) -> tuple[dict[str, str], ResultFilter]:
    raw = {key: value for key in FILTER_KEYS if (value := request.query_params.get(key, "").strip())}
    flags = {key: raw.get(key) in ("1", "on", "true") for key in ("disagreements", "changed", "include_deleted")}
    try:
        filters = ResultFilter.parse(
            label=raw.get("label"), min_confidence=raw.get("min_confidence"), since=raw.get("since"),
            path=raw.get("path"), classifier=raw.get("classifier"), status=raw.get("status"),
            disagreements=flags["disagreements"], changed=flags["changed"], include_deleted=flags["include_deleted"],
            limit=PAGE, after=request.query_params.get("after"), order=raw.get("order"),
            offset=request.query_params.get("offset"), reason=raw.get("reason"), evidence=raw.get("evidence"))
    except FilterError as exc:
        raise HTTPException(422, str(exc)) from exc
    return raw, filters


@router.get("/results", response_class=HTMLResponse)
def results_page(request: Request) -> HTMLResponse:
    raw, filters = _filters_from(request)
    rows = console_of(request).results(filters)
    query = {key: value for key, value in raw.items() if key != "view"}
    following = None
    if len(rows) == PAGE:
        step = {"after": rows[-1]["id"]} if filters.order == Order.NEWEST else {"offset": (filters.offset or 0) + PAGE}
        following = "?" + urlencode({**raw, **step})
    first = "?" + urlencode(raw) if filters.after or filters.offset else None
    return render(request, "results.html", rows=rows, raw=raw, view=raw.get("view", "grid"), following=following,
                  first=first, query=urlencode(query), menus=MENUS, counts_query=urlencode(
                      {key: value for key, value in query.items() if key not in ("order", "label")}),
                  classifiers=[item["version"] for item in console_of(request).classifiers()])


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image_page(request: Request, image_id: ImageId) -> HTMLResponse:
    try:
        record = console_of(request).image(image_id)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return render(request, "image.html", record=record, author=getpass.getuser())


@router.post("/images/{image_id}/labels")
async def label_form(request: Request, image_id: ImageId) -> Response:
    form = await request.form()
    label, note, author = (str(form.get(key) or "") for key in ("label", "note", "author"))
    if label not in choices(AnalystLabel):
        raise HTTPException(422, f"label must be {one_of(AnalystLabel)}")
    try:
        await run_in_threadpool(console_of(request).add_label, image_id, label, note[:4000] or None,
                                author[:255] or None)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return RedirectResponse(f"/images/{image_id}#labels", status_code=303)


@router.get("/classifiers", response_class=HTMLResponse)
def classifiers_page(request: Request) -> HTMLResponse:
    return render(request, "classifiers.html", versions=console_of(request).classifiers(), confirming=None)


@router.post("/classifiers/{version}/activate", response_class=HTMLResponse)
async def activate_form(request: Request, version: str) -> Response:
    form = await request.form()
    console = console_of(request)
    if form.get("confirm") != "yes":  # without script: ask on a page of its own
        return render(request, "classifiers.html", versions=console.classifiers(), confirming=version)
    try:
        await run_in_threadpool(console.activate, version)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return RedirectResponse("/classifiers", status_code=303)


@router.get("/status", response_class=HTMLResponse)
def status_page(request: Request) -> HTMLResponse:
    console = console_of(request)
    counts = console.per_minute()
    return render(request, "status.html", report=console.status(), counts=counts, peak=max(counts) or 1)


@router.get("/api/docs", response_class=HTMLResponse)
def api_reference(request: Request) -> HTMLResponse:
    """The HTTP API's reference, from the app's OpenAPI schema (no script, nothing from elsewhere)."""
    schema = request.app.openapi()
    return render(request, "reference.html", endpoints=reference.endpoints(schema), models=reference.models(schema),
                  description=schema.get("info", {}).get("description", ""), schema_url=request.app.openapi_url)
