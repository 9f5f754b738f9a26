"""Nexrel settings: one module, read from the environment.

Local defaults run everything embedded (SQLite, django-q2 ORM broker, local file
storage under ``var/``). Production differs only by environment variables.
"""

from __future__ import annotations

import mimetypes
import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from nexrel.residency import check_s3_residency

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: str) -> bool:
    value = env(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def envint(name: str, default: str) -> int:
    value = env(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def envsecret(name: str, default: str = "") -> str:
    """Read NAME, or the contents of the file named by NAME_FILE (Docker/K8s secrets)."""
    path = env(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc}") from None
    return env(name, default)


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", "false")
# Production: served over HTTPS (behind a TLS proxy or not), real secrets. The web hardening
# below defaults to on with it, and every default can still be set by its own variable.
PRODUCTION = envbool("NEXREL_PRODUCTION", "false")
_in_production = "true" if PRODUCTION else "false"
SECRET_KEY = envsecret("SECRET_KEY", "nexrel-local-development-key-not-for-production")
if not DEBUG and SECRET_KEY.startswith("nexrel-local") and PRODUCTION:
    raise ImproperlyConfigured("SECRET_KEY must be set in production")
# The audit trail's chain key (patients/audit.py): set NEXREL_AUDIT_KEY in production, so
# that changing SECRET_KEY does not make the trail's past unverifiable.
AUDIT_CHAIN_KEY = envsecret("NEXREL_AUDIT_KEY") or f"nexrel-audit:{SECRET_KEY}"
# Forward the audit trail to a syslog collector (patients/syslog.py): udp://, tcp:// or
# tls://host[:port]; AUDIT_SYSLOG_CA verifies a TLS collector (the system's CAs otherwise).
AUDIT_SYSLOG_URL = env("AUDIT_SYSLOG_URL", "")
if AUDIT_SYSLOG_URL and not re.fullmatch(r"(udp|tcp|tls)://[^/:]+(:\d+)?/?", AUDIT_SYSLOG_URL):
    raise ImproperlyConfigured(
        f"AUDIT_SYSLOG_URL {AUDIT_SYSLOG_URL!r}: expected udp://, tcp:// or tls://host[:port]"
    )
AUDIT_SYSLOG_CA = env("AUDIT_SYSLOG_CA", "")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

# Where everything local lives: SQLite, the DICOM spool, local storage, logs.
DATA_DIR = Path(env("NEXREL_DATA_DIR", str(BASE_DIR / "var"))).resolve()
SPOOL_DIR = Path(env("NEXREL_SPOOL_DIR", str(DATA_DIR / "spool"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles, whose runserver nexrel's extends (static files with the CSP header).
    "nexrel",  # composes the apps: the clinician's home and chart pages, the demo data
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "django_q",
    "axes",
    "patients",
    "dicomnet",
    "worklist",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "nexrel.idle.SessionIdleTimeoutMiddleware",
    "patients.audit.AuditMiddleware",
    "nexrel.metrics.MetricsMiddleware",
    # Last, as django-axes asks: it answers a locked-out login itself.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "nexrel.urls"
WSGI_APPLICATION = "nexrel.wsgi.application"
ASGI_APPLICATION = "nexrel.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "patients.context_processors.notifications",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'nexrel.sqlite3'}"),
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", "0"),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server, the listener and the workers read while one writes;
    # IMMEDIATE transactions and a generous timeout turn lock contention into waiting.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
    }
    # A file (not in-memory) test database, so tests can share it with a listener or
    # worker subprocess. pytest-xdist appends the worker id.
    _test_db = Path(env("NEXREL_TEST_DB", str(DATA_DIR / "test-nexrel.sqlite3")))
    _test_db.parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": str(_test_db)}

AUTH_USER_MODEL = "patients.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = env("LANGUAGE_CODE", "fr-ca")
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", "America/Toronto")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
NEXREL_UPLOAD_MAX_BYTES = envint("NEXREL_UPLOAD_MAX_BYTES", str(2 * 1024**3))

# Email (the notifications people ask for, patients/mail.py), through Django's MAILERS: printed
# on the console unless EMAIL_BACKEND names another backend; the EMAIL_HOST, EMAIL_PORT,
# EMAIL_HOST_USER, EMAIL_HOST_PASSWORD(_FILE) and EMAIL_USE_TLS variables are the SMTP
# backend's options (django.core.mail.backends.smtp.EmailBackend).
# In production the default is SMTP to the server's own mail relay (localhost:25).
email_backend = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
email_options: dict[str, object] = {}
if email_backend.endswith(".smtp.EmailBackend"):
    email_options = {
        "host": env("EMAIL_HOST", "localhost"),
        "port": envint("EMAIL_PORT", "25"),
        "username": env("EMAIL_HOST_USER"),
        "password": envsecret("EMAIL_HOST_PASSWORD"),
        "use_tls": envbool("EMAIL_USE_TLS", "false"),
    }
MAILERS = {"default": {"BACKEND": email_backend, "OPTIONS": email_options}}
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Nexrel <nexrel@localhost>")
# The address of the pages, for the links in emails ("https://nexrel.example.ca").
NEXREL_SITE_URL = env("NEXREL_SITE_URL", "http://127.0.0.1:8000").rstrip("/")


# Storage: local files by default, S3 (ca-central-1, server-side encryption) in production.
def s3_storage(
    *,
    bucket: str,
    region: str = "ca-central-1",
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    sse: str = "AES256",
    kms_key_id: str | None = None,
) -> dict:
    """The STORAGES entry for S3; tests build theirs with this too, so they test ours."""
    object_parameters = {"ServerSideEncryption": sse}
    if kms_key_id:
        object_parameters["SSEKMSKeyId"] = kms_key_id
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "region_name": region,
            "endpoint_url": endpoint_url or None,
            "access_key": access_key or None,
            "secret_key": secret_key or None,
            # We choose unique keys ourselves; a retried task must overwrite, never rename.
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": True,
            "object_parameters": object_parameters,
        },
    }


S3_BUCKET = env("NEXREL_S3_BUCKET")
if S3_BUCKET:
    check_s3_residency(env("NEXREL_S3_REGION", "ca-central-1"), env("NEXREL_S3_SSE", "AES256"))
    _default_storage = s3_storage(
        bucket=S3_BUCKET,
        region=env("NEXREL_S3_REGION", "ca-central-1"),
        endpoint_url=env("NEXREL_S3_ENDPOINT_URL"),
        access_key=envsecret("AWS_ACCESS_KEY_ID"),
        secret_key=envsecret("AWS_SECRET_ACCESS_KEY"),
        sse=env("NEXREL_S3_SSE", "AES256"),
        kms_key_id=env("NEXREL_S3_KMS_KEY_ID"),
    )
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(DATA_DIR / "storage"), "allow_overwrite": True},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# DICOM listener.
DICOM_AE_TITLE = env("DICOM_AE_TITLE", "NEXREL-CRM")
DICOM_BIND_ADDRESS = env("DICOM_BIND_ADDRESS", "0.0.0.0")
DICOM_PORT = envint("DICOM_PORT", "4242")
DICOM_MAX_PDU = envint("DICOM_MAX_PDU", str(256 * 1024))
DICOM_MAX_ASSOCIATIONS = envint("DICOM_MAX_ASSOCIATIONS", "16")
DICOM_SOCKET_TIMEOUT = envint("DICOM_SOCKET_TIMEOUT", "30")
DICOM_ACSE_TIMEOUT = envint("DICOM_ACSE_TIMEOUT", "30")
DICOM_DIMSE_TIMEOUT = envint("DICOM_DIMSE_TIMEOUT", "60")
DICOM_NETWORK_TIMEOUT = envint("DICOM_NETWORK_TIMEOUT", "120")
# Open connections, whatever their state (each holds two threads until it is closed), and
# those of one host still awaiting their A-ASSOCIATE-RQ: beyond either, a new connection is
# closed at accept (docs/security.md), so idle sockets can't take every slot.
DICOM_MAX_CONNECTIONS = envint("DICOM_MAX_CONNECTIONS", str(4 * DICOM_MAX_ASSOCIATIONS))
DICOM_MAX_PENDING_PER_HOST = envint("DICOM_MAX_PENDING_PER_HOST", "4")
# Listener processes sharing the port (SO_REUSEPORT): pynetdicom spends its time in Python,
# so parallel associations in one process share one core (docs/benchmarks.md).
DICOM_LISTENER_PROCESSES = envint("DICOM_LISTENER_PROCESSES", "2")
# Accepted associations wait for events instead of polling with 1 ms sleeps
# (dicomnet/net/reactor.py). Off: pynetdicom's own reactors, for comparison (bench/).
DICOM_EVENT_DRIVEN_REACTOR = envbool("DICOM_EVENT_DRIVEN_REACTOR", "true")
# With that reactor, storage-only associations store C-STOREs without pynetdicom's
# per-message machinery (dicomnet/net/lean_store.py). Off: pynetdicom's path (bench/).
DICOM_LEAN_STORE = envbool("DICOM_LEAN_STORE", "true")
# The DIMSE services the listener binds besides C-ECHO (dicomnet.net.listener.service_modules).
# Every one must import, or the listener refuses to start.
DICOM_SERVICE_MODULES = (
    "dicomnet.ingest.scp",  # C-STORE
    "dicomnet.qr.scp",  # query/retrieve: C-FIND, C-MOVE, C-GET
    "worklist.mwl",  # modality worklist C-FIND
    "worklist.mpps",  # MPPS N-CREATE, N-SET
)
# Which scheduled work (worklist item) a received study names: called by dicomnet's linking,
# provided by the worklist app, which dicomnet does not import (docs/architecture.md).
NEXREL_SCHEDULED_WORK_FINDER = "worklist.identify.item_for_study"
if DICOM_MAX_PDU < 16384:
    raise ImproperlyConfigured("DICOM_MAX_PDU must be at least 16384 bytes")
# DICOM TLS (docs/security.md): the BCP 195 profile on DICOM_TLS_PORT, beside the plain port
# or instead of it. DICOM_TLS_CERT/KEY are also the client certificate of outbound TLS; with
# DICOM_TLS_CA set, callers must present a certificate it signed (mutual TLS), and outbound
# TLS trusts it for devices that give no CA of their own.
DICOM_PLAIN_PORT_ENABLED = envbool("DICOM_PLAIN_PORT_ENABLED", "true")
DICOM_TLS_PORT = envint("DICOM_TLS_PORT", "") if env("DICOM_TLS_PORT").strip() else None
DICOM_TLS_CERT = env("DICOM_TLS_CERT")
DICOM_TLS_KEY = env("DICOM_TLS_KEY")
DICOM_TLS_CA = env("DICOM_TLS_CA")
# A caller that connects and sends no ClientHello is dropped after this long.
DICOM_TLS_HANDSHAKE_TIMEOUT = envint("DICOM_TLS_HANDSHAKE_TIMEOUT", "10")
# The listener refuses to start with a TLS port but no certificate (tls.listener_context).
if bool(DICOM_TLS_CERT) != bool(DICOM_TLS_KEY):
    raise ImproperlyConfigured("DICOM_TLS_CERT and DICOM_TLS_KEY go together")
if DICOM_TLS_HANDSHAKE_TIMEOUT < 1:
    raise ImproperlyConfigured("DICOM_TLS_HANDSHAKE_TIMEOUT must be at least 1 second")

# Orthanc as a front end (deploy/orthanc/): where the webhook's instances are fetched from.
ORTHANC_URL = env("ORTHANC_URL", "http://127.0.0.1:8042")
ORTHANC_USERNAME = env("ORTHANC_USERNAME", "nexrel")
ORTHANC_PASSWORD = envsecret("ORTHANC_PASSWORD")
ORTHANC_TIMEOUT = envint("ORTHANC_TIMEOUT", "60")

# DICOMweb: the largest STOW-RS body taken (docs/dicomweb-conformance.md); larger is a 413.
DICOMWEB_MAX_STOW_BYTES = envint("DICOMWEB_MAX_STOW_BYTES", str(4 * 1024**3))
if DICOMWEB_MAX_STOW_BYTES < 1:
    raise ImproperlyConfigured("DICOMWEB_MAX_STOW_BYTES must be a positive number of bytes")

# Hostile objects (docs/security.md): the most a deflated data set may inflate to
# (pydicom inflates it whole, in memory, to read even its header), and the most pixels a
# frame may have to be decoded (preview, rendered, decoded frames): 32 Mi pixels take about
# 250 MB to render; a dental panoramic has 3 to 10 Mi.
NEXREL_MAX_INFLATED_BYTES = envint("NEXREL_MAX_INFLATED_BYTES", str(128 * 1024**2))
NEXREL_MAX_DECODED_PIXELS = envint("NEXREL_MAX_DECODED_PIXELS", str(32 * 1024**2))

# Processing pipeline.
NEXREL_TASK_MAX_ATTEMPTS = envint("NEXREL_TASK_MAX_ATTEMPTS", "4")
# A retry after an unreachable storage or database waits 2**attempts s, at most this long.
NEXREL_RETRY_MAX_DELAY = envint("NEXREL_RETRY_MAX_DELAY", "300")
# C-STORE is refused (0xA700) while the spool's disk has less free than this: the headroom
# keeps objects already acknowledged, and the database beside them, writable.
NEXREL_SPOOL_MIN_FREE_MB = envint("NEXREL_SPOOL_MIN_FREE_MB", "100")
NEXREL_ANALYZERS = envlist("NEXREL_ANALYZERS", "dicomnet.ingest.analysis.exposure_check")
NEXREL_THUMBNAIL_SIZE = envint("NEXREL_THUMBNAIL_SIZE", "256")
NEXREL_PREVIEW_MAX_SIZE = envint("NEXREL_PREVIEW_MAX_SIZE", "2048")

# django-q2: the ORM broker unless REDIS_URL is given (django-q2 defaults to Redis otherwise).
Q_CLUSTER: dict = {
    "name": "nexrel",
    "workers": envint("Q_WORKERS", "2"),
    "timeout": envint("Q_TIMEOUT", "300"),
    "retry": envint("Q_RETRY", "600"),
    "max_attempts": 1,  # our own retry logic records the reason; see dicomnet/ingest/pipeline.py
    "ack_failures": True,
    "catch_up": False,
    "poll": float(env("Q_POLL", "0.1")),
    "label": "Tasks",
    "save_limit": 1000,
    # Prefetch little, so an interactive task is never stuck behind many bulk ones.
    "queue_limit": envint("Q_WORKERS", "2"),
}
# Brokers with an interactive and a bulk lane (dicomnet/ingest/queues.py).
if env("REDIS_URL"):
    Q_CLUSTER["redis"] = env("REDIS_URL")
    Q_CLUSTER["broker_class"] = "dicomnet.ingest.queues.PriorityRedis"
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["broker_class"] = "dicomnet.ingest.queues.PriorityORM"

REST_FRAMEWORK = {
    # A user's bearer token first (patients/tokens.py): an anonymous request is then a 401
    # with WWW-Authenticate, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "dicomnet.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PAGINATION_CLASS": "dicomnet.api.pagination.Pages",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Nexrel API",
    "VERSION": "0.1.0",
    # Three models have a "status": each its own enum in the schema.
    "ENUM_NAME_OVERRIDES": {
        "AppointmentStatusEnum": "patients.models.Appointment.Status",
        "StudyStatusEnum": "dicomnet.models.DicomStudy.Status",
        "RetrieveJobStatusEnum": "dicomnet.models.RetrieveJob.Status",
    },
}

# The viewer's decode worker compiles the codecs' WebAssembly ('wasm-unsafe-eval', which is
# not 'unsafe-eval': no string becomes code) and is a module script of our own origin. A
# worker obeys the CSP of its own script's response, so static files carry this header too
# (nexrel/static_csp.py, docs/viewer.md).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:", "blob:", "https:"],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "script-src": [CSP.SELF, CSP.WASM_UNSAFE_EVAL],
    "worker-src": [CSP.SELF],
}
# The codecs are fetched with WebAssembly.instantiateStreaming, which needs this exact type;
# Python's mimetypes only knows it on some systems.
mimetypes.add_type("application/wasm", ".wasm")

# Web hardening (docs/security.md, "Web"). Cookies only over HTTPS, and HSTS, in production.
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", _in_production)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", _in_production)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "31536000" if PRODUCTION else "0")
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _in_production)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "false")
# Preloading commits the clinic's whole domain to HTTPS in every browser for good: the
# domain's owner decides (SECURE_HSTS_PRELOAD=true), so check --deploy does not insist.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Behind nginx (deploy/): the proxy says the request came over HTTPS.
if envbool("NEXREL_BEHIND_TLS_PROXY", _in_production):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# A session ends after NEXREL_SESSION_IDLE_MINUTES without a request of the person's own
# (nexrel/idle.py: the bell's polling does not count), and at most SESSION_COOKIE_AGE after
# login, and when the browser closes.
SESSION_IDLE_SECONDS = envint("NEXREL_SESSION_IDLE_MINUTES", "30") * 60
SESSION_COOKIE_AGE = envint("NEXREL_SESSION_MAX_HOURS", "12") * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# Login rate limiting and lockout (django-axes): NEXREL_LOGIN_FAILURE_LIMIT failed logins for
# one username from one address lock that pair out for NEXREL_LOGIN_COOLOFF_MINUTES (429).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("NEXREL_LOGIN_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = envint("NEXREL_LOGIN_COOLOFF_MINUTES", "15") / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
# The address of a login (and of every audit event): behind the proxy, the one it appends
# to X-Forwarded-For, its last entry (nexrel/proxy.py); else the socket's (a client's own
# X-Forwarded-For would let it dodge the lockout).
if "SECURE_PROXY_SSL_HEADER" in globals():
    AXES_CLIENT_IP_CALLABLE = "nexrel.proxy.forwarded_client_address"
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# Operations (nexrel/ops.py, nexrel/metrics.py): /metrics wants this bearer token (unset:
# off); /health/ says 503 when a check fails these thresholds.
METRICS_TOKEN = envsecret("METRICS_TOKEN")
DICOM_HEARTBEAT_SECONDS = envint("DICOM_HEARTBEAT_SECONDS", "10")
NEXREL_HEALTH_LISTENER_STALE_SECONDS = envint("NEXREL_HEALTH_LISTENER_STALE_SECONDS", "60")
NEXREL_HEALTH_QUEUE_STALE_SECONDS = envint("NEXREL_HEALTH_QUEUE_STALE_SECONDS", "600")
NEXREL_HEALTH_SPOOL_MIN_FREE_PERCENT = envint("NEXREL_HEALTH_SPOOL_MIN_FREE_PERCENT", "5")
# Alerts (dicomnet/alerts.py, every minute): to the practice admins, while the condition holds.
NEXREL_ALERTS_ENABLED = envbool("NEXREL_ALERTS_ENABLED", "true")
NEXREL_ALERT_FAILURES_PER_HOUR = envint("NEXREL_ALERT_FAILURES_PER_HOUR", "5")
NEXREL_ALERT_QUEUE_STALE_MINUTES = envint("NEXREL_ALERT_QUEUE_STALE_MINUTES", "10")
NEXREL_ALERT_STORAGE_PERCENT = envint("NEXREL_ALERT_STORAGE_PERCENT", "90")
NEXREL_ALERT_SPOOL_FREE_PERCENT = envint("NEXREL_ALERT_SPOOL_FREE_PERCENT", "10")
NEXREL_ALERT_TLS_DAYS = envint("NEXREL_ALERT_TLS_DAYS", "30")

LOG_LEVEL = env("LOG_LEVEL", "INFO")
# json: one JSON object per line with the request's or association's ids (nexrel/logs.py).
LOG_FORMAT = env("LOG_FORMAT", "json" if PRODUCTION else "plain")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"ids": {"()": "nexrel.logs.ContextIds"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"},
        "json": {"()": "nexrel.logs.NexrelJsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["ids"],
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "nexrel": {"level": LOG_LEVEL, "propagate": True},
        "dicomnet": {"level": LOG_LEVEL, "propagate": True},
        "patients": {"level": LOG_LEVEL, "propagate": True},
        "worklist": {"level": LOG_LEVEL, "propagate": True},
        "pynetdicom": {"level": env("PYNETDICOM_LOG_LEVEL", "WARNING"), "propagate": True},
    },
}
