"""The one settings module. Everything deployment-specific comes from the environment.

``CCP_ENV`` selects the mode: ``development`` (default), ``test`` or ``production``. In
production a missing secret stops start-up with a message naming the variable.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from ccplatform.env import (
    env_bool,
    env_int,
    env_list,
    env_required,
    env_str,
    parse_switch_nodes,
)

BASE_DIR = Path(__file__).resolve().parent.parent
ENVIRONMENT = env_str("CCP_ENV", "development")
if ENVIRONMENT not in {"development", "test", "production"}:
    from ccplatform.env import ImproperlyConfiguredEnv

    raise ImproperlyConfiguredEnv(
        f"CCP_ENV must be development, test or production, got {ENVIRONMENT!r}."
    )
PRODUCTION = ENVIRONMENT == "production"
DEBUG = env_bool("DEBUG", not PRODUCTION)

# -- secrets -----------------------------------------------------------------------------
if PRODUCTION:
    SECRET_KEY = env_required("SECRET_KEY", why="it signs sessions and password-reset links")
else:
    SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key-do-not-use-in-production")

# Tenant portals live on their own domains; the Domain table is the real allow-list
# (an unknown host gets the 404 page from the tenant middleware), so production may
# set ALLOWED_HOSTS=* and rely on it, or list its domains explicitly.
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", ".localhost", "127.0.0.1", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    from ccplatform.env import ImproperlyConfiguredEnv

    raise ImproperlyConfiguredEnv("ALLOWED_HOSTS must be set in production (comma separated).")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Number of reverse proxies in front of us whose X-Forwarded-For we trust (audit "from where").
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# -- database ----------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
EMBEDDED_DATABASE = DATABASE_URL is None
if PRODUCTION and EMBEDDED_DATABASE:
    from ccplatform.env import ImproperlyConfiguredEnv

    raise ImproperlyConfiguredEnv(
        "DATABASE_URL must be set in production (the embedded PostgreSQL is for demo and tests)."
    )
if EMBEDDED_DATABASE:
    from ccplatform.embedded_db import EmbeddedPostgres, default_data_dir

    EMBEDDED_DATA_DIR = default_data_dir(BASE_DIR)
    DATABASE_URL = EmbeddedPostgres(EMBEDDED_DATA_DIR).start()

_db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))
_db["ENGINE"] = "django_tenants.postgresql_backend"
DATABASES = {"default": _db}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# -- tenancy -----------------------------------------------------------------------------
SHARED_APPS = [
    "django_tenants",
    "daphne",
    "tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "django_htmx",
    "channels",
    "channels_postgres",
    "procrastinate.contrib.django",
    "telephony",
    "routing",
    "billing",
    "agentdesk",  # the agents' realtime console (no models of its own)
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "portal",
    "cdrs",
    "calls",
    "recordings",  # call recordings: metadata, store, playback audit
    "dispositions",  # agents' wrap-up codes and notes
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Client"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
PUBLIC_SCHEMA_URLCONF = "ccplatform.urls_public"
ROOT_URLCONF = "ccplatform.urls_tenant"
SHOW_PUBLIC_IF_NO_TENANT_FOUND = False
DEFAULT_NOT_FOUND_TENANT_VIEW = "tenants.views.unknown_host"
TENANT_LIMIT_SET_CALLS = True

MIDDLEWARE = [
    "tenants.middleware.TenantMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.TenantLocaleMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tenants.middleware.TenantAccessMiddleware",
    "axes.middleware.AxesMiddleware",
]

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
                "tenants.context_processors.platform",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "ccplatform.asgi.application"

# -- accounts ----------------------------------------------------------------------------
AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)
INVITATION_TTL_DAYS = env_int("INVITATION_TTL_DAYS", 7)
# How links in e-mails reach our sites (the host comes from the tenant's domain).
SITE_SCHEME = env_str("SITE_SCHEME", "https" if PRODUCTION else "http")
SITE_PORT = env_int("SITE_PORT", 0 if PRODUCTION else 8000)
# Time zone of the provider console (client sites use their company's own).
PROVIDER_TIME_ZONE = env_str("PROVIDER_TIME_ZONE", "UTC")

# Login throttling (django-axes): lock a username+address pair after repeated failures.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("LOGIN_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT or None

OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Contact Centre Platform")

# -- e-mail --------------------------------------------------------------------------------
EMAIL_URL = env_str("EMAIL_URL")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "platform@localhost")
if EMAIL_URL:
    # smtp://user:password@host:port (STARTTLS with ?tls=1)
    from urllib.parse import parse_qs, unquote, urlsplit

    _mail = urlsplit(EMAIL_URL)
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _mail.hostname or "localhost"
    EMAIL_PORT = _mail.port or 25
    EMAIL_HOST_USER = unquote(_mail.username or "")
    EMAIL_HOST_PASSWORD = unquote(_mail.password or "")
    EMAIL_USE_TLS = parse_qs(_mail.query).get("tls", ["0"])[0] in {"1", "true"}
elif PRODUCTION:
    from ccplatform.env import ImproperlyConfiguredEnv

    raise ImproperlyConfiguredEnv(
        "EMAIL_URL must be set in production (smtp://user:pass@host:port)."
    )
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# -- Stripe --------------------------------------------------------------------------------
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env_str("STRIPE_API_BASE")  # a local Stripe fake in tests
if PRODUCTION:
    STRIPE_SECRET_KEY = env_required("STRIPE_SECRET_KEY", why="invoices are pushed to Stripe")
    STRIPE_WEBHOOK_SECRET = env_required(
        "STRIPE_WEBHOOK_SECRET", why="Stripe webhooks are signature-verified"
    )
# -- Stripe fake for make demo (billing; `manage.py stripe_fake`, billing/stripe_fake.py) ----
# STRIPE_FAKE_PORT points the stripe library at the loopback fake and gives demo-only keys.
STRIPE_FAKE_PORT = env_int("STRIPE_FAKE_PORT", 0)
if STRIPE_FAKE_PORT:
    if PRODUCTION:
        from ccplatform.env import ImproperlyConfiguredEnv

        raise ImproperlyConfiguredEnv("STRIPE_FAKE_PORT is for the demo, never production.")
    STRIPE_API_BASE = f"http://127.0.0.1:{STRIPE_FAKE_PORT}"
    STRIPE_SECRET_KEY = STRIPE_SECRET_KEY or "sk_test_ccp_demo_fake"
    STRIPE_WEBHOOK_SECRET = STRIPE_WEBHOOK_SECRET or "whsec_ccp_demo_fake"
# -- end of the Stripe fake block ----------------------------------------------------------

# -- FreeSWITCH ----------------------------------------------------------------------------
# Bootstrap list of switch nodes; the provider console's node registry is the live source.
FREESWITCH_NODES = parse_switch_nodes(env_str("FREESWITCH_NODES", "") or "")
CDR_MAX_BYTES = env_int("CDR_MAX_BYTES", 1024 * 1024)

# -- channel layer -------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "ccp"},
        }
    }
else:
    # No Redis: a PostgreSQL-backed layer (LISTEN/NOTIFY) still carries messages between
    # processes; see docs/decisions/0003-channel-layer.md.
    # channels_postgres runs some of its queries through the ORM on this alias (same
    # database; its tables live in the public schema). Tests mirror it onto the test database.
    DATABASES["channels_postgres"] = {
        **_db,
        "ENGINE": "django.db.backends.postgresql",
        "TEST": {"MIRROR": "default"},
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_postgres.core.PostgresChannelLayer",
            "CONFIG": {
                **_db,
                "ENGINE": "django.db.backends.postgresql",
                "TIME_ZONE": None,
                "OPTIONS": {},
                "PSYCOPG_OPTIONS": {"min_size": 1, "max_size": 4},
            },
        }
    }

# -- jobs: procrastinate on PostgreSQL, tasks in <app>/tasks.py; see docs/decisions/0004-job-queue.md
PROCRASTINATE_AUTODISCOVER_MODULE_NAME = "tasks"

# -- i18n, time --------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ru", _("Russian")), ("uk", _("Ukrainian"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "ccp_language"
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"

# -- static --------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
RECORDINGS_ROOT = Path(env_str("RECORDINGS_ROOT") or BASE_DIR / "var" / "recordings")  # per tenant
# The switch nodes' recordings folders as this machine sees them (local paths or mounts),
# comma-separated; a periodic job imports from each every minute (recordings/tasks.py).
RECORDINGS_IMPORT_SOURCES = env_list("RECORDINGS_IMPORT_SOURCES", [])
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise expects it even when using finders

# -- security headers ----------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "procrastinate": {"level": "WARNING"},
        # group_send to a wallboard group nobody watches is normal, not a warning.
        "channels_postgres.core": {"level": "ERROR"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
