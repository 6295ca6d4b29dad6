"""`fakewatch serve`: the web console and HTTP API in one process, in either mode."""

from __future__ import annotations

import click

from fakewatch.cli.base import cli, command_settings


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback needs FAKEWATCH_API_TOKEN (16 characters or more).")
@click.option("--port", default=8000, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Run the web console and the HTTP API (pages at /, API at /api/v1, its reference at /api/docs, Prometheus
    metrics at /metrics).

    Every request needs the token: FAKEWATCH_API_TOKEN, or a random one made at each start and printed
    here as a login URL. API calls send `Authorization: Bearer TOKEN`.
    """
    from fakewatch.web.security import Guard, check_token

    settings = command_settings(ctx)
    check_token(settings.api_token, host)
    token = settings.api_token or Guard.new_token()
    import uvicorn

    from fakewatch.web.app import create_app

    app = create_app(settings, token, host)
    shown_host = f"[{host}]" if ":" in host else host
    if not settings.api_token:
        click.echo(f"fakewatch console: open http://{shown_host}:{port}/login?token={token}", err=True)
    else:
        click.echo(f"fakewatch console on http://{shown_host}:{port}/ (token from FAKEWATCH_API_TOKEN; "
                   f"browsers: /login?token=...)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False)
