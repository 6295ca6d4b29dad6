"""The web console and HTTP API (`fakewatch serve`): FastAPI pages and /api/v1 over the same library code as the CLI."""
