"""Who may use the console, from where, and what every response says to the browser.

- A token guards everything but ``/healthz``: API calls send ``Authorization: Bearer TOKEN``; a browser
  opens ``/login?token=TOKEN`` once and gets a session cookie (HttpOnly, SameSite=Strict) derived from it.
- A request whose ``Host`` header names anything but the bound address (or a configured name) is refused,
  so a page elsewhere cannot reach the console through DNS rebinding.
- State-changing requests authenticated by the cookie carry a CSRF token (the pages' form field, checked
  by :func:`require_csrf` on every page route, or the ``X-CSRF-Token`` header, required on the API); bearer
  requests need none, as browsers never add that header on their own.
- Responses carry a Content-Security-Policy (no inline script, nothing from elsewhere), ``nosniff``,
  ``DENY`` framing and no referrer.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

COOKIE = "fakewatch_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
OPEN_PATHS = frozenset({"/healthz", "/api/v1/healthz", "/login"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(bind: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """Host header names (without port) the console answers to when bound to ``bind``."""
    names = {bind.lower(), *(name.lower() for name in extra)}
    if is_loopback(bind):
        names |= {"localhost", "127.0.0.1", "[::1]", "::1"}
    elif bind in ("0.0.0.0", "::", ""):
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return frozenset(names)


def host_name(header: str) -> str:
    """The name part of a Host header (``[::1]:8000`` -> ``[::1]``, ``a:80`` -> ``a``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


@dataclass(frozen=True)
class Guard:
    """The token and what is derived from it: the session cookie's value and the CSRF token."""

    token: str
    hosts: frozenset[str]

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)

    def _derive(self, purpose: str) -> str:
        return hmac.new(self.token.encode(), purpose.encode(), hashlib.sha256).hexdigest()

    @property
    def session(self) -> str:
        return self._derive("fakewatch session")

    @property
    def csrf(self) -> str:
        return self._derive("fakewatch csrf")

    def token_matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self.token.encode())

    def bearer(self, request: Request) -> bool:
        scheme, _, offered = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(offered.strip())

    def cookie(self, request: Request) -> bool:
        return hmac.compare_digest(request.cookies.get(COOKIE, "").encode(), self.session.encode())

    def csrf_matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self.csrf.encode())


async def require_csrf(request: Request) -> None:
    """Page routes' dependency: a state-changing request a browser made with the session cookie carries the
    CSRF token as a form field or header (FastAPI keeps the parsed form for the route itself)."""
    if request.method in SAFE_METHODS or getattr(request.state, "auth", None) != "cookie":
        return
    offered = request.headers.get(CSRF_HEADER, "")
    if not offered:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        offered = value if isinstance(value, str) else ""
    if not request.app.state.guard.csrf_matches(offered):
        raise HTTPException(403, "missing or wrong CSRF token; reload the page and try again")


def _refuse(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"detail": message}, status_code=status)
    return PlainTextResponse(message, status_code=status)


def middleware(guard: Guard) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def check(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if host_name(request.headers.get("host", "")) not in guard.hosts:
            response = _refuse(request, 421, "this console does not answer to that host name")
        elif request.url.path in OPEN_PATHS or request.url.path.startswith("/static/"):
            response = await call_next(request)
        elif guard.bearer(request):
            request.state.auth = "bearer"
            response = await call_next(request)
        elif not guard.cookie(request):
            response = _refuse(request, 401, "a token is needed: open the login URL `fakewatch serve` printed, "
                                             "or send Authorization: Bearer TOKEN")
        elif (request.method not in SAFE_METHODS and request.url.path.startswith("/api/")
              and not guard.csrf_matches(request.headers.get(CSRF_HEADER, ""))):
            response = _refuse(request, 403, "API calls made with the session cookie need the X-CSRF-Token header")
        else:
            request.state.auth = "cookie"  # page routes check their forms' CSRF field (require_csrf)
            response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return check
