"""The web console's ASGI application: pages, the /api/v1 API, static files and the security middleware.

`fakewatch serve` builds it with :func:`create_app` and runs it with uvicorn; tests build it the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from fakewatch.config import Settings
from fakewatch.errors import FakewatchError
from fakewatch.web import api, pages
from fakewatch.web.console import Console
from fakewatch.web.security import Guard, allowed_hosts, middleware

MAX_BODY_FILES = 64


def create_app(settings: Settings, token: str, host: str = "127.0.0.1", console: Console | None = None) -> FastAPI:
    """The console for ``settings``, answering to ``host`` (and ``settings.web_hosts``) with ``token``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.console.close()

    # /api/docs is the server-rendered reference (pages.py): Swagger UI's script from a CDN would break the
    # console's Content-Security-Policy and needs the network
    app = FastAPI(title="fakewatch", version="1", lifespan=lifespan, docs_url=None,
                  openapi_url="/api/v1/openapi.json", redoc_url=None,
                  description="Find AI-generated images: upload and check images, list verdicts, label them, "
                              "manage classifiers. Send `Authorization: Bearer TOKEN` with every call.")
    app.state.console = console or Console(settings)
    app.state.guard = Guard(token, allowed_hosts(host, settings.web_hosts))
    limit = settings.max_file_bytes * MAX_BODY_FILES + (1 << 20)

    @app.middleware("http")
    async def body_limit(request: Request, call_next):  # type: ignore[no-untyped-def]
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return JSONResponse({"detail": f"request body over {limit:,} bytes"}, status_code=413)
        return await call_next(request)

    app.middleware("http")(middleware(app.state.guard, pages.login_page))  # outermost: before the body limit

    @app.exception_handler(FakewatchError)
    async def fakewatch_error(request: Request, exc: FakewatchError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> JSONResponse:
        return api.healthz(request)

    @app.get("/metrics", summary="Metrics")
    def metrics(request: Request) -> PlainTextResponse:
        """Prometheus text format, where Prometheus looks by default (the same as ``/api/v1/metrics``)."""
        return api.metrics(request)

    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")
    return app
