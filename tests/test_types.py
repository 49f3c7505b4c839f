"""The type checker, as part of the test command (and so of CI): mypy over
hub/ and connectors/, strict on all of it (pyproject's
[tool.mypy])."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_mypy_finds_no_type_errors() -> None:
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-m", "mypy"], cwd=root, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
