"""What the benchmark scripts share: running a child process and measuring it."""

from __future__ import annotations

import json
import os
import subprocess


def run_measured(argv: list[str]) -> dict:
    """Run ``argv``, which prints one JSON object last; add its peak RSS (MB) to it."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"benchmark child failed: {' '.join(argv)}")
    result = json.loads(out.strip().splitlines()[-1])
    result["rss_mb"] = usage.ru_maxrss / 1024
    return result
