"""Run a stocksent command in a child process and measure its wall time and peak resident memory.

    python bench/rss.py OUT.json -- train --epochs 1 ...    (child side: runs the CLI, then
                                                             writes its own peak RSS to OUT.json)
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_measured(args: list[str], stdout=subprocess.DEVNULL) -> dict:
    """Seconds and peak RSS (MB) of `stocksent ARGS` run in a fresh interpreter."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rss.json"
        started = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, str(report), "--", *args], stdout=stdout,
                              stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"stocksent {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
        return {"seconds": seconds, "peak_rss_mb": json.loads(report.read_text())["peak_rss_mb"]}


def _child(report: str, args: list[str]) -> int:
    from stocksent.cli import main

    code = main(args)
    Path(report).write_text(json.dumps({"peak_rss_mb": _peak_kib() / 1024}))
    return code


def _peak_kib() -> int:
    # VmHWM belongs to this program's own memory image. getrusage's ru_maxrss would not do: Linux
    # carries it over from the parent that forked us, so a small child reports the parent's peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], sys.argv[3:]))
