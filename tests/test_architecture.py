"""The import rule of docs/architecture.md, kept: every import, lazy ones included, runs one way.

patients <- dicomnet <- worklist <- nexrel across apps, and inside dicomnet
dimse <- net <- ingest <- qr <- dicomweb (models, admin, api, urls and management may use
them all; only dicomnet.urls imports dicomweb).
Beneath every app, ``nexrel.supervisor`` and ``nexrel.settings`` import none of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What each package may not import: the ones above it.
APPS = ("patients", "dicomnet", "worklist")
# nexrel's composing modules: above every app.
NEXREL_TOP = (
    "nexrel.views",
    "nexrel.viewer",
    "nexrel.ops",
    "nexrel.urls",
    "nexrel.demo",
    "nexrel.demo_images",
    "nexrel.management",
)
FORBIDDEN = {
    "patients": ("dicomnet", "worklist", *NEXREL_TOP),
    "dicomnet": ("worklist", *NEXREL_TOP),
    "worklist": NEXREL_TOP,
    "nexrel.supervisor": APPS,
    "nexrel.settings": APPS,
    "dicomnet.dimse": (
        "dicomnet.net",
        "dicomnet.ingest",
        "dicomnet.qr",
        "dicomnet.models",
        "dicomnet.dicomweb",
        "dicomnet.viewer",
    ),
    "dicomnet.net": ("dicomnet.ingest", "dicomnet.qr", "dicomnet.dicomweb", "dicomnet.viewer"),
    "dicomnet.ingest": ("dicomnet.qr", "dicomnet.dicomweb", "dicomnet.viewer"),
    "dicomnet.qr": ("dicomnet.dicomweb", "dicomnet.viewer"),
    # The viewer reads pixels over DICOMweb's HTTP API, never its modules (and vice versa).
    "dicomnet.dicomweb": ("dicomnet.viewer",),
    "dicomnet.viewer": ("dicomnet.dicomweb", "dicomnet.net"),
    # Teeth and mounts: plain logic over the models, used by ingest (placement) and the pages.
    "dicomnet.dental": (
        "dicomnet.net",
        "dicomnet.ingest",
        "dicomnet.qr",
        "dicomnet.dicomweb",
        "dicomnet.viewer",
    ),
    # The client's address behind the proxy: read by django-axes, below every app.
    "nexrel.proxy": APPS,
    # Static files' CSP header is a handler, below every app.
    "nexrel.static_csp": APPS,
    # Every app counts into the metrics: they import none.
    "nexrel.metrics": APPS,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _app_modules() -> list[Path]:
    paths = []
    for app in ("patients", "dicomnet", "worklist", "nexrel"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if "tests" in path.parts or "migrations" in path.parts:
                continue
            paths.append(path)
    return paths


def _violations(path: Path) -> list[str]:
    module = _module_name(path)
    out = []
    for package, forbidden in FORBIDDEN.items():
        if module != package and not module.startswith(package + "."):
            continue
        lines = set()
        for line, name in _imports(path):
            if line not in lines and any(name == f or name.startswith(f + ".") for f in forbidden):
                lines.add(line)
                out.append(f"{path.relative_to(ROOT)}:{line} imports {name} ({package} may not)")
    return out


@pytest.mark.parametrize("path", _app_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_one_way(path: Path) -> None:
    assert _violations(path) == []


def test_the_rule_catches_a_lazy_import_against_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("tests.test_architecture.ROOT", tmp_path)
    bad = tmp_path / "patients" / "oops.py"
    bad.parent.mkdir()
    bad.write_text("def f():\n    from dicomnet.models import DicomStudy\n    return DicomStudy\n")
    assert _violations(bad) == ["patients/oops.py:2 imports dicomnet.models (patients may not)"]
