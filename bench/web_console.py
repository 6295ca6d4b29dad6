"""The web console's speed: the results page and GET /api/v1/results on a million rows (p50 and p95, filtered
and unfiltered, SQLite and PostgreSQL), and upload-to-verdict for one 1024x1024 JPEG in embedded mode.

A real `uvicorn` server in this process, a real HTTP client over TCP; the database is filled as
bench/results_query.py fills it. The label counts (fetched by the page after it is shown) are timed too.

    python bench/web_console.py [--rows 1000000] [--requests 30] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import ROOT, table
from results_query import database_for, fill
from sqlalchemy import text

sys.path.insert(0, str(ROOT))
from fakewatch.config import load_settings  # noqa: E402
from fakewatch.imaging import encode_jpeg  # noqa: E402
from fakewatch.web.app import create_app  # noqa: E402
from tests.integration.services import free_port  # noqa: E402

TOKEN = "bench-token"
QUERIES = [
    ("results page, unfiltered", "/results"),
    ("results page, --label fake", "/results?label=fake"),
    ("results page, fake since 30d, list view", "/results?label=fake&since=2026-01-05&view=list"),
    ("results page, next page", "/results?after=500000"),
    ("GET /api/v1/results, unfiltered", "/api/v1/results"),
    ("GET /api/v1/results?label=fake", "/api/v1/results?label=fake"),
    ("GET /api/v1/results?path=/archive/00042/*", "/api/v1/results?path=/archive/00042/*"),
    ("GET /api/v1/results?order=p_fake (most likely fake)", "/api/v1/results?order=p_fake"),
    ("GET /api/v1/results/counts (after the page)", "/api/v1/results/counts"),
]


class Server:
    def __init__(self, settings: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(settings, TOKEN), host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        import httpx

        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=120,
                                   headers={"Authorization": f"Bearer {TOKEN}"})

    def timings(self, path: str, count: int) -> list[float]:
        self.client.get(path).raise_for_status()  # warm
        spent = []
        for _ in range(count):
            started = time.perf_counter()
            self.client.get(path).raise_for_status()
            spent.append((time.perf_counter() - started) * 1000)
        return spent

    def close(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(10)


def quantiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def listing_rows(scratch: Path, rows: int, requests: int, kinds: list[str]) -> list[list[object]]:
    found: list[list[object]] = []
    for kind in kinds:
        with database_for(kind, scratch) as database:
            if database is None:
                print(f"{kind}: not reachable, skipped", file=sys.stderr)
                continue
            started = time.perf_counter()
            fill(database, rows)
            print(f"{kind}: filled {rows:,} rows in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            if kind == "postgresql":  # what autovacuum does to a table this size soon after it was filled
                with database.session() as session, session.begin():
                    session.execute(text("ANALYZE"))
            url = database.engine.url.render_as_string(hide_password=False)
            settings = load_settings({"home": str(scratch / f"home-{kind}"), "database_url": url}, env={})
            server = Server(settings)
            try:
                for title, path in QUERIES:
                    p50, p95 = quantiles(server.timings(path, requests))
                    found.append([kind, title, f"{p50:.0f}", f"{p95:.0f}"])
            finally:
                server.close()
    return found


def upload_rows(scratch: Path, count: int) -> list[list[object]]:
    settings = load_settings({"home": str(scratch / "home-upload")}, env={})
    server = Server(settings)
    rng = np.random.default_rng(3)
    try:
        def one(seed: int) -> float:
            small = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            import cv2

            image = cv2.resize(small, (1024, 1024), interpolation=cv2.INTER_CUBIC)
            data = encode_jpeg(np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8), 90)
            started = time.perf_counter()
            answer = server.client.post("/api/v1/scan", files=[("files", (f"{seed}.jpg", data, "image/jpeg"))])
            answer.raise_for_status()
            assert answer.json()["results"][0]["status"] == "done"
            return (time.perf_counter() - started) * 1000

        first = one(0)  # loads the classifier
        spent = [one(seed) for seed in range(1, count + 1)]
    finally:
        server.close()
    p50, p95 = quantiles(spent)
    return [["embedded, shipped classifier", "one 1024x1024 JPEG, POST /api/v1/scan to verdict",
             f"{first:.0f}", f"{p50:.0f}", f"{p95:.0f}"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per query")
    parser.add_argument("--uploads", type=int, default=20, help="timed uploads")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        uploads = upload_rows(scratch, args.uploads)
        listings = listing_rows(scratch, args.rows, args.requests, args.databases.split(","))
    table(f"Console listings on {args.rows:,} images (ms over HTTP, {args.requests} requests each)",
          ["database", "request", "p50 ms", "p95 ms"], listings)
    table("Upload to verdict (ms, warm after the first)", ["mode", "what", "first (cold) ms", "p50 ms", "p95 ms"],
          uploads)


if __name__ == "__main__":
    main()
