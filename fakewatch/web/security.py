"""Who may use the console, from where, and what every response says to the browser.

- A token guards everything but ``/healthz``: API calls send ``Authorization: Bearer TOKEN``; a browser
  opens ``/login?token=TOKEN`` once (or types the token into the login form a page shows without it) and
  gets a session cookie (HttpOnly, SameSite=Strict) derived from it. Served beyond loopback, the token must
  be at least :data:`MIN_TOKEN_LENGTH` characters (:func:`check_token`).
- A client that offers wrong tokens (bearer, cookie or login form) too often is refused for a while (429
  with Retry-After; :class:`~fakewatch.web.throttle.Throttle`).
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
from dataclasses import dataclass, field

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from fakewatch.errors import ConfigError
from fakewatch.web.throttle import Throttle

COOKIE = "fakewatch_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
OPEN_PATHS = frozenset({"/healthz", "/api/v1/healthz", "/login"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MIN_TOKEN_LENGTH = 16
NEEDS_TOKEN = ("a token is needed: open the login URL `fakewatch serve` printed, or send Authorization: "
               "Bearer TOKEN")
LoginPage = Callable[[Request, str, int], Response]  # the login form, with a message and a status
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


def check_token(token: str, host: str) -> None:
    """Refuse to serve beyond loopback without a configured token of at least MIN_TOKEN_LENGTH characters."""
    if is_loopback(host):
        return
    if not token:
        raise ConfigError(f"serving on {host} makes the console reachable from other machines: set "
                          "FAKEWATCH_API_TOKEN to a long random secret first")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"FAKEWATCH_API_TOKEN is too short to serve on {host}: it needs at least "
                          f"{MIN_TOKEN_LENGTH} characters (make one with: python3 -c 'import secrets; "
                          "print(secrets.token_urlsafe(32))')")


def client_of(request: Request) -> str:
    """The address the request came from (the throttle's key)."""
    return request.client.host if request.client else "unknown"


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
    throttle: Throttle = field(default_factory=Throttle, compare=False)

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

    def offered(self, request: Request) -> bool:
        """Whether the request offers a credential at all (a missing one is not a wrong guess)."""
        return bool(request.headers.get("authorization") or request.cookies.get(COOKIE))

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


def wants_page(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _refuse(request: Request, status: int, message: str, login_page: LoginPage | None = None) -> Response:
    if not wants_page(request):
        return JSONResponse({"detail": message}, status_code=status)
    if status == 401 and login_page is not None:
        return login_page(request, message, status)
    return PlainTextResponse(message, status_code=status)


def throttled(request: Request, guard: Guard) -> Response | None:
    """The 429 answer for a client that offered too many wrong tokens lately, or None."""
    wait = guard.throttle.retry_after(client_of(request))
    if not wait:
        return None
    response = _refuse(request, 429, f"too many wrong tokens from this address: try again in {wait} s")
    response.headers["Retry-After"] = str(wait)
    return response


def middleware(guard: Guard, login_page: LoginPage | None = None
               ) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def check(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if host_name(request.headers.get("host", "")) not in guard.hosts:
            response = _refuse(request, 421, "this console does not answer to that host name")
        elif request.url.path in OPEN_PATHS or request.url.path.startswith("/static/"):
            response = await call_next(request)
        elif (refused := throttled(request, guard)) is not None:
            response = refused
        elif guard.bearer(request):
            request.state.auth = "bearer"
            response = await call_next(request)
        elif not guard.cookie(request):
            if guard.offered(request):
                guard.throttle.failed(client_of(request))
            response = _refuse(request, 401, NEEDS_TOKEN, login_page)
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
