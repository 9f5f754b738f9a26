"""The files of deploy/ as the tests read them: the env example's settings, the production
environment it makes, the systemd units' settings and commands, the nginx config (wrapped
in a main config of its own for a test). Used by tests/test_deploy.py and
tests/integration/test_deploy_edge.py."""

from __future__ import annotations

import ast
import os
import re
import secrets
import shlex
import shutil
from pathlib import Path

from nexrel import metrics

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
ENV_EXAMPLE = DEPLOY / "nexrel.env.example"
SYSTEMD = DEPLOY / "systemd"
NGINX_CONF = DEPLOY / "nginx" / "nexrel.conf"
INSTALL_PREFIX = "/opt/nexrel"  # where the units expect the checkout and its .venv
ENV_HELPERS = {"env", "envbool", "envint", "envsecret", "envlist"}
# Read by settings.py, but not a production setting.
NOT_FOR_PRODUCTION = {"NEXREL_TEST_DB": "the test database file, for the tests only"}
# In the example, but read by others than settings.py.
READ_ELSEWHERE = {
    "PGPASSFILE": "libpq",
    "WEB_CONCURRENCY": "gunicorn",
    metrics.MULTIPROC_ENV: "nexrel/metrics.py",
}
SERVICES = ("nexrel-web", "nexrel-listener", "nexrel-worker")


def settings_variables() -> dict[str, bool]:
    """Every variable nexrel/settings.py reads through its helpers: name -> is a secret
    (envsecret, which also reads NAME_FILE)."""
    tree = ast.parse((ROOT / "nexrel" / "settings.py").read_text())
    found: dict[str, bool] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ENV_HELPERS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            name = node.args[0].value
            found[name] = found.get(name, False) or node.func.id == "envsecret"
    return found


def example_assignments() -> dict[str, tuple[str, bool]]:
    """The example's settings: name -> (value, set). ``#NAME=value`` (no space after the
    hash) is a setting left at its default; ``# ...`` is prose."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"(#?)([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            disabled, name, value = match.groups()
            assert name not in found, f"{name} twice in {ENV_EXAMPLE.name}"
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]  # systemd's quoting
            found[name] = (value, not disabled)
    return found


def production_env(tmp_path: Path) -> dict[str, str]:
    """The example's settings as they are, the secrets' files made, the data under tmp_path
    (the one thing changed: /var/lib/nexrel is not ours to write)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for name, (value, enabled) in example_assignments().items():
        if not enabled:
            continue
        if name.endswith("_FILE") and name != "PGPASSFILE":
            secret = secrets_dir / Path(value).name
            secret.write_text(secrets.token_urlsafe(50) + "\n")
            value = str(secret)
        env[name] = value
    env["NEXREL_DATA_DIR"] = str(tmp_path / "data")
    env["NEXREL_SPOOL_DIR"] = str(tmp_path / "data" / "spool")
    return env


def unit_settings(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> its values, in order (continuation lines joined), as systemd reads
    the file."""
    found: dict[str, list[str]] = {}
    section, pending = "", ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key}", []).append(value)
    return found


def units_here(tmp_path: Path) -> Path:
    """The units with the install prefix pointing at this checkout (its .venv has python and
    gunicorn), since systemd-analyze checks that each command exists."""
    units = tmp_path / "units"
    units.mkdir()
    for unit in SYSTEMD.iterdir():
        (units / unit.name).write_text(unit.read_text().replace(INSTALL_PREFIX, str(ROOT)))
    return units


def nginx_location(path: str) -> str:
    """The body of ``location <path> {...}`` in deploy/nginx/nexrel.conf (no nested blocks)."""
    match = re.search(
        r"location\s+(?:=\s*)?" + re.escape(path) + r"\s*\{(.*?)\}", nginx_text(), re.S
    )
    assert match, f"no location {path} in {NGINX_CONF.name}"
    return match.group(1)


def nginx_text() -> str:
    return "\n".join(
        line for line in NGINX_CONF.read_text().splitlines() if not line.lstrip().startswith("#")
    )


def nginx_size(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )


def nginx_config(tmp_path: Path, *, replace: dict[str, str] | None = None, main: str = "") -> Path:
    """A main nginx.conf under tmp_path that includes deploy/nginx/nexrel.conf with the
    certificate paths (and ``replace``'s strings) swapped for test ones: a development CA's
    server certificate for localhost (dicomnet.net.tls_dev). ``main``: more directives of
    the main context."""
    from dicomnet.net.tls_dev import ensure_dev_certificates

    tls = tmp_path / "tls"
    ensure_dev_certificates(tls, hosts=["localhost", "127.0.0.1"])
    site = NGINX_CONF.read_text()
    swaps = {
        "/etc/nexrel/tls/web.crt": str(tls / "server.crt"),
        "/etc/nexrel/tls/web.key": str(tls / "server.key"),
        **(replace or {}),
    }
    for old, new in swaps.items():
        assert old in site, f"{old!r} not in {NGINX_CONF.name}"
        site = site.replace(old, new)
    (tmp_path / "nexrel.conf").write_text(site)
    path = tmp_path / "nginx.conf"
    path.write_text(
        main + f"pid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log;\n"
        "events {}\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        f"    access_log {tmp_path}/access.log;\n"
        f"    client_body_temp_path {tmp_path}/body;\n"
        f"    proxy_temp_path {tmp_path}/proxy;\n"
        f"    include {tmp_path}/nexrel.conf;\n"
        "}\n"
    )
    return path


def unit_command(unit: str, key: str = "ExecStart", *, index: int = 0) -> list[str]:
    """A unit's command as systemd splits it (double quotes group words), run from this
    checkout instead of the install prefix."""
    command = unit_settings(SYSTEMD / unit)[f"Service.{key}"][index]
    return shlex.split(command.replace(INSTALL_PREFIX, str(ROOT)))
