"""The web edge of a deployment, served as deploy/ says: nginx with deploy/nginx/nexrel.conf
in front of gunicorn started by nexrel-web.service's own command, on a database migrated
by nexrel-migrate.service's commands, with deploy/nexrel.env.example's settings.

What changes for the test, and only that: ports (free ones on 127.0.0.1), the certificate
(a development CA's), the data under tmp_path, local storage instead of S3, two gunicorn
workers, and nginx's workers running as root (tmp_path is private). A client that connects
from 127.0.0.2 is outside the monitoring network.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.utils.csp import build_policy
from pydicom.uid import generate_uid

from tests.deploy_files import (
    ROOT,
    SYSTEMD,
    nginx_binary,
    nginx_config,
    production_env,
    unit_command,
    unit_settings,
)
from tests.dicom_samples import dicom_bytes
from tests.fixtures import free_port, wait_for_port
from tests.peers import PostgresServer, stop_process

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed"),
]

OUTSIDE = "127.0.0.2"  # not in the config's monitoring network
BOUNDARY = "nexrel-edge-boundary"


@dataclass
class Edge:
    https: int
    http: int
    ca: Path
    database: str
    metrics_token: str
    api_token: str
    env: dict[str, str]

    def request(
        self,
        method: str,
        path: str,
        *,
        source: str = "127.0.0.1",
        headers: dict[str, str] | None = None,
        body: bytes | Iterator[bytes] | None = None,
        chunked: bool = False,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        context = ssl.create_default_context(cafile=str(self.ca))
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.https, context=context, source_address=(source, 0), timeout=60
        )
        try:
            conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()


def _run(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _start(argv: list[str], *, env: dict[str, str] | None, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@pytest.fixture(scope="module")
def edge(postgres_server: PostgresServer, tmp_path_factory) -> Iterator[Edge]:
    root = tmp_path_factory.mktemp("edge")
    https, plain, web = free_port(), free_port(), free_port()
    env = production_env(root)
    env.pop("PGPASSFILE")
    env.update(
        DATABASE_URL=postgres_server.create_database(f"nexrel_edge_{uuid.uuid4().hex[:8]}"),
        NEXREL_S3_BUCKET="",
        ALLOWED_HOSTS="127.0.0.1",
        CSRF_TRUSTED_ORIGINS=f"https://127.0.0.1:{https}",
        LANGUAGE_CODE="en",
        PYTHONUNBUFFERED="1",
    )
    # 1. nexrel-migrate.service: migrate, collectstatic; then the demo's people.
    migrate = unit_settings(SYSTEMD / "nexrel-migrate.service")["Service.ExecStart"]
    for index in range(len(migrate)):
        _run(unit_command("nexrel-migrate.service", index=index), env)
    manage = [sys.executable, "manage.py"]
    _run([*manage, "seed_demo", "--no-images"], env)
    api_token = _run([*manage, "api_token", "create", "--user", "clinician"], env)
    # 2. nexrel-web.service's gunicorn, with the unit's own environment, on a free port.
    web_env = {**env, "WEB_CONCURRENCY": "2"}
    for assignment in unit_settings(SYSTEMD / "nexrel-web.service")["Service.Environment"]:
        name, _, value = assignment.partition("=")
        web_env.setdefault(name, value)
    web_env["PROMETHEUS_MULTIPROC_DIR"] = str(root / "metrics")
    (root / "metrics").mkdir()
    command = [
        arg.replace("127.0.0.1:8000", f"127.0.0.1:{web}")
        for arg in unit_command("nexrel-web.service")
    ]
    # 3. nginx with the site's config.
    main = nginx_config(
        root,
        replace={
            "listen 443 ssl http2;": f"listen 127.0.0.1:{https} ssl http2;",
            "listen [::]:443 ssl http2;": "",
            "listen 80;": f"listen 127.0.0.1:{plain};",
            "listen [::]:80;": "",
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{web};",
            "/var/lib/nexrel/staticfiles/": f"{root}/data/staticfiles/",
        },
        main="user root;\n",
    )
    nginx_argv = [nginx_binary(), "-p", str(root), "-c", str(main), "-e", str(root / "error.log")]
    started: list[tuple[subprocess.Popen, int]] = []
    try:
        gunicorn = _start(command, env=web_env, log=root / "gunicorn.log")
        started.append((gunicorn, signal.SIGTERM))
        nginx = _start([*nginx_argv, "-g", "daemon off;"], env=None, log=root / "nginx.log")
        started.append((nginx, signal.SIGQUIT))  # nginx's graceful stop
        for port, log in ((web, "gunicorn.log"), (https, "error.log")):
            try:
                wait_for_port(port, timeout=30)
            except TimeoutError:
                raise AssertionError((root / log).read_text(errors="replace")) from None
        yield Edge(
            https=https,
            http=plain,
            ca=root / "tls" / "ca.crt",
            database=env["DATABASE_URL"],
            metrics_token=Path(env["METRICS_TOKEN_FILE"]).read_text().strip(),
            api_token=api_token.strip().splitlines()[-1],
            env=env,
        )
    finally:
        for proc, sig in reversed(started):
            stop_process(proc, sig)


def test_static_files_come_from_nginx_with_the_pages_csp(edge):
    status, headers, body = edge.request("GET", "/static/vendor/htmx.min.js")
    assert status == 200 and body == (ROOT / "static" / "vendor" / "htmx.min.js").read_bytes()
    assert headers["Server"].startswith("nginx")
    assert headers.get_all("Content-Security-Policy") == [build_policy(settings.SECURE_CSP)]
    assert headers["X-Content-Type-Options"] == "nosniff"
    # The codecs: WebAssembly.instantiateStreaming needs this exact type.
    wasm = sorted((ROOT / "static" / "viewer" / "dist").glob("*.wasm"))
    assert wasm, "no codec in static/viewer/dist/: `make setup` builds the viewer"
    status, headers, _ = edge.request("GET", f"/static/viewer/dist/{wasm[0].name}")
    assert (status, headers["Content-Type"]) == (200, "application/wasm")


def test_pages_over_https_hsts_once_and_no_redirect(edge):
    """X-Forwarded-Proto says HTTPS, so SECURE_SSL_REDIRECT sends no one round in circles;
    HSTS comes from Django alone."""
    status, headers, _ = edge.request("GET", "/accounts/login/")
    assert status == 200
    assert headers.get_all("Strict-Transport-Security") == ["max-age=31536000; includeSubDomains"]
    assert len(headers.get_all("Content-Security-Policy")) == 1
    # Open to anyone: 503 here (no listener runs), Django's JSON all the same.
    status, headers, body = edge.request("GET", "/health/", source=OUTSIDE)
    assert (status, json.loads(body)["status"]) == (503, "unhealthy")
    assert headers.get_all("Strict-Transport-Security") == ["max-age=31536000; includeSubDomains"]


def test_plain_http_is_sent_to_https(edge):
    conn = http.client.HTTPConnection("127.0.0.1", edge.http, timeout=30)
    conn.request("GET", "/patients/?q=1")
    response = conn.getresponse()
    assert response.status == 301
    assert response.headers["Location"] == "https://127.0.0.1/patients/?q=1"
    conn.close()


def test_metrics_only_from_the_monitoring_network(edge):
    bearer = {"Authorization": f"Bearer {edge.metrics_token}"}
    status, _, body = edge.request("GET", "/metrics", headers=bearer)
    assert status == 200 and b"# HELP" in body
    status, _, body = edge.request("GET", "/metrics", headers=bearer, source=OUTSIDE)
    assert status == 403 and b"nginx" in body  # refused by nginx, never reaching Django
    status, _, _ = edge.request("GET", "/metrics")
    assert status == 401  # from the monitoring network, the token is still needed


def _login_form(edge: Edge, source: str) -> tuple[str, str]:
    status, headers, body = edge.request("GET", "/accounts/login/", source=source)
    assert status == 200
    cookie = re.search(r"csrftoken=([^;]+)", headers["Set-Cookie"]).group(1)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    return cookie, token


def _login(edge: Edge, password: str, *, source: str, forwarded: str | None = None) -> int:
    cookie, token = _login_form(edge, source)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"csrftoken={cookie}",
        "Origin": f"https://127.0.0.1:{edge.https}",
        "Referer": f"https://127.0.0.1:{edge.https}/accounts/login/",
    }
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    form = f"csrfmiddlewaretoken={token}&username=clinician&password={password}"
    status, _, _ = edge.request(
        "POST", "/accounts/login/", source=source, headers=headers, body=form.encode()
    )
    return status


def test_the_client_address_is_the_one_nginx_saw(edge):
    """A client's own X-Forwarded-For entries neither dodge the lockout nor reach the
    audit trail: the address is the one nginx appended (nexrel/proxy.py)."""
    limit = settings.AXES_FAILURE_LIMIT
    statuses = [
        _login(edge, "wrong", source=OUTSIDE, forwarded=f"10.0.0.{n}") for n in range(limit)
    ]
    assert statuses == [200] * (limit - 1) + [429]
    assert _login(edge, "nexrel-demo", source=OUTSIDE, forwarded="192.0.2.50") == 429
    assert _login(edge, "nexrel-demo", source="127.0.0.1") == 302  # another address
    with psycopg.connect(edge.database) as conn:
        rows = conn.execute(
            "select distinct address from patients_auditevent where what = 'login_failed'"
        ).fetchall()
    assert rows == [(OUTSIDE,)]


def _stow_body(*objects: bytes) -> bytes:
    out = b""
    for data in objects:
        out += f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        out += data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def _chunks(data: bytes, size: int = 4096) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def _stow(edge: Edge, objects: list[bytes], *, chunked: bool) -> None:
    body = _stow_body(*objects)
    headers = {
        "Authorization": f"Bearer {edge.api_token}",
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
        "Accept": "application/dicom+json",
    }
    status, _, answer = edge.request(
        "POST",
        "/dicomweb/studies",
        headers=headers,
        body=_chunks(body) if chunked else body,
        chunked=chunked,
    )
    assert status == 200, answer[:500]
    assert len(json.loads(answer)["00081199"]["Value"]) == len(objects)  # ReferencedSOPSequence


def _objects(study: str, count: int = 3) -> list[bytes]:
    return [
        dicom_bytes(study_uid=study, patient_id="1001", patient_name="COTE^ZOE")
        for _ in range(count)
    ]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_stow_through_nginx(edge, chunked):
    """STOW-RS with a Content-Length is streamed to Django as it arrives; a chunked one is
    buffered by nginx first (HTTP/1.0 upstream), else Django would see no body."""
    objects = _objects(generate_uid())
    _stow(edge, objects, chunked=chunked)
    # Durable rows (the workers, not running here, would process them).
    with psycopg.connect(edge.database) as conn:
        stored = conn.execute(
            "select count(*) from dicomnet_dicominstance where sop_instance_uid = any(%s)",
            [[_sop_uid(o) for o in objects]],
        ).fetchone()[0]
    assert stored == 3


PROCESS = """
from dicomnet.ingest.pipeline import process_instance
from dicomnet.models import DicomInstance
for pk in DicomInstance.objects.filter(state="RECEIVED").values_list("pk", flat=True):
    print(process_instance(pk))
"""


def test_wado_streams_a_study_through_nginx(edge):
    study = generate_uid()
    objects = _objects(study)
    _stow(edge, objects, chunked=False)
    assert "processed" in _run([sys.executable, "manage.py", "shell", "-c", PROCESS], edge.env)
    status, headers, body = edge.request(
        "GET",
        f"/dicomweb/studies/{study}",
        headers={
            "Authorization": f"Bearer {edge.api_token}",
            "Accept": 'multipart/related; type="application/dicom"',
        },
    )
    assert status == 200, body[:500]
    assert headers["Content-Type"].startswith("multipart/related")
    assert headers["Transfer-Encoding"] == "chunked"  # streamed: no length known up front
    assert all(data in body for data in objects)


def _sop_uid(data: bytes) -> str:
    import io

    import pydicom

    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)
