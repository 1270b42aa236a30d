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
        )
