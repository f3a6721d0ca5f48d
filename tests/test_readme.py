"""The README's commands work when pasted: its DuckDB one-liners, run from the repository on a
real aligned workdir, each print a table."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _block_after(heading: str) -> str:
    text = (REPO / "README.md").read_text()
    section = text.split(heading, 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_duckdb_one_liners_run_as_pasted(aligned):
    block = _block_after("## Asking the manifests questions")
    assert block.startswith("W=work/demo\n")
    commands = [ln for ln in block.splitlines()[1:] if ln and not ln.startswith("#")]
    assert len(commands) == 4
    for command in commands:
        result = subprocess.run(["bash", "-c", f"W={aligned}\n{command}"], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (command, result.stderr)
        # DuckDB's box drawing: a header and at least one row
        assert result.stdout.count("│") >= 6, (command, result.stdout)
