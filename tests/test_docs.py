"""The README (the front door, and the PyPI readme) and the documentation
under docs/: the README stays short and names the commands that set the hub
up, run it and test it; every relative link resolves; MkDocs builds the site
in strict mode, as CI does."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def _relative_links(path: Path) -> list[str]:
    text = INLINE_CODE.sub("", FENCE.sub("", path.read_text(encoding="utf-8")))
    return [target for target in LINK.findall(text)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


def test_the_readme_is_short() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 300


def test_the_readme_names_the_set_up_the_demo_and_the_tests() -> None:
    text = README.read_text(encoding="utf-8")
    for command in ("./setup.sh", ".venv/bin/hub demo", ".venv/bin/python -m pytest -q"):
        assert command in text, command


def test_the_docs_are_there() -> None:
    assert (DOCS / "index.md").is_file() and (ROOT / "mkdocs.yml").is_file()
    assert len(PAGES) > 20
    assert (DOCS / "domain.md").read_text(encoding="utf-8").startswith("# The domain")


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    missing = []
    for target in _relative_links(page):
        file = target.split("#", 1)[0]
        if file and not (page.parent / file).exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)} links to what is not there: {missing}"


def test_the_readmes_links_lead_into_the_docs() -> None:
    targets = _relative_links(README)
    assert any(t.startswith("docs/operating/") for t in targets)
    assert any(t.startswith("docs/connectors/") for t in targets)
    assert any(t.startswith("docs/design/") for t in targets)


def test_mkdocs_builds_the_site_in_strict_mode(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    sdk = (tmp_path / "connectors" / "sdk" / "index.html").read_text(encoding="utf-8")
    assert "connectors.sdk.Connector" in sdk  # the reference is generated from the docstrings
