"""Notification channels (SPEC §4): which channel per recipient kind, and their servers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

UNIT_CHANNELS = ("file", "smtp", "sms", "print")
WORKER_CHANNELS = ("file", "sms")


def _env(name: str, default: str = "") -> str:
    return os.environ.get("MUTUALAID_" + name, default)


def _templates(spec: str) -> dict[str, str]:
    """'funds_received_worker=SMS_100,remind_uncollected=SMS_101' -> a dict."""
    pairs = (item.split("=", 1) for item in spec.split(",") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


@dataclass(frozen=True)
class ChannelSettings:
    unit_channel: str = "file"
    worker_channel: str = "file"
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_from: str = "mutualaid@localhost"
    smtp_timeout: float = 10.0
    sms_url: str = ""
    sms_key: str = ""
    sms_templates: dict[str, str] = field(default_factory=dict)
    max_attempts: int = 8
    backoff_seconds: int = 60
    backoff_cap_seconds: int = 3600
    county_office: str = "县总工会互助保障代办点"
    county_email: str = ""  # where overdue-batch notices go; none: a file in the outbox

    @classmethod
    def from_env(cls) -> ChannelSettings:
        """Read MUTUALAID_NOTIFY_*, _SMTP_* and _SMS_*; refuse unknown channels."""
        unit = _env("NOTIFY_UNIT_CHANNEL", "file")
        worker = _env("NOTIFY_WORKER_CHANNEL", "file")
        if unit not in UNIT_CHANNELS:
            raise ValueError(f"MUTUALAID_NOTIFY_UNIT_CHANNEL must be one of {UNIT_CHANNELS}")
        if worker not in WORKER_CHANNELS:
            raise ValueError(f"MUTUALAID_NOTIFY_WORKER_CHANNEL must be one of {WORKER_CHANNELS}")
        return cls(
            unit_channel=unit,
            worker_channel=worker,
            smtp_host=_env("SMTP_HOST"),
            smtp_port=int(_env("SMTP_PORT", "25")),
            smtp_username=_env("SMTP_USERNAME"),
            smtp_password=_env("SMTP_PASSWORD"),
            smtp_starttls=_env("SMTP_STARTTLS", "0").lower() in ("1", "true", "yes"),
            smtp_from=_env("SMTP_FROM", "mutualaid@localhost"),
            smtp_timeout=float(_env("SMTP_TIMEOUT", "10")),
            sms_url=_env("SMS_URL"),
            sms_key=_env("SMS_KEY"),
            sms_templates=_templates(_env("SMS_TEMPLATES")),
            max_attempts=int(_env("NOTIFY_MAX_ATTEMPTS", "8")),
            backoff_seconds=int(_env("NOTIFY_BACKOFF_SECONDS", "60")),
            backoff_cap_seconds=int(_env("NOTIFY_BACKOFF_CAP_SECONDS", "3600")),
            county_office=_env("COUNTY_OFFICE", "县总工会互助保障代办点"),
            county_email=_env("COUNTY_EMAIL"),
        )
