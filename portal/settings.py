"""Tilgang settings: one module, everything read from the environment.

Development is the default (``DJANGO_DEBUG`` unset): an embedded SQLite database, a Celery broker
that needs no server, and secrets generated once into ``var/``. Production sets ``DJANGO_DEBUG=0``
and must then provide every secret; nothing here is production-only code.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.getenv("TILGANG_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.getenv(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)


def env_secret(name: str) -> str:
    """Read NAME, or the file named by NAME_FILE (container secrets).

    In development a missing secret is generated once into ``var/secrets/`` so that restarts and
    the other processes (worker, the local OpenID provider) read the same value. Otherwise a
    missing secret stops the process.
    """
    if path := os.getenv(f"{name}_FILE"):
        return Path(path).read_text().strip()
    if value := os.getenv(name):
        return value
    if not DEBUG:
        raise ImproperlyConfigured(f"{name} (or {name}_FILE) must be set when DJANGO_DEBUG is off")
    secret_file = VAR_DIR / "secrets" / name.lower()
    if not secret_file.exists():
        secret_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # O_EXCL: two processes starting together must not write two different secrets.
        try:
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    return secret_file.read_text().strip()


SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")
PORTAL_URL = os.getenv("PORTAL_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Its form templates, so that templates/django/forms/ can restyle them (FORM_RENDERER).
    "django.forms",
    "django_htmx",
    "mozilla_django_oidc",
    "guardian",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "audit",
    "tenants",
    "notifications",
    "orders",
    "recertification",
    "provisioning",
]

MIDDLEWARE = [
    # First in and last out: it times everything below (portal.metrics).
    "portal.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "portal.security.PermissionsPolicyMiddleware",
    "portal.security.CSPMiddleware",
    "audit.context.RequestIdMiddleware",
    # Pages take GET and POST only: a PUT, PATCH or DELETE is a 405 before anything reads it.
    "portal.page_methods.PageMethodsMiddleware",
    "portal.request_memo.RequestMemoMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A person's pages spend the same budget as their API calls (tenants/throttles.py).
    "tenants.throttles.PageThrottleMiddleware",
    # Before any view, form or query sees them: control characters in the path, the query string
    # or a posted form are a 400 (PostgreSQL text cannot hold NUL). After authentication, so the
    # page that says so is drawn for the person who asked.
    "portal.input_guard.ControlCharacterMiddleware",
    # After authentication and messages: a session past its lifetime is logged out (with a
    # message) before the provider would be asked to renew it.
    "tenants.sessions.SessionLifetimeMiddleware",
    "tenants.sessions.ProviderSessionRefresh",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.navigation.navigation",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
# The embedded default is a SQLite file. WAL lets the web, worker and beat processes read while one
# writes; IMMEDIATE transactions plus a busy timeout make writers queue instead of failing with
# "database is locked".
DATABASES = {
    "default": dj_database_url.parse(
        os.getenv("DATABASE_URL", f"sqlite:///{VAR_DIR / 'tilgang.sqlite3'}"),
        conn_max_age=int(os.getenv("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    # Server-side parameters let psycopg prepare a statement the fifth time a connection runs
    # it: the portal runs the same few dozen statements all day, and planning them again on
    # every request was a third of an order's time (docs/benchmarks.md).
    DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 5}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication: people log in with OpenID Connect ------------------------------------------
AUTHENTICATION_BACKENDS = [
    "tenants.auth.MembershipOIDCBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# Anonymous visitors hold no object permissions; without this guardian creates an AnonymousUser row.
ANONYMOUS_USER_NAME = None  # django-guardian reads this name
LOGIN_URL = "oidc_authentication_init"
# The login speaks the portal's language at the provider (ui_locales).
OIDC_AUTHENTICATE_CLASS = "tenants.auth.LoginRequestView"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

OIDC_OP_ISSUER = os.getenv("OIDC_OP_ISSUER", "http://127.0.0.1:9000").rstrip("/")
# oidc-provider's default routes; other providers set each endpoint explicitly.
OIDC_OP_AUTHORIZATION_ENDPOINT = os.getenv(
    "OIDC_OP_AUTHORIZATION_ENDPOINT", f"{OIDC_OP_ISSUER}/auth"
)
OIDC_OP_TOKEN_ENDPOINT = os.getenv("OIDC_OP_TOKEN_ENDPOINT", f"{OIDC_OP_ISSUER}/token")
OIDC_OP_USER_ENDPOINT = os.getenv("OIDC_OP_USER_ENDPOINT", f"{OIDC_OP_ISSUER}/me")
OIDC_OP_JWKS_ENDPOINT = os.getenv("OIDC_OP_JWKS_ENDPOINT", f"{OIDC_OP_ISSUER}/jwks")
OIDC_OP_END_SESSION_ENDPOINT = os.getenv(
    "OIDC_OP_END_SESSION_ENDPOINT", f"{OIDC_OP_ISSUER}/session/end"
)
OIDC_RP_CLIENT_ID = os.getenv("OIDC_RP_CLIENT_ID", "portal")
OIDC_RP_CLIENT_SECRET = env_secret("OIDC_RP_CLIENT_SECRET")
OIDC_RP_SIGN_ALGO = os.getenv("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = os.getenv("OIDC_RP_SCOPES", "openid email profile")
OIDC_USE_PKCE = True
OIDC_TOKEN_USE_BASIC_AUTH = True  # client_secret_basic, as the provider registers the portal
OIDC_CALLBACK_CLASS = "tenants.auth.LoginCallbackView"
OIDC_STORE_ID_TOKEN = True  # sent back as id_token_hint when logging out at the provider
OIDC_OP_LOGOUT_URL_METHOD = "tenants.auth.provider_logout_url"
# The claim whose value identifies a person and is matched against membership invitations:
# e-mail in development; a production identity provider may offer a more stable identifier.
OIDC_IDENTITY_CLAIM = os.getenv("OIDC_IDENTITY_CLAIM", "email")
# Invitations bind only when this claim is true: the provider has verified the identity.
OIDC_VERIFIED_CLAIM = os.getenv("OIDC_VERIFIED_CLAIM", "email_verified")
OIDC_TIMEOUT = 10
# The local provider's development login page offers the demo people (`manage.py seed_demo`
# writes them here) as one-click choices; it reads the same path.
OIDC_DEMO_PEOPLE_FILE = Path(
    os.getenv("OIDC_DEMO_PEOPLE_FILE")
    or Path(os.getenv("OIDC_VAR_DIR", VAR_DIR / "oidc")) / "demo-people.json"
)

# --- Sessions: an idle and an absolute lifetime, and renewal at the provider (tenants/sessions.py)
TILGANG_SESSION_IDLE_SECONDS = int(os.getenv("TILGANG_SESSION_IDLE_SECONDS", "1800"))
TILGANG_SESSION_MAX_SECONDS = int(os.getenv("TILGANG_SESSION_MAX_SECONDS", "43200"))
SESSION_COOKIE_AGE = TILGANG_SESSION_MAX_SECONDS  # the cookie and the row never outlive it
# A page load after this renews the login at the provider with prompt=none (SessionRefresh).
OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = int(os.getenv("OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS", "900"))

# --- Provisioning: the authorization server (RFC 7591/7592) and the gateway ---------------------
OIDC_OP_REGISTRATION_ENDPOINT = os.getenv("OIDC_OP_REGISTRATION_ENDPOINT", f"{OIDC_OP_ISSUER}/reg")
# The listing of the registrations the portal made (not part of RFC 7591/7592: the local
# provider's GET /registrations), which lets the reconciler remove those the database does not
# know. Empty: the server has none, and such registrations are not looked for.
OIDC_OP_REGISTRATIONS_ENDPOINT = os.getenv(
    "OIDC_OP_REGISTRATIONS_ENDPOINT", f"{OIDC_OP_ISSUER}/registrations"
)
OIDC_INITIAL_ACCESS_TOKEN = env_secret("OIDC_INITIAL_ACCESS_TOKEN")
# Encrypts the registration access tokens the portal keeps.
TILGANG_ENCRYPTION_KEY = env_secret("TILGANG_ENCRYPTION_KEY")
GATEWAY_URL = os.getenv("GATEWAY_URL", "http://127.0.0.1:8080").rstrip("/")
GATEWAY_BIND = os.getenv("GATEWAY_BIND", "127.0.0.1:8080")
GATEWAY_UPSTREAM = os.getenv("GATEWAY_UPSTREAM", "127.0.0.1:9081")
GATEWAY_DIR = Path(os.getenv("GATEWAY_DIR", VAR_DIR / "gateway"))
GATEWAY_AUDIENCE = os.getenv("GATEWAY_AUDIENCE", "http://127.0.0.1:8080")


def env_gateways(name: str) -> list[dict[str, str]]:
    """NAME as a JSON list of gateways, each ``{"name", "dir", "bind", "upstream"}`` (upstream
    optional: GATEWAY_UPSTREAM). Empty: the one gateway of GATEWAY_DIR, GATEWAY_BIND and
    GATEWAY_UPSTREAM (``provisioning.settings.gateway_configs``)."""
    raw = os.getenv(name, "").strip()
    if not raw:
        return []
    try:
        listed = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a JSON list: {exc}") from None
    if not isinstance(listed, list) or not all(
        isinstance(item, dict) and {"name", "dir", "bind"} <= item.keys() for item in listed
    ):
        raise ImproperlyConfigured(f'{name}: a list of {{"name", "dir", "bind", "upstream"}}')
    return [{key: str(value) for key, value in item.items()} for item in listed]


# Production runs several gateways (HAProxy instances), each with its own directory (map files,
# keys, sockets); every change reaches each of them (provisioning.gateway.Gateways).
GATEWAYS = env_gateways("GATEWAYS")
# The gateway's data-access log: HAProxy's stdout, appended to this file by scripts/gateway.sh
# (empty: <GATEWAY_DIR>/access.log) and loaded by `manage.py gateway_log_collect`.
GATEWAY_ACCESS_LOG = os.getenv("GATEWAY_ACCESS_LOG", "")
# How long the collected log is kept (rows older than this are purged daily by beat).
DATA_ACCESS_RETENTION_DAYS = int(os.getenv("DATA_ACCESS_RETENTION_DAYS", "365"))
# How often the collector looks for new lines when it has caught up, in seconds.
DATA_ACCESS_COLLECT_INTERVAL = float(os.getenv("DATA_ACCESS_COLLECT_INTERVAL", "1"))
# Automation clients' tokens for the portal's own API carry this audience.
PORTAL_API_AUDIENCE = os.getenv("PORTAL_API_AUDIENCE", f"{PORTAL_URL}/api/")
PROVISIONING_HTTP_TIMEOUT = (2.0, 5.0)  # connect, read
# A killed worker's job is taken over when its lease ends; the sweeper runs every 2 s, so such a
# job is done within lease + 2 s + the job itself, well inside 30 s.
PROVISIONING_LEASE_SECONDS = int(os.getenv("PROVISIONING_LEASE_SECONDS", "15"))
#: A kind of reconciler heal is told to NHN's operators once per this many seconds (it may recur
#: every run while a gateway keeps drifting); a new kind at once.
RECONCILER_HEAL_NOTIFY_SECONDS = int(os.getenv("RECONCILER_HEAL_NOTIFY_SECONDS", "3600"))
PROVISIONING_MAX_ATTEMPTS = int(os.getenv("PROVISIONING_MAX_ATTEMPTS", "10"))
PROVISIONING_BACKOFF_MAX_SECONDS = 60

# --- Internationalisation: Norwegian bokmål first, English second ---------------------------------
LANGUAGE_CODE = "nb"
LANGUAGES = [("nb", _("Norwegian bokmål")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Oslo"
USE_I18N = True
# Dates as "1. mars 2026" and "1 March 2026"; numbers with the language's thousands separator.
FORMAT_MODULE_PATH = ["portal.formats"]
USE_THOUSAND_SEPARATOR = True
# Forms render as Designsystemet fields: label, description, error beside the field, input.
FORM_RENDERER = "portal.forms.FormRenderer"
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.getenv("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))

# --- Security: strict unless developing on loopback (README, "Hardening") ---------------------
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.getenv("DJANGO_SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", not DEBUG)
# Probes and Prometheus speak plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
if os.getenv("DJANGO_SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
# Lax, not Strict: the provider's redirect back to the login callback is a cross-site
# navigation, and it must carry the session that holds the login's state and PKCE verifier.
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
# Django's defaults, stated: SecurityMiddleware sends them on every response.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# portal.security.PermissionsPolicyMiddleware: no page uses any of these browser features.
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()"
)

# The Content-Security-Policy (django-csp): no inline script or style anywhere, so no nonce and
# no 'unsafe-*'. Forms post to the portal; portal.security.CSPMiddleware adds the provider's
# origin to form-action (logging out is a POST answered with a redirect there). data: images are
# Designsystemet's inline SVG icons in its CSS.
CONTENT_SECURITY_POLICY: dict[str, Any] = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

# API bodies are small (a JWKS is at most 32 KiB); refuse anything far larger before parsing it.
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

# --- Tenancy ------------------------------------------------------------------------------------
# NHN's synthetic test organisations (e.g. 314159265) fail the mod-11 check; test environments
# switch the check off.
TILGANG_STRICT_ORGNR = env_bool("TILGANG_STRICT_ORGNR", True)
# The last year in which NHN recommends that a kommune switching EPJ goes straight for the new
# information services (the vendor webinar of 11 December 2025: they open through 2026). A switch
# in a later year gets one of the VKP paths (``tenants.transition``).
TILGANG_NEW_SERVICES_YEAR = int(os.getenv("TILGANG_NEW_SERVICES_YEAR", "2026"))

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so an unauthenticated call is answered 401 with a Bearer challenge.
        "tenants.auth.AutomationTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON bodies: control characters and deep nesting refused (portal/input_guard.py).
    "DEFAULT_PARSER_CLASSES": [
        "portal.input_guard.GuardedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "portal.api.Pagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "portal.api.exception_handler",
    # Per person and per automation client, reads and writes apart (tenants/throttles.py); a
    # call past its rate is answered 429 with Retry-After. Generous: a person clicking and an
    # integration onboarding hundreds of kommuner a minute stay well inside them.
    "DEFAULT_THROTTLE_CLASSES": [
        "tenants.throttles.PersonThrottle",
        "tenants.throttles.AutomationClientThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "person_read": os.getenv("TILGANG_THROTTLE_PERSON_READ", "1200/min"),
        "person_write": os.getenv("TILGANG_THROTTLE_PERSON_WRITE", "300/min"),
        "client_read": os.getenv("TILGANG_THROTTLE_CLIENT_READ", "6000/min"),
        "client_write": os.getenv("TILGANG_THROTTLE_CLIENT_WRITE", "3000/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tilgang API",
    "DESCRIPTION": "Self-service onboarding to NHN's FHIR information services.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "tenants.models.Role",
        "EnvironmentEnum": "tenants.models.Environment",
        "GrantStatusEnum": "orders.models.GrantStatus",
        "ItemStatusEnum": "orders.models.ItemStatus",
        "AccessEnum": "orders.models.Access",
        "SystemTypeEnum": "tenants.models.Product.SystemType",
    },
}

# --- Celery -------------------------------------------------------------------------------------
# The embedded default is kombu's filesystem transport: real worker processes, no server. It is
# never eager mode, which would hide the asynchronous behaviour the product depends on.
CELERY_BROKER_URL = os.getenv("CELERY_BROKER_URL", "filesystem://")
_celery_dir = VAR_DIR / "celery"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = (
    {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "processed_folder": str(_celery_dir / "processed"),
        # Exchange tables; kombu's default is control/ in the working directory.
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {}
)
CELERY_RESULT_BACKEND = os.getenv("CELERY_RESULT_BACKEND") or (
    CELERY_BROKER_URL
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    else f"file://{_celery_dir / 'results'}"
)
CELERY_TASK_ALWAYS_EAGER = False
# A revocation's gateway close has a queue and a worker of its own (the Procfile's ``closer``):
# on the default queue it waited behind jobs that each hold a process for the authorization
# server's read timeout, and behind the reconciler. Routed by name, so ``send_task`` follows it.
PROVISIONING_GATEWAY_CLOSE_QUEUE = "gateway_close"
# E-mails go out from a worker of their own (the Procfile's ``mailer``): an SMTP server that
# does not answer holds that worker, never the provisioning jobs.
NOTIFICATIONS_QUEUE = "notifications"
CELERY_TASK_ROUTES = {
    "provisioning.gateway_close": {"queue": PROVISIONING_GATEWAY_CLOSE_QUEUE},
    "notifications.email_send": {"queue": NOTIFICATIONS_QUEUE},
}
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Celery's Django fixup closes the database connection before and after every task unless this is
# set (it ignores CONN_MAX_AGE since Celery 5.6): a new connection per job cost 3 ms here and kept
# psycopg from ever preparing a statement. With it set, the fixup only recycles the connection
# every 1,000 tasks; `portal.celery` applies CONN_MAX_AGE and the health check around each task
# the way Django does around each request.
CELERY_DB_REUSE_MAX = 1000
# Readiness probes must answer quickly when the broker is down.
CELERY_BROKER_CONNECTION_TIMEOUT = float(os.getenv("CELERY_BROKER_CONNECTION_TIMEOUT", "2"))

# --- Cache: the API throttles' counts (tenants/throttles.py) ------------------------------------
# Shared by every process: Redis (TILGANG_CACHE_URL; in production, by default, the broker's Redis,
# its keys prefixed). Development and the test suite count in each process's memory.
TILGANG_CACHE_URL = os.getenv("TILGANG_CACHE_URL") or ("" if DEBUG else CELERY_BROKER_URL)
CACHES: dict[str, Any] = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": TILGANG_CACHE_URL,
            "KEY_PREFIX": "tilgang",
        }
        if TILGANG_CACHE_URL.startswith(("redis://", "rediss://"))
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

#: NHN's national overview is read at most this often (seconds) per period, and kept in the cache
#: between (provisioning.overview.national_figures); the page and the API say "as of" when.
TILGANG_OVERVIEW_SECONDS = int(os.getenv("TILGANG_OVERVIEW_SECONDS", "60"))

# --- Notifications: e-mail through Django's mail framework, and the list in the portal --------
# SMTP when EMAIL_HOST is set, and always in production; in development without it, each e-mail
# is a file under var/mail/ (``EMAIL_BACKEND`` chooses any other Django backend, e.g. console).
EMAIL_HOST = os.getenv("EMAIL_HOST", "")
EMAIL_BACKEND = os.getenv("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST or not DEBUG
    else "django.core.mail.backends.filebased.EmailBackend"
)
EMAIL_HOST = EMAIL_HOST or "localhost"
EMAIL_PORT = int(os.getenv("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = (
    Path(path).read_text().strip()
    if (path := os.getenv("EMAIL_HOST_PASSWORD_FILE"))
    else os.getenv("EMAIL_HOST_PASSWORD", "")
)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(os.getenv("EMAIL_TIMEOUT", "10"))
EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "Tilgang <tilgang@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
NOTIFICATIONS_MESSAGE_ID_DOMAIN = os.getenv("NOTIFICATIONS_MESSAGE_ID_DOMAIN", "tilgang.local")
NOTIFICATIONS_EMAIL_MAX_ATTEMPTS = int(os.getenv("NOTIFICATIONS_EMAIL_MAX_ATTEMPTS", "20"))
NOTIFICATIONS_EMAIL_BACKOFF_MAX_SECONDS = int(
    os.getenv("NOTIFICATIONS_EMAIL_BACKOFF_MAX_SECONDS", "1800")
)
# A worker killed while sending lets its e-mails go after this; the sweep sends them again.
NOTIFICATIONS_EMAIL_LEASE_SECONDS = int(os.getenv("NOTIFICATIONS_EMAIL_LEASE_SECONDS", "120"))
NOTIFICATIONS_EMAIL_REQUEUE_SECONDS = int(os.getenv("NOTIFICATIONS_EMAIL_REQUEUE_SECONDS", "60"))

# --- Key age: a client's public key is accepted for this long after it was added -------------
CLIENT_KEY_LIFETIME_DAYS = int(os.getenv("CLIENT_KEY_LIFETIME_DAYS", "365"))
# The vendor's admins are warned this many days before a key reaches its limit, once each.
CLIENT_KEY_WARNING_DAYS = sorted(
    (int(day) for day in env_list("CLIENT_KEY_WARNING_DAYS", "30,7")), reverse=True
)

# --- Recertification: a kommune confirms each vendor's access again every this many months ---
RECERTIFICATION_MONTHS = int(os.getenv("RECERTIFICATION_MONTHS", "12"))
# The kommune's admins are reminded this many days before a vendor's access lapses, once each.
RECERTIFICATION_REMINDER_DAYS = sorted(
    (int(day) for day in env_list("RECERTIFICATION_REMINDER_DAYS", "30,7")), reverse=True
)

# --- Logging: to stderr, one JSON object a line; secrets are never logged -----------------------
# Each line carries the request id (``audit.context``) of the work it belongs to, which the Celery
# signals in ``portal.celery`` carry from the web process into every task it sends, and in a
# worker the task's id and name (``portal.logs``). ``plain`` is the same as text, for a developer's
# terminal (`make run`); JSON is the default once DEBUG is off.
LOG_FORMAT = os.getenv("LOG_FORMAT", "plain" if DEBUG else "json")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "portal.logs.ContextFilter"}},
    "formatters": {
        "json": {"()": "portal.logs.JsonFormatter"},
        "plain": {"()": "portal.logs.PlainFormatter"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["stderr"], "level": os.getenv("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Metrics for Prometheus: GET /metrics with ``Authorization: Bearer <METRICS_TOKEN>`` ---------
# Without a token the endpoint does not exist (404). Read from METRICS_TOKEN or METRICS_TOKEN_FILE.
METRICS_TOKEN = (
    Path(path).read_text().strip()
    if (path := os.getenv("METRICS_TOKEN_FILE"))
    else os.getenv("METRICS_TOKEN", "")
)
# The web and worker processes of one host count requests and gateway pushes in files here
# (prometheus_client's multiprocess mode), so /metrics, served by any web process, adds up every
# process of the host. prometheus_client reads the variable when it is first imported, which is
# after these settings. Empty it when the host's processes all start (`make run` does).
PROMETHEUS_MULTIPROC_DIR = Path(
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus"))
)
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
