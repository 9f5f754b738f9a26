"""The layout of the tests, kept: one conftest.py (at the root), no fixture plugin loaded with
``-p``, and Chromium (Playwright) only under tests/e2e/."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_FOLDERS = ("tests", "patients", "dicomnet", "worklist", "nexrel")
E2E = ROOT / "tests" / "e2e"
BROWSER = re.compile(r'playwright|\bbrowser_page\b|\bweb_server\b|which\("chromium"\)')


def _python_files() -> list[Path]:
    return sorted(p for folder in TEST_FOLDERS for p in (ROOT / folder).rglob("*.py"))


def _test_modules() -> list[Path]:
    return [p for p in _python_files() if p.name.startswith("test_")]


def test_the_root_conftest_is_the_only_one() -> None:
    others = [str(p.relative_to(ROOT)) for p in _python_files() if p.name == "conftest.py"]
    assert (ROOT / "conftest.py").is_file()
    assert others == []


def test_no_fixture_plugin_is_loaded_with_p() -> None:
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    assert not re.search(r"(^|\s)-p\s", pytest_options["ini_options"]["addopts"])


def test_browser_tests_live_in_tests_e2e() -> None:
    outside = [
        str(p.relative_to(ROOT))
        for p in _test_modules()
        if not p.is_relative_to(E2E) and p != Path(__file__).resolve()
        if BROWSER.search(p.read_text())
    ]
    assert outside == []
