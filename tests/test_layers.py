"""The house's rules, checked with the tests (CI also runs them before the
tests, .ci/run): the import contracts in pyproject.toml (layers, a pure
core, no cycles) hold, and the code's cyclomatic complexity stays low."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_the_import_contracts_hold() -> None:
    run = subprocess.run([BIN / "lint-imports", "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_nine_functions_in_ten_have_a_cyclomatic_complexity_of_seven_or_less() -> None:
    """radon's measure over every function and method of the package and the connectors."""
    run = subprocess.run([BIN / "radon", "cc", "-j", "hub", "connectors"], cwd=ROOT, capture_output=True,
                         text=True, timeout=600, check=True)
    complexity = sorted(block["complexity"] for blocks in json.loads(run.stdout).values() for block in blocks
                        if block["type"] in ("function", "method"))
    assert len(complexity) > 500  # the whole package was measured
    p90 = complexity[math.ceil(0.9 * len(complexity)) - 1]
    worst = complexity[-5:]
    assert p90 <= 7, f"p90 {p90} over {len(complexity)} functions (the five worst: {worst})"
