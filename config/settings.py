"""Settings from MUTUALAID_* environment variables, with defaults for a county office PC."""

from __future__ import annotations

import errno
import logging
import math
import os
import re
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

PREFIX = "MUTUALAID_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A MUTUALAID_* setting that cannot work: the message names it, its value and what fits."""

    def __init__(self, variable: str, value: str | None, expected: str) -> None:
        self.variable, self.value, self.expected = variable, value, expected
        if value is None:
            message = f"{variable} is not set: {expected}"
        else:
            message = f"{variable}={value!r} is not {expected}"
        super().__init__(message)


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(PREFIX + name, default)


def _given(name: str) -> str | None:
    """The variable's value, None when unset or empty (both mean the default)."""
    value = os.environ.get(PREFIX + name, "").strip()
    return value or None


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def env_flag(name: str, default: bool = False, *, true_words: tuple[str, ...] = TRUE_WORDS,
             false_words: tuple[str, ...] = FALSE_WORDS) -> bool:
    """A yes/no variable; a word that is neither is refused rather than read as no."""
    value = os.environ.get(PREFIX + name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in true_words:
        return True
    if word in false_words or not word:  # set but empty has always meant no
        return False
    words = f"{', '.join(true_words)} / {', '.join(false_words)}"
    raise ConfigError(PREFIX + name, value, f"yes or no ({words})")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None,
            empty_is_default: bool = True) -> int:
    """A whole number within [minimum, maximum]."""
    value = _given(name) if empty_is_default else os.environ.get(PREFIX + name)
    if value is None:
        return default
    within = f"at least {minimum}" if maximum is None else f"{minimum} to {maximum}"
    expected = f"a whole number ({within}, e.g. {default})"
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(PREFIX + name, value, expected) from None
    if number < minimum or (maximum is not None and number > maximum):
        raise ConfigError(PREFIX + name, value, expected)
    return number


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds, fractions allowed."""
    value = _given(name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(PREFIX + name, value, f"a number of seconds above 0 (e.g. {default:g})")
    return seconds


def env_money(name: str, default: str) -> int:
    """An amount in yuan as written ("5000.00"), in fen; never rounded."""
    from claims.money import MoneyError, yuan_to_fen

    value = _given(name) or default
    try:
        return yuan_to_fen(value)
    except MoneyError:
        raise ConfigError(PREFIX + name, value, "an amount in yuan with at most two decimal "
                          f"places (e.g. {default})") from None


def env_choice(name: str, choices: tuple[str, ...]) -> str:
    """The variable's value, one of `choices` (the first is the default)."""
    value = (_given(name) or choices[0]).lower()
    if value not in choices:
        raise ConfigError(PREFIX + name, value, f"one of {', '.join(choices)}")
    return value


def env_time_zone(name: str, default: str) -> str:
    """An IANA time zone name."""
    value = _given(name) or default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(PREFIX + name, value, f"a time zone (e.g. {default})") from None
    return value


def env_file(name: str, what: str) -> str | None:
    """The path of an existing file, as given (None: the default file beside the code)."""
    value = _given(name)
    if value is not None and not Path(value).is_file():
        raise ConfigError(PREFIX + name, value, f"an existing file ({what})")
    return value


def env_log_level(name: str, default: str) -> str:
    """A level name the logging module knows (DEBUG, INFO, WARNING, ...)."""
    value = (_given(name) or default).upper()
    if value not in logging.getLevelNamesMapping():
        raise ConfigError(PREFIX + name, value,
                          "a log level (DEBUG, INFO, WARNING, ERROR or CRITICAL)")
    return value


def env_url(name: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """A URL with one of `schemes` and a host, or empty."""
    value = _given(name) or ""
    parts = urlsplit(value)
    if value and (parts.scheme not in schemes or not parts.hostname):
        raise ConfigError(PREFIX + name, _without_password(value),
                          f"a URL starting {' or '.join(s + '://' for s in schemes)}")
    return value


def _without_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def database_url_for_display(url: str) -> str:
    """The database URL with its password hidden, for errors and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return _without_password(url)


# The driver this service installs (psycopg 3): postgres:// and postgresql:// (libpq's and
# many hosts' spelling, which backup.sh takes too) mean it, not SQLAlchemy's default psycopg2.
_POSTGRES_SCHEMES = re.compile(r"^(postgres|postgresql)://")


def _database_url(instance: Path) -> str:
    value = _given("DATABASE_URL") or f"sqlite:///{instance / 'mutualaid.db'}"
    value = _POSTGRES_SCHEMES.sub("postgresql+psycopg://", value)
    authority = value.partition("://")[2].partition("/")[0]
    if authority.count("@") > 1:  # read as user:pa + host ss@db, showing half the password
        raise ConfigError(PREFIX + "DATABASE_URL",
                          value.split("://")[0] + "://***@" + authority.rpartition("@")[2],
                          "a database URL with an @ in the password written as %40")
    try:
        # The driver too: an URL naming one that is not installed fails here, not at first use.
        sa.engine.make_url(value).get_dialect().import_dbapi()
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError):
        raise ConfigError(PREFIX + "DATABASE_URL", database_url_for_display(value),
                          "a database URL (e.g. postgresql+psycopg://user:password@host/db "
                          "or sqlite:////var/lib/mutualaid/mutualaid.db)") from None
    return value


def check_scheduler_timing(lease_seconds: float, heartbeat_seconds: float) -> None:
    """A lease shorter than two heartbeats would pass from a live scheduler to a standby."""
    if lease_seconds < 2 * heartbeat_seconds:
        raise ConfigError(PREFIX + "SCHEDULER_LEASE_SECONDS", f"{lease_seconds:g}",
                          f"at least twice MUTUALAID_SCHEDULER_HEARTBEAT_SECONDS "
                          f"({heartbeat_seconds:g})")


def file_error(name: str, default: Path, what: str, error: Exception) -> ConfigError:
    """The loader's error about the file MUTUALAID_<name> names, as a ConfigError naming it."""
    shown = _given(name) or str(default)
    detail = str(error)
    for path in {shown, str(Path(shown)), str(Path(shown).resolve())}:
        detail = detail.removeprefix(f"{path}: ")  # the loaders' messages start with the path
    return ConfigError(PREFIX + name, shown, f"{what}: {detail}")


TRANSMISSIONS = ("folder", "smtp", "http")
LOG_FORMATS = ("json", "text")
# Read where they are used (workflows.reminders), checked here at start with the rest.
REMINDER_DAYS = {"REMIND_UNCOLLECTED_DAYS": (14, 1), "CHASE_MATERIALS_DAYS": (30, 1),
                 "OVERDUE_BATCH_DAYS": (30, 0)}


def _path(value: str | None) -> Path | None:
    return Path(value).resolve() if value else None


def default_instance_path() -> Path:
    """instance/ in a source checkout, else Flask's convention for installed apps."""
    if (PROJECT_ROOT / "pyproject.toml").exists():
        return PROJECT_ROOT / "instance"
    return Path(sys.prefix) / "var" / "mutualaid-instance"


SECRET_KEY_MIN = 32


def _secret_key() -> str | None:
    """MUTUALAID_SECRET_KEY when set: long enough that nobody guesses it and signs a session."""
    key = _env("SECRET_KEY")
    if key and len(key) < SECRET_KEY_MIN:
        # The value is a secret: the message gives its length, never the key.
        raise ConfigError(PREFIX + "SECRET_KEY", f"<{len(key)} characters>",
                          f"a random key of at least {SECRET_KEY_MIN} characters (e.g. from "
                          "python3 -c 'import secrets; print(secrets.token_urlsafe(48))')")
    return key


def _instance_secret(instance: Path) -> str:
    """A per-install secret kept in the instance folder: never a default shared by installs."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@dataclass
class Settings:
    instance_path: Path
    database_url: str
    secret_key: str
    timezone: str = "Asia/Shanghai"
    products_file: str | None = None
    token_ttl_seconds: int = 8 * 3600
    # A console sign-in lasts a working day, and ends at once on signing out.
    console_session_hours: int = 12
    # Behind HTTPS: the console's cookie is sent over HTTPS only.
    secure_cookies: bool = False
    onsite_threshold_fen: int = 500_000
    embed_scheduler: bool = False
    log_level: str = "INFO"
    # The scheduler (SPEC §4): schedules file, leader lease, missed-run grace, /readyz.
    schedules_file: str | None = None
    scheduler_heartbeat_seconds: float = 5.0
    scheduler_lease_seconds: float = 30.0
    misfire_grace_seconds: int = 7 * 24 * 3600
    readyz_require_scheduler: bool = True
    # Where and when workers collect their payout (the payout notices say it).
    collection_place: str = "县总工会互助保障代办点"
    collection_hours: str = "工作日 8:30-11:30, 14:30-17:00"
    # The public status check (SPEC §5): where wrong guesses (and wrong passwords) are
    # counted, and the proxies in front (X-Forwarded-For hops to trust; 0: the peer address
    # is the client). Empty: <instance>/ratelimit.sqlite3, shared by the processes of this
    # host; redis://... for several hosts.
    ratelimit_storage_uri: str = ""
    # Keys in that store start with this: two services (or two counties) sharing one Redis
    # keep their counts apart.
    ratelimit_key_prefix: str = "mutualaid"
    trusted_proxies: int = 0
    # The weekly batch's manifest and its transmission to the city office (SPEC §4).
    manifest_dir: Path | None = None  # None: <instance>/manifests
    transmission: str = "folder"  # folder, smtp or http
    transmission_folder: Path | None = None  # None: <instance>/outbox/city
    transmission_url: str = ""
    transmission_token: str = ""  # sent as a bearer token by the http transmission
    transmission_timeout: float = 20.0
    transmission_backoff_seconds: int = 60
    transmission_backoff_cap_seconds: int = 3600
    city_office: str = "市总工会互助保障代办处"
    city_office_email: str = ""
    # Observability and sign-in (docs/operations.md): log format, /metrics, login lockout.
    log_format: str = "json"  # json (one object a line) or text
    metrics_token: str = ""  # set: GET /metrics needs it as a bearer token
    login_max_failures: int = 5  # wrong passwords for one username before it is locked
    login_lockout_minutes: int = 15
    login_max_failures_per_address: int = 30
    # Coded reasons (config/reasons.toml) and reconciliation (对账): days after approval with
    # no money received, and days after the money arrived with nothing collected, before a
    # claim is flagged.
    reasons_file: str | None = None
    reconcile_unremitted_days: int = 30
    reconcile_uncollected_days: int = 30
    # Days a notice written to the file outbox (a worker's or unit union's notice, a printable
    # one) is kept after it was written: they hold names, amounts and products (a health
    # condition). 0: kept until removed by hand.
    outbox_keep_days: int = 90
    # The county's yearly subsidy (县总工会补贴), in fen: the reports' budget (issue 6).
    subsidy_fen: int = 35_000_000
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls) -> Settings:
        """Read and check MUTUALAID_* variables; the SQLite file and secret default to the
        instance folder. A value that cannot work raises ConfigError naming it."""
        given_instance = _given("INSTANCE_PATH")
        instance = Path(given_instance or default_instance_path()).resolve()
        database_url = _database_url(instance)
        try:
            # Whatever the database: the wrong-guess counts, manifests and file outbox live here.
            instance.mkdir(parents=True, exist_ok=True)
            if not os.access(instance, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            secret_key = _secret_key() or _instance_secret(instance)
        except OSError as error:
            raise ConfigError(PREFIX + "INSTANCE_PATH", given_instance or str(instance),
                              f"a folder this process can write ({error.strerror})") from None
        for name, (days, minimum) in REMINDER_DAYS.items():
            env_int(name, days, minimum=minimum, empty_is_default=False)
        settings = cls(
            instance_path=instance,
            database_url=database_url,
            secret_key=secret_key,
            timezone=env_time_zone("TIMEZONE", "Asia/Shanghai"),
            products_file=env_file("PRODUCTS_FILE", "the product catalogue, TOML"),
            token_ttl_seconds=env_int("TOKEN_TTL_SECONDS", 8 * 3600, minimum=1),
            console_session_hours=env_int("CONSOLE_SESSION_HOURS", 12, minimum=1, maximum=168),
            secure_cookies=env_flag("SECURE_COOKIES"),
            onsite_threshold_fen=env_money("ONSITE_THRESHOLD", "5000.00"),
            embed_scheduler=env_flag("EMBED_SCHEDULER"),
            log_level=env_log_level("LOG_LEVEL", "INFO"),
            collection_place=_env("COLLECTION_PLACE") or cls.collection_place,
            collection_hours=_env("COLLECTION_HOURS") or cls.collection_hours,
            ratelimit_storage_uri=_env("RATELIMIT_STORAGE_URI") or cls.ratelimit_storage_uri,
            ratelimit_key_prefix=_env("RATELIMIT_KEY_PREFIX") or cls.ratelimit_key_prefix,
            trusted_proxies=env_int("TRUSTED_PROXIES", 0),
            schedules_file=env_file("SCHEDULES_FILE", "the jobs' schedules, TOML"),
            scheduler_heartbeat_seconds=env_seconds("SCHEDULER_HEARTBEAT_SECONDS", 5.0),
            scheduler_lease_seconds=env_seconds("SCHEDULER_LEASE_SECONDS", 30.0),
            misfire_grace_seconds=env_int("MISFIRE_GRACE_SECONDS", 7 * 24 * 3600),
            readyz_require_scheduler=env_flag("READYZ_REQUIRE_SCHEDULER", default=True),
            manifest_dir=_path(_env("MANIFEST_DIR")),
            transmission=env_choice("TRANSMISSION", TRANSMISSIONS),
            transmission_folder=_path(_env("TRANSMISSION_FOLDER")),
            transmission_url=env_url("TRANSMISSION_URL"),
            transmission_token=_env("TRANSMISSION_TOKEN") or "",
            transmission_timeout=env_seconds("TRANSMISSION_TIMEOUT", 20.0),
            transmission_backoff_seconds=env_int("TRANSMISSION_BACKOFF_SECONDS", 60),
            transmission_backoff_cap_seconds=env_int("TRANSMISSION_BACKOFF_CAP_SECONDS", 3600),
            city_office=_env("CITY_OFFICE") or cls.city_office,
            city_office_email=_env("CITY_OFFICE_EMAIL") or "",
            subsidy_fen=env_money("SUBSIDY_YUAN", "350000.00"),
            log_format=env_choice("LOG_FORMAT", LOG_FORMATS),
            metrics_token=_env("METRICS_TOKEN") or "",
            login_max_failures=env_int("LOGIN_MAX_FAILURES", 5, minimum=1),
            login_lockout_minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1),
            login_max_failures_per_address=env_int("LOGIN_MAX_FAILURES_PER_ADDRESS", 30,
                                                   minimum=1),
            reasons_file=env_file("REASONS_FILE", "the reason codes, TOML"),
            reconcile_unremitted_days=env_int("RECONCILE_UNREMITTED_DAYS", 30),
            reconcile_uncollected_days=env_int("RECONCILE_UNCOLLECTED_DAYS", 30),
            outbox_keep_days=env_int("OUTBOX_KEEP_DAYS", 90),
        )
        check_scheduler_timing(settings.scheduler_lease_seconds,
                               settings.scheduler_heartbeat_seconds)
        return settings
