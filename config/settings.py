"""Settings from MUTUALAID_* environment variables, with defaults for a county office PC."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

PREFIX = "MUTUALAID_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(PREFIX + name, default)


def _flag(name: str, default: bool = False) -> bool:
    value = _env(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


TRANSMISSIONS = ("folder", "smtp", "http")
LOG_FORMATS = ("json", "text")


def _path(value: str | None) -> Path | None:
    return Path(value).resolve() if value else None


def _choice(name: str, choices: tuple[str, ...]) -> str:
    """The variable's value, one of `choices` (the first is the default); else a clear error."""
    value = (_env(name) or choices[0]).strip().lower()
    if value not in choices:
        raise ValueError(f"{PREFIX}{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def default_instance_path() -> Path:
    """instance/ in a source checkout, else Flask's convention for installed apps."""
    if (PROJECT_ROOT / "pyproject.toml").exists():
        return PROJECT_ROOT / "instance"
    return Path(sys.prefix) / "var" / "mutualaid-instance"


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
    # The county's yearly subsidy (县总工会补贴), in fen: the reports' budget (issue 6).
    subsidy_fen: int = 35_000_000
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls) -> Settings:
        """Read MUTUALAID_* variables; the SQLite file and secret default to the instance folder."""
        instance = Path(_env("INSTANCE_PATH") or default_instance_path()).resolve()
        database_url = _env("DATABASE_URL") or f"sqlite:///{instance / 'mutualaid.db'}"
        if database_url.startswith("sqlite:///"):
            instance.mkdir(parents=True, exist_ok=True)
        from claims.money import yuan_to_fen

        return cls(
            instance_path=instance,
            database_url=database_url,
            secret_key=_env("SECRET_KEY") or _instance_secret(instance),
            timezone=_env("TIMEZONE", "Asia/Shanghai") or "Asia/Shanghai",
            products_file=_env("PRODUCTS_FILE"),
            token_ttl_seconds=int(_env("TOKEN_TTL_SECONDS", str(8 * 3600)) or 28800),
            onsite_threshold_fen=yuan_to_fen(_env("ONSITE_THRESHOLD", "5000.00") or "5000.00"),
            embed_scheduler=_flag("EMBED_SCHEDULER"),
            log_level=(_env("LOG_LEVEL", "INFO") or "INFO").upper(),
            collection_place=_env("COLLECTION_PLACE") or cls.collection_place,
            collection_hours=_env("COLLECTION_HOURS") or cls.collection_hours,
            ratelimit_storage_uri=_env("RATELIMIT_STORAGE_URI") or cls.ratelimit_storage_uri,
            ratelimit_key_prefix=_env("RATELIMIT_KEY_PREFIX") or cls.ratelimit_key_prefix,
            trusted_proxies=int(_env("TRUSTED_PROXIES", "0") or 0),
            schedules_file=_env("SCHEDULES_FILE"),
            scheduler_heartbeat_seconds=float(_env("SCHEDULER_HEARTBEAT_SECONDS", "5") or 5),
            scheduler_lease_seconds=float(_env("SCHEDULER_LEASE_SECONDS", "30") or 30),
            misfire_grace_seconds=int(_env("MISFIRE_GRACE_SECONDS", str(7 * 24 * 3600))
                                      or 7 * 24 * 3600),
            readyz_require_scheduler=_flag("READYZ_REQUIRE_SCHEDULER", default=True),
            manifest_dir=_path(_env("MANIFEST_DIR")),
            transmission=_choice("TRANSMISSION", TRANSMISSIONS),
            transmission_folder=_path(_env("TRANSMISSION_FOLDER")),
            transmission_url=_env("TRANSMISSION_URL") or "",
            transmission_token=_env("TRANSMISSION_TOKEN") or "",
            transmission_timeout=float(_env("TRANSMISSION_TIMEOUT", "20") or 20),
            transmission_backoff_seconds=int(_env("TRANSMISSION_BACKOFF_SECONDS", "60") or 60),
            transmission_backoff_cap_seconds=int(
                _env("TRANSMISSION_BACKOFF_CAP_SECONDS", "3600") or 3600),
            city_office=_env("CITY_OFFICE") or cls.city_office,
            city_office_email=_env("CITY_OFFICE_EMAIL") or "",
            subsidy_fen=yuan_to_fen(_env("SUBSIDY_YUAN", "350000.00") or "350000.00"),
            log_format=_choice("LOG_FORMAT", LOG_FORMATS),
            metrics_token=_env("METRICS_TOKEN") or "",
            login_max_failures=int(_env("LOGIN_MAX_FAILURES", "5") or 5),
            login_lockout_minutes=int(_env("LOGIN_LOCKOUT_MINUTES", "15") or 15),
            login_max_failures_per_address=int(_env("LOGIN_MAX_FAILURES_PER_ADDRESS", "30")
                                               or 30),
            reasons_file=_env("REASONS_FILE"),
            reconcile_unremitted_days=int(_env("RECONCILE_UNREMITTED_DAYS", "30") or 30),
            reconcile_uncollected_days=int(_env("RECONCILE_UNCOLLECTED_DAYS", "30") or 30),
        )
