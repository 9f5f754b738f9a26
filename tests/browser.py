"""Chromium through Playwright against the real web server, for the end-to-end tests in
tests/e2e/ (the root conftest.py imports the fixtures; conftest.py marks the tests using them
``e2e``).

- ``web_server``: ``manage.py runserver`` as production runs it (DEBUG off), on the test
  database file; yields its URL.
- ``browser_page``: a Chromium page that records console errors, page errors, HTTP errors and
  CSP violations; ``assert_clean(page, problems)`` checks there were none.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.fixtures import ManagedProcess, free_port, wait_for_port

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Collects CSP violations in the page itself (an init script is not subject to the CSP).
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""


@pytest.fixture
def web_server(transactional_db, practice, isolated_data) -> Iterator[str]:
    """`manage.py runserver` as production runs it (DEBUG off); --insecure serves static."""
    port = free_port()
    proc = ManagedProcess(
        ["runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"],
        data_dir=isolated_data,
        env={"DEBUG": "false"},
    ).start()
    try:
        wait_for_port(port)
    except TimeoutError:
        proc.stop()
        raise AssertionError(f"runserver did not start:\n{proc.output()}") from None
    yield f"http://127.0.0.1:{port}"
    proc.stop()


@pytest.fixture
def browser_page(web_server, monkeypatch) -> Iterator[tuple]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.skip("chromium not installed")
    # Playwright's sync API runs an event loop in this thread; Django then refuses ORM calls
    # from it. Nothing here runs concurrently, so the test's own queries are safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(locale="en-CA")
        page.set_default_timeout(10_000)
        page.add_init_script(RECORD_CSP_VIOLATIONS)
        page.on(
            "console",
            lambda msg: (
                problems.append(f"console {msg.type}: {msg.text}")
                if msg.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on(
            "response",
            lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
        )
        yield page, problems
        browser.close()


def assert_clean(page, problems: list[str]) -> None:
    assert page.evaluate("window.__cspViolations") == []
    assert problems == [], problems
