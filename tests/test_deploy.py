"""deploy/ kept honest: the env example lists every variable settings.py reads and passes
`check --deploy` as it is; the systemd units pass `systemd-analyze verify` and keep their
hardening; nginx accepts its config, and the config agrees with the settings (the static
files' CSP, the largest bodies). tests/integration/test_deploy_edge.py serves through them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from django.conf import settings
from django.utils.csp import build_policy

from nexrel import metrics
from tests.deploy_files import (
    ENV_EXAMPLE,
    NOT_FOR_PRODUCTION,
    READ_ELSEWHERE,
    ROOT,
    SERVICES,
    SYSTEMD,
    example_assignments,
    nginx_binary,
    nginx_config,
    nginx_location,
    nginx_size,
    nginx_text,
    production_env,
    settings_variables,
    unit_command,
    unit_settings,
    units_here,
)


def test_the_example_lists_every_variable_settings_reads():
    read = settings_variables()
    # The parser sees a call spread over lines, and the secrets.
    assert {"EMAIL_BACKEND", "DICOM_TLS_PORT", "DATABASE_URL"} <= set(read)
    assert read["SECRET_KEY"] and read["METRICS_TOKEN"] and not read["DATABASE_URL"]
    example = example_assignments()
    missing = []
    for name, secret in sorted(read.items()):
        if name in NOT_FOR_PRODUCTION:
            continue
        if secret:
            # A secret is given as a file, never written in the env file itself.
            assert name not in example, f"{name} written in the example: use {name}_FILE"
            name = f"{name}_FILE"
        if name not in example:
            missing.append(name)
    assert not missing, f"{ENV_EXAMPLE.name} lacks {missing}"
    expected = {n if not s else f"{n}_FILE" for n, s in read.items()} | set(READ_ELSEWHERE)
    unknown = set(example) - expected
    assert not unknown, f"{ENV_EXAMPLE.name} sets variables nothing reads: {sorted(unknown)}"


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


SHOW_SETTINGS = """
import json
from django.conf import settings
print(json.dumps({
    "storage": settings.STORAGES["default"]["BACKEND"],
    "proxy_ssl_header": settings.SECURE_PROXY_SSL_HEADER,
    "client_ip": settings.AXES_CLIENT_IP_CALLABLE,
    "hsts": settings.SECURE_HSTS_SECONDS,
    "database": settings.DATABASES["default"]["ENGINE"],
    "tls_port": settings.DICOM_TLS_PORT,
    "audit_key_from_file": settings.AUDIT_CHAIN_KEY != "nexrel-audit:" + settings.SECRET_KEY,
    "static_root": str(settings.STATIC_ROOT),
}))
"""


def test_the_example_passes_check_deploy(tmp_path):
    env = production_env(tmp_path)
    done = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout
    shown = _manage(env, "shell", "-c", SHOW_SETTINGS)
    assert shown.returncode == 0, shown.stderr
    values = json.loads(shown.stdout.strip().splitlines()[-1])
    assert values == {
        "storage": "storages.backends.s3.S3Storage",
        "proxy_ssl_header": ["HTTP_X_FORWARDED_PROTO", "https"],
        "client_ip": "nexrel.proxy.forwarded_client_address",
        "hsts": 31536000,
        "database": "django.db.backends.postgresql",
        "tls_port": 2762,
        "audit_key_from_file": True,
        "static_root": str(tmp_path / "data" / "staticfiles"),
    }


# systemd ------------------------------------------------------------------------------------


@pytest.mark.integration
def test_systemd_analyze_verifies_the_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the units are not verified")
    units = units_here(tmp_path)
    names = sorted(str(p) for p in units.iterdir())
    # The trailing colon: our directory, then systemd's own unit path (network-online.target).
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"}
    done = subprocess.run(
        [analyze, "verify", *names], env=env, capture_output=True, text=True, timeout=60
    )
    # Unknown keys and bad values are only warnings to systemd: any output fails.
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), (
        done.stdout + done.stderr
    )
    # The hardening stays: systemd's own exposure score, 0 (locked down) to 10.
    for unit in (*SERVICES, "nexrel-migrate", "nexrel-metrics-dir"):
        scored = subprocess.run(
            [
                analyze,
                "security",
                "--offline=yes",
                "--threshold=25",
                str(units / f"{unit}.service"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert scored.returncode == 0, f"{unit}: exposure above 2.5\n{scored.stdout[-2000:]}"


def test_the_units_share_one_metrics_directory_emptied_once():
    wipe = unit_settings(SYSTEMD / "nexrel-metrics-dir.service")
    assert wipe["Service.Type"] == ["oneshot"] and wipe["Service.RemainAfterExit"] == ["yes"]
    directory = f"{metrics.MULTIPROC_ENV}=/run/nexrel/metrics"
    assert wipe["Service.Environment"] == [directory]
    target = unit_settings(SYSTEMD / "nexrel.target")
    assert target["Unit.Wants"] == [" ".join(f"{s}.service" for s in SERVICES)]
    for name in (*SERVICES, "nexrel-migrate", "nexrel-metrics-dir"):
        unit = unit_settings(SYSTEMD / f"{name}.service")
        assert unit["Unit.PartOf"] == ["nexrel.target"], name
        assert unit["Service.User"] == ["nexrel"], name
        assert not unit.get("Service.ExecStartPre"), f"{name}: wipes in the metrics-dir unit only"
    for name in SERVICES:
        unit = unit_settings(SYSTEMD / f"{name}.service")
        needs = "nexrel-migrate.service nexrel-metrics-dir.service"
        assert unit["Unit.Requires"] == [needs], name
        assert unit["Unit.After"][0].startswith(needs), name
        assert unit["Service.EnvironmentFile"] == ["/etc/nexrel/nexrel.env"], name
        assert directory in unit["Service.Environment"], name
        assert "/run/nexrel/metrics" in unit["Service.ReadWritePaths"][0].split(), name
        assert unit["Service.Restart"] == ["on-failure"] and unit["Service.RestartSec"], name
        for limit in ("MemoryMax", "TasksMax", "LimitNOFILE"):
            assert unit[f"Service.{limit}"], f"{name}: no {limit}"
        for hardening in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
            assert unit[f"Service.{hardening}"] == ["yes"], f"{name}: {hardening}"
        assert unit["Service.ProtectSystem"] == ["strict"], name
    worker = unit_settings(SYSTEMD / "nexrel-worker.service")
    # qcluster can hang on SIGTERM: a bounded stop, then SIGKILL.
    assert worker["Service.KillSignal"] == ["SIGTERM"] and worker["Service.SendSIGKILL"] == ["yes"]
    assert int(worker["Service.TimeoutStopSec"][0]) <= 30


def test_the_metrics_unit_empties_the_directory(tmp_path):
    """Its ExecStart, run as systemd would: from the checkout, with its directory."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_1234.db").write_bytes(b"samples of a process that is gone")
    env = {"PATH": os.environ["PATH"], metrics.MULTIPROC_ENV: str(directory)}
    done = subprocess.run(
        unit_command("nexrel-metrics-dir.service"),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert directory.is_dir() and not list(directory.iterdir())


# nginx --------------------------------------------------------------------------------------


def test_static_files_carry_the_pages_csp():
    """The viewer's decode worker obeys its own script's CSP (nexrel/static_csp.py)."""
    static = nginx_location("/static/")
    header = re.search(r'add_header\s+Content-Security-Policy\s+"([^"]+)"\s+always;', static)
    assert header, "no Content-Security-Policy on /static/"
    assert header.group(1) == build_policy(settings.SECURE_CSP)
    # A report-only policy would need its header there too.
    assert not settings.SECURE_CSP_REPORT_ONLY
    alias = re.search(r"alias\s+(\S+);", static).group(1)
    example = example_assignments()
    # STATIC_ROOT is NEXREL_DATA_DIR/staticfiles (test_the_example_passes_check_deploy).
    assert alias.rstrip("/") == f"{example['NEXREL_DATA_DIR'][0]}/staticfiles"


def test_the_largest_bodies_match_the_settings():
    example = example_assignments()
    stow = nginx_location("/dicomweb/")
    size = re.search(r"client_max_body_size\s+(\S+);", stow).group(1)
    assert nginx_size(size) == int(example["DICOMWEB_MAX_STOW_BYTES"][0])
    assert int(example["DICOMWEB_MAX_STOW_BYTES"][0]) == settings.DICOMWEB_MAX_STOW_BYTES
    assert "proxy_request_buffering off;" in stow  # STOW-RS streams
    upload = nginx_location("/dicom/upload/")
    size = re.search(r"client_max_body_size\s+(\S+);", upload).group(1)
    assert nginx_size(size) == int(example["NEXREL_UPLOAD_MAX_BYTES"][0])
    assert int(example["NEXREL_UPLOAD_MAX_BYTES"][0]) == settings.NEXREL_UPLOAD_MAX_BYTES
    # Django sends HSTS itself: nginx adding it would send it twice.
    assert "Strict-Transport-Security" not in nginx_text()


@pytest.mark.integration
def test_nginx_accepts_the_config(tmp_path):
    nginx = nginx_binary()
    if nginx is None:
        pytest.skip("nginx is not installed (scripts/apt-deps.sh installs nginx-light)")
    main = nginx_config(tmp_path)
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr
