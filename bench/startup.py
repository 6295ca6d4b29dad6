"""Start-up: wall time of whole commands in fresh processes (a warm file cache), and which heavy modules
each one imports. Commands that do not classify should import neither TensorFlow nor the inference runtime;
`scan ONE_FILE` is shown with each runtime beside them.

    python bench/startup.py [--runs 7]

Each command runs once untimed (it writes bytecode caches and warms the file cache), then ``--runs`` times.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import sample_images, table

HEAVY = ("tensorflow", "keras", "onnxruntime")
# Runs the CLI's command group, then reports what it imported (on stderr, after the command).
# (The group itself, not the console script's main(): main() leaves a quick command without teardown.)
REPORTING = ("import json, sys\nfrom fakewatch.cli import cli\ntry:\n    cli(obj={})\nexcept SystemExit:\n    pass\n"
             "print('MODULES ' + json.dumps(sorted(sys.modules)), file=sys.stderr)\n")


def timed(command: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """(fastest, median) wall seconds of ``fakewatch COMMAND`` over ``runs`` fresh processes."""
    argv = [sys.executable, "-m", "fakewatch.cli", *command]
    subprocess.run(argv, env=env, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def heavy_imports(command: list[str], env: dict[str, str]) -> list[str]:
    script = f"import sys; sys.argv = {['fakewatch', *command]!r}\n{REPORTING}"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    line = next(line for line in done.stderr.splitlines() if line.startswith("MODULES "))
    return [name for name in HEAVY if name in json.loads(line[len("MODULES "):])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        paths = sample_images(Path(scratch) / "images", 50)
        env = {key: value for key, value in os.environ.items() if not key.startswith("FAKEWATCH_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode is cached after the first run
        env["FAKEWATCH_HOME"] = str(Path(scratch) / "home")
        subprocess.run([sys.executable, "-m", "fakewatch.cli", "-q", "scan", str(Path(scratch) / "images")],
                       env=env, check=True, capture_output=True)
        one = str(paths[0])
        commands = [["results"], ["results", "--label", "fake"], ["show", one], ["stats"], ["status"],
                    ["settings"], ["label", one, "--real"]]
        for command in commands:
            fastest, median = timed(command, env, args.runs)
            heavy = heavy_imports(command, env)
            rows.append([f"fakewatch {' '.join(command).replace(one, 'FILE')}", f"{fastest:.2f}", f"{median:.2f}",
                         ", ".join(heavy) or "none"])
        for runtime in ("lite", "keras"):
            scan = ["-q", "scan", "--force", one]
            fastest, median = timed(scan, {**env, "FAKEWATCH_RUNTIME": runtime}, max(3, args.runs // 2))
            heavy = heavy_imports(scan, {**env, "FAKEWATCH_RUNTIME": runtime})
            rows.append([f"fakewatch scan ONE_FILE (runtime {runtime})", f"{fastest:.2f}", f"{median:.2f}",
                         ", ".join(heavy) or "none"])
    table(f"Start-up: whole commands in fresh processes ({args.runs} runs each; seconds)",
          ["command", "fastest", "median", "heavy modules imported"], rows)


if __name__ == "__main__":
    main()
