"""Settings of the Xiaolan low-carbon platform, configured by environment variables.

LOWCARBON_DATABASE_URL   postgresql://user:pass@host:5432/db (else an SQLite file under ./var)
LOWCARBON_SECRET_KEY     secret key (a development key is used, with a warning, when DEBUG is on)
LOWCARBON_DEBUG          "1" to turn debug on (off by default)
LOWCARBON_ALLOWED_HOSTS  comma-separated host names
LOWCARBON_VAR_DIR        where the SQLite file, uploads and collected static files live (default ./var)
LOWCARBON_FIELD_KEY      key protecting ID-card numbers at rest (defaults to one derived from the secret key)
LOWCARBON_HTTPS          "1" when served over HTTPS: secure cookies, redirect to HTTPS, HSTS
LOWCARBON_HSTS_SECONDS   HSTS max-age with LOWCARBON_HTTPS (default one year; 0 turns HSTS off)
LOWCARBON_TRUST_PROXY    "1" behind a proxy that sets X-Forwarded-Proto (nginx)
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LOWCARBON_VAR_DIR", Path.cwd() / "var")).resolve()

DEBUG = os.environ.get("LOWCARBON_DEBUG", "") in ("1", "true", "yes", "on")
SECRET_KEY = os.environ.get("LOWCARBON_SECRET_KEY", "")
if not SECRET_KEY:
    # A per-installation key kept beside the database, so sessions survive restarts without a typed-in secret.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        import secrets

        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()
FIELD_KEY = os.environ.get("LOWCARBON_FIELD_KEY", "")

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("LOWCARBON_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("LOWCARBON_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "lowcarbon.core",
    "lowcarbon.accounts",
    "lowcarbon.metering",
    "lowcarbon.pv",
    "lowcarbon.methodology",
    "lowcarbon.registry",
    "lowcarbon.finance",
    "lowcarbon.info",
    "lowcarbon.market",
    "lowcarbon.dashboard",
    "lowcarbon.ops",
    "lowcarbon.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "lowcarbon.core.middleware.RejectNulCharactersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "lowcarbon.accounts.audit.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "lowcarbon.config.urls"
WSGI_APPLICATION = "lowcarbon.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "lowcarbon.web.context.navigation",
            ],
        },
    }
]

_db_url = os.environ.get("LOWCARBON_DATABASE_URL", "")
if _db_url:
    DATABASES = {"default": dj_database_url.parse(_db_url, conn_max_age=60)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "lowcarbon.sqlite3"),
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
            },
        }
    }
_test_db_url = os.environ.get("LOWCARBON_TEST_DATABASE_URL_ACTIVE", "")
if _test_db_url:  # set by the test runner when it runs the suite on PostgreSQL
    DATABASES = {"default": dj_database_url.parse(_test_db_url)}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# log-in attempts are rate-limited per user name and address (accounts.throttle); every log-in is audited
AUTHENTICATION_BACKENDS = ["lowcarbon.accounts.throttle.RateLimitedModelBackend"]
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # shared by the server's worker processes (the log-in failure counts)
    "auth": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "cache" / "auth"),
    },
}
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # content-hashed names cached for ever, gzip/brotli copies (lowcarbon.ops.storage)
    "staticfiles": {"BACKEND": "lowcarbon.ops.storage.StaticStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = [
    *("jpg", "jpeg", "png", "gif", "webp", "zip", "gz", "tgz", "bz2", "tbz", "xz", "br", "swf", "flv"),
    *("woff", "woff2", "3gp", "3gpp", "asf", "avi", "m4v", "mov", "mp4", "mpeg", "mpg", "webm", "wmv", "map"),
]

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = int(os.environ.get("LOWCARBON_SESSION_SECONDS", str(8 * 3600)))  # one working day
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if os.environ.get("LOWCARBON_HTTPS", "") in ("1", "true"):
    # served over HTTPS (directly or behind a TLS-terminating proxy): secure cookies, redirect, HSTS
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = os.environ.get("LOWCARBON_SSL_REDIRECT", "1") in ("1", "true")
    SECURE_HSTS_SECONDS = 0 if DEBUG else int(os.environ.get("LOWCARBON_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = os.environ.get("LOWCARBON_HSTS_INCLUDE_SUBDOMAINS", "1") in ("1", "true")
    SECURE_HSTS_PRELOAD = os.environ.get("LOWCARBON_HSTS_PRELOAD", "") in ("1", "true")
if os.environ.get("LOWCARBON_TRUST_PROXY", "") in ("1", "true"):
    # behind nginx that sets X-Forwarded-Proto: requests it received over HTTPS count as secure
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "lowcarbon.core.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Xiaolan low-carbon platform API",
    "DESCRIPTION": "小榄镇低碳综合服务平台 REST API (v1)",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ApplicationStateEnum": "lowcarbon.registry.models.Application.State",
        "ApplicationKindEnum": "lowcarbon.registry.models.Application.Kind",
        "SerialBlockStateEnum": "lowcarbon.registry.models.SerialBlock.State",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOWCARBON_LOG_LEVEL", "WARNING")},
}

# Verbose names shown in the admin site header
ADMIN_SITE_HEADER = _("Xiaolan low-carbon platform back office")

# Ingest tuning: rows per chunk (one transaction each); unset or 0: the database's default
# (metering.services.DEFAULT_CHUNK: 20,000 on PostgreSQL, 5,000 on SQLite)
LOWCARBON_INGEST_CHUNK = int(os.environ.get("LOWCARBON_INGEST_CHUNK", "0")) or None

# Absolute address of the public site, used in certificates generated outside a web request (QR codes)
LOWCARBON_PUBLIC_BASE_URL = os.environ.get("LOWCARBON_PUBLIC_BASE_URL", "")
