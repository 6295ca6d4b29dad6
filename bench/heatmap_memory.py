"""What a heatmap costs `fakewatch serve`: resident memory and time for one 300x300 and one 4000x3000 picture.

Each picture gets a fresh `fakewatch serve` process (embedded mode, the shipped classifiers, the ONNX
runtime) with its own home. The picture is uploaded through the API (which classifies it), then its
heatmap is fetched twice. Resident memory (VmRSS) is read from /proc after start, after the upload and
after the heatmaps; "peak" is VmHWM over the heatmap requests alone (reset through /proc/PID/clear_refs
just before them). "TF" says whether TensorFlow's library was mapped into the process.

    python bench/heatmap_memory.py [--sizes 300x300,4000x3000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, table

sys.path.insert(0, str(ROOT))
from tests.integration.services import free_port  # noqa: E402

TOKEN = "bench-heatmap-token-0123456789"


def picture(path: Path, width: int, height: int) -> Path:
    """A photo-like JPEG: smooth colour fields with mild noise (a photo's file size, not incompressible)."""
    import cv2

    rng = np.random.default_rng(width * height)
    small = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    image += rng.integers(-6, 7, image.shape, dtype=np.int16)
    cv2.imwrite(str(path), np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) // 1024
    return values


def uses_tensorflow(pid: int) -> bool:
    return "tensorflow" in Path(f"/proc/{pid}/maps").read_text()


def measure(width: int, height: int, scratch: Path) -> list[object]:
    import httpx

    home = scratch / f"home-{width}x{height}"
    source = picture(scratch / f"picture-{width}x{height}.jpg", width, height)
    port = free_port()
    env = {**os.environ, "FAKEWATCH_HOME": str(home), "FAKEWATCH_API_TOKEN": TOKEN, "FAKEWATCH_CONFIG": "",
           "FAKEWATCH_CLASSIFIER": "", "FAKEWATCH_DATABASE_URL": "", "FAKEWATCH_BROKER_URL": ""}
    process = subprocess.Popen([sys.executable, "-m", "fakewatch.cli", "serve", "--port", str(port)], env=env,
                               stderr=subprocess.DEVNULL)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300,
                              headers={"Authorization": f"Bearer {TOKEN}"})
        deadline = time.monotonic() + 60
        while True:
            try:
                client.get("/healthz")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        started = memory(process.pid)["VmRSS"]
        row = client.post("/api/v1/scan", files=[("files", (source.name, source.read_bytes(), "image/jpeg"))])
        image = row.json()["results"][0]
        uploaded = memory(process.pid)["VmRSS"]
        Path(f"/proc/{process.pid}/clear_refs").write_text("5")  # VmHWM from here on
        times, size = [], 0
        for _ in range(2):
            begin = time.perf_counter()
            answer = client.get(f"/api/v1/images/{image['id']}/heatmap")
            times.append(time.perf_counter() - begin)
            answer.raise_for_status()
            size = len(answer.content)
        after = memory(process.pid)
        import cv2

        drawn = cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_COLOR)
        return [f"{width}x{height}", image.get("classifier"), started, uploaded, f"{times[0]:.2f}",
                f"{times[1]:.2f}", after["VmRSS"], after["VmHWM"], f"{drawn.shape[1]}x{drawn.shape[0]}",
                f"{size // 1024}", "yes" if uses_tensorflow(process.pid) else "no"]
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="300x300,4000x3000", help="WIDTHxHEIGHT,... pictures to explain")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes.split(","):
            width, height = (int(part) for part in size.split("x"))
            rows.append(measure(width, height, Path(folder)))
    table("fakewatch serve: one heatmap (RSS in MiB; seconds)",
          ["picture", "classifier", "RSS at start", "RSS after upload", "heatmap s", "again s",
           "RSS after", "peak RSS (heatmaps)", "PNG", "PNG KiB", "TF"], rows)


if __name__ == "__main__":
    main()
