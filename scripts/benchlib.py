"""What the benchmark scripts share: running a child process and measuring it."""

from __future__ import annotations

import json
import subprocess


def peak_rss_mb() -> float:
    """This process's peak RSS since it started its program (VmHWM).

    ``wait4``'s ``ru_maxrss`` cannot be used for a child: Linux carries the high-water mark
    through fork and exec, so a child of a parent that once held gigabytes reports gigabytes.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_measured(argv: list[str]) -> dict:
    """Run ``argv``, which prints one JSON object last with its ``peak_rss_mb()`` as
    ``rss_mb``; return that object."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    if proc.wait():
        raise SystemExit(f"benchmark child failed: {' '.join(argv)}")
    result = json.loads(out.strip().splitlines()[-1])
    if "rss_mb" not in result:
        raise SystemExit(f"benchmark child did not report its peak RSS: {' '.join(argv)}")
    return result
