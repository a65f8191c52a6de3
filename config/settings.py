"""Settings: every difference between environments is an environment variable read here, once."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CONCORD_VAR_DIR", BASE_DIR / "var"))


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# The embedded default (no variables set) is a developer's laptop; production sets DEBUG=0.
DEBUG = _flag("DEBUG", True)


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (production).")
    # Embedded default: generate once and keep it, so sessions survive restarts.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = _list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = _list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files: /api/docs/ works offline
    "axes",
    "accounts",
    "features",
    "annotation",
    "inference",
    "clinical",  # top floor beside config: explain a note, drift audits, protected attributes (issue 12)
    "config",  # the top floor: commands that wire several apps together (seed_demo, run_embedded)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Before anything reads the body: oversized bodies answer JSON 413, NUL bytes and deep nesting 400.
    "config.middleware.RequestLimitsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into a 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'concord.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # WAL lets the web process read while the embedded worker writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
if os.environ.get("CONCORD_TEST_DB_NAME"):
    # Lets two test runs share one PostgreSQL server without dropping each other's test database.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["CONCORD_TEST_DB_NAME"]}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": int(os.environ.get("PASSWORD_MIN_LENGTH", "10"))},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked-out username/IP before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login lockout: after AXES_FAILURE_LIMIT wrong passwords for one username from one address, that pair
# is locked out (HTTP 429) for AXES_COOLOFF_HOURS, even with the right password; after
# AXES_IP_FAILURE_LIMIT wrong passwords from one address over any usernames, that address is (accounts/lockout.py).
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "10"))
AXES_IP_FAILURE_LIMIT = int(os.environ.get("AXES_IP_FAILURE_LIMIT", "50"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", "1"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_HANDLER = "accounts.lockout.TwoLimitLockoutHandler"
# The client address: REMOTE_ADDR, or X-Forwarded-For only as far as NUM_PROXIES trusted proxies vouch
# for it (the same rule as the API throttles), so a forged X-Forwarded-For cannot dodge the lockout.
AXES_CLIENT_IP_CALLABLE = "accounts.throttles.client_address"
NUM_PROXIES = int(os.environ.get("NUM_PROXIES", "0"))
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = _flag("AXES_VERBOSE", False)  # lockouts are still logged as warnings
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
if DEBUG:
    # WhiteNoise warns about a missing folder; in production `collectstatic` creates it.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Activations, SAE directories and uploaded corpora: a shared filesystem in production.
ARTIFACT_ROOT = Path(os.environ.get("ARTIFACT_ROOT", VAR_DIR / "artifacts"))
CONCORD_DEVICE = os.environ.get("CONCORD_DEVICE", "auto")

# Security: strict by default outside DEBUG.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = _flag("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Content-Security-Policy (django-csp): scripts only from our own static files, never inline, so an
# injected <script> or onerror= cannot run even if escaping were ever missed. Styles allow inline
# attributes (token shading is computed per token); they cannot execute code.
_SELF, _NONE = "'self'", "'none'"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_SELF],
        "script-src": [_SELF],
        "style-src": [_SELF, "'unsafe-inline'"],
        "img-src": [_SELF, "data:"],
        "font-src": [_SELF, "data:"],
        "connect-src": [_SELF],
        "object-src": [_NONE],
        "base-uri": [_SELF],
        "form-action": [_SELF],
        "frame-ancestors": [_NONE],
    },
}

# Abuse limits. Sizes are in characters (text) or bytes (bodies, uploads).
MAX_REQUEST_BODY_BYTES = int(os.environ.get("MAX_REQUEST_BODY_BYTES", str(10 * 1024 * 1024)))
MAX_UPLOAD_BYTES = int(os.environ.get("MAX_UPLOAD_BYTES", str(200 * 1024 * 1024)))
MAX_JSON_DEPTH = int(os.environ.get("MAX_JSON_DEPTH", "20"))
MAX_SNIPPET_CHARS = int(os.environ.get("MAX_SNIPPET_CHARS", "20000"))
MAX_TEXT_CHARS = int(os.environ.get("MAX_TEXT_CHARS", "5000"))
# Rubric guidelines are documents: their own, larger limit (descriptions use MAX_TEXT_CHARS).
MAX_GUIDELINES_CHARS = int(os.environ.get("MAX_GUIDELINES_CHARS", "50000"))
# An imported line's metadata (characters as JSON; depth is MAX_JSON_DEPTH) and concept tags.
MAX_METADATA_CHARS = int(os.environ.get("MAX_METADATA_CHARS", "10000"))
MAX_CONCEPT_TAGS = int(os.environ.get("MAX_CONCEPT_TAGS", "50"))
MAX_CONCEPT_TAG_CHARS = int(os.environ.get("MAX_CONCEPT_TAG_CHARS", "200"))
# Django's own limit on a non-file body read into memory; uploads stream to disk and are capped above.
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Caches hold the API throttle counters; with several web processes they must share Redis.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["CACHE_URL"]}
    if os.environ.get("CACHE_URL")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
API_THROTTLE_ANON_RATE = os.environ.get("API_THROTTLE_ANON_RATE", "60/minute")
API_THROTTLE_USER_RATE = os.environ.get("API_THROTTLE_USER_RATE", "1200/minute")
# Explaining a note (clinical/): each call runs the host model on the web process's CPU, so it has its
# own per-user rate (the API and the page's POST share it), a longest note, and saved notes (kept only
# when the user asks) are deleted after CLINICAL_SAVED_NOTE_DAYS days.
CLINICAL_EXPLAIN_RATE = os.environ.get("CLINICAL_EXPLAIN_RATE", "30/minute")
CLINICAL_MAX_NOTE_CHARS = int(os.environ.get("CLINICAL_MAX_NOTE_CHARS", "20000"))
CLINICAL_SAVED_NOTE_DAYS = int(os.environ.get("CLINICAL_SAVED_NOTE_DAYS", "30"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Personal (hashed) tokens first, so that a request without credentials gets 401 with
        # WWW-Authenticate rather than 403; then the UI's session.
        "accounts.authentication.PersonalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttles.AnonThrottle", "accounts.throttles.UserThrottle"],
    # Reverse proxies in front of Concord that set X-Forwarded-For; 0 = none, so the header is ignored.
    "NUM_PROXIES": NUM_PROXIES,
    # Every parsed body is checked for NUL and nesting whatever its declared type; wildcards get 415.
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.SafeJSONParser",
        "config.parsers.SafeFormParser",
        "config.parsers.SafeMultiPartParser",
    ],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.parsers.ConcreteContentNegotiation",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Concord API",
    "DESCRIPTION": "Multi-rater annotation of sparse-autoencoder latents.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "inference.models.Job.Status",
        "RoundStatusEnum": "annotation.models.Round.Status",
        "LatentStatusEnum": "features.models.Latent.Status",
    },
}

# Celery: two queues; GPU work to `gpu`, everything else to `cpu`.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # kombu's default is ./control, which left exchange files in whatever folder `make run` started in.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis redelivers an unacknowledged message after the visibility timeout. Jobs do not rely on it:
    # a job's lease decides whether it is still alive (a duplicate delivery of a job whose lease lives is
    # acknowledged and dropped), and the sweeper re-sends a job whose lease expired. One hour keeps
    # duplicates rare; socket timeouts make a stopped Redis a quick, clean refusal.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# Jobs are sent by name to the queue their kind names (inference/registry.py); the sweeper runs on `cpu`.
CELERY_TASK_ROUTES = {
    "inference.sweep_jobs": {"queue": "cpu"},
    "annotation.compute_round_statistics": {"queue": "cpu"},
    "annotation.sweep_round_statistics": {"queue": "cpu"},
}

# Jobs: a running job holds a lease renewed by its worker's heartbeat; the sweeper (Celery beat, every
# JOB_SWEEP_SECONDS) re-sends a job whose lease expired, up to JOB_MAX_ATTEMPTS runs, and re-sends a
# queued job that no worker or broker holds after JOB_QUEUED_GRACE_SECONDS.
JOB_LEASE_SECONDS = float(os.environ.get("JOB_LEASE_SECONDS", "300"))
JOB_SWEEP_SECONDS = float(os.environ.get("JOB_SWEEP_SECONDS", "30"))
JOB_MAX_ATTEMPTS = int(os.environ.get("JOB_MAX_ATTEMPTS", "3"))
JOB_QUEUED_GRACE_SECONDS = float(os.environ.get("JOB_QUEUED_GRACE_SECONDS", "120"))
# The heartbeat (accounts/leases.py) stops renewing a lease when the body reported no progress for
# JOB_STALL_SECONDS (a hung body: the sweeper then re-sends it), and gives up, stopping the body, after
# JOB_HEARTBEAT_MAX_FAILURES failed renewals in a row (retried with backoff within one renewal period).
JOB_STALL_SECONDS = float(os.environ.get("JOB_STALL_SECONDS", "3600"))
JOB_HEARTBEAT_MAX_FAILURES = int(os.environ.get("JOB_HEARTBEAT_MAX_FAILURES", "5"))
CELERY_BEAT_SCHEDULE = {
    "sweep-jobs": {
        "task": "inference.sweep_jobs",
        "schedule": JOB_SWEEP_SECONDS,
        "options": {"queue": "cpu", "expires": JOB_SWEEP_SECONDS},
    },
    # The same guarantees for round statistics (annotation/services/statistics_jobs.py).
    "sweep-round-statistics": {
        "task": "annotation.sweep_round_statistics",
        "schedule": JOB_SWEEP_SECONDS,
        "options": {"queue": "cpu", "expires": JOB_SWEEP_SECONDS},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Compute accounting: energy is measured (NVML on CUDA, RAPL where readable) or estimated from these
# power draws; CO2 at the grid's intensity; cost per device-hour, priced by device: a GPU hour at
# GPU_HOUR_PRICE (the middle of $2-4 per A100 hour), a CPU hour at CPU_HOUR_PRICE (a 4-vCPU cloud instance,
# about $0.05 per vCPU-hour). DEVICE_HOUR_PRICE, the one price of earlier versions, still sets the GPU
# price when GPU_HOUR_PRICE is not set, and stays readable as the GPU price.
CARBON_INTENSITY_KG_PER_KWH = float(os.environ.get("CARBON_INTENSITY_KG_PER_KWH", "0.4"))
GPU_HOUR_PRICE = float(os.environ.get("GPU_HOUR_PRICE", os.environ.get("DEVICE_HOUR_PRICE", "3.0")))
CPU_HOUR_PRICE = float(os.environ.get("CPU_HOUR_PRICE", "0.2"))
DEVICE_HOUR_PRICE = GPU_HOUR_PRICE
CPU_POWER_WATTS = float(os.environ.get("CPU_POWER_WATTS", "35"))
GPU_POWER_WATTS = float(os.environ.get("GPU_POWER_WATTS", "400"))
# Drift audits (issue 12; definitions in docs/algorithms.md): the default of each threshold, set by the
# environment variable DRIFT_<NAME> (e.g. DRIFT_FDR=0.05); each audit may override any of them (the form
# on /drift/, "thresholds" in POST /api/v1/drift-audits/, the drift_audit command's flags).
DRIFT_THRESHOLDS = {
    name: float(os.environ.get(f"DRIFT_{name.upper()}", default))
    for name, default in (
        ("fdr", "0.01"),  # Benjamini–Hochberg false discovery rate over the per-latent tests
        ("min_abs_log2_ratio", "1.0"),  # a flagged latent's rate at least doubles or halves
        ("min_rate", "0.001"),  # latents rarer than this in both corpora are not tested
        ("pseudocount", "0.5"),  # added to firing counts (twice to token counts) in the log ratio
        ("divergence_threshold", "0.05"),  # Jensen–Shannon divergence of firing (bits)
        ("fve_drop_threshold", "0.10"),  # FVE on the reference − FVE on the corpus
        ("flagged_share_threshold", "0.05"),  # flagged latents / latents tested
        ("l0_distance_threshold", "0.25"),  # total variation between the active-count histograms
    )
}
# A killed worker's job is redelivered and resumes from its checkpoint.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = _flag("CELERY_TASK_ALWAYS_EAGER", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
