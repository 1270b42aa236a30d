"""Notification channels (SPEC §4): which channel per recipient kind, and their servers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from config.settings import (
    PREFIX,
    ConfigError,
    Settings,
    env_choice,
    env_flag,
    env_int,
    env_seconds,
    env_url,
)

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
        """Read MUTUALAID_NOTIFY_*, _SMTP_* and _SMS_*; a value that cannot work raises
        ConfigError naming it (read per use, and once at start by check_channels)."""
        return cls(
            unit_channel=env_choice("NOTIFY_UNIT_CHANNEL", UNIT_CHANNELS),
            worker_channel=env_choice("NOTIFY_WORKER_CHANNEL", WORKER_CHANNELS),
            smtp_host=_env("SMTP_HOST"),
            smtp_port=env_int("SMTP_PORT", 25, minimum=1, maximum=65535),
            smtp_username=_env("SMTP_USERNAME"),
            smtp_password=_env("SMTP_PASSWORD"),
            # "on" was never yes here: refused rather than quietly changed.
            smtp_starttls=env_flag("SMTP_STARTTLS", true_words=("1", "true", "yes")),
            smtp_from=_env("SMTP_FROM", "mutualaid@localhost"),
            smtp_timeout=env_seconds("SMTP_TIMEOUT", 10.0),
            sms_url=env_url("SMS_URL"),
            sms_key=_env("SMS_KEY"),
            sms_templates=_templates(_env("SMS_TEMPLATES")),
            max_attempts=env_int("NOTIFY_MAX_ATTEMPTS", 8, minimum=1),
            backoff_seconds=env_int("NOTIFY_BACKOFF_SECONDS", 60),
            backoff_cap_seconds=env_int("NOTIFY_BACKOFF_CAP_SECONDS", 3600),
            county_office=_env("COUNTY_OFFICE", "县总工会互助保障代办点"),
            county_email=_env("COUNTY_EMAIL"),
        )


def check_channels(settings: Settings) -> ChannelSettings:
    """At start: the channel settings read, and each channel in use given its server."""
    channels = ChannelSettings.from_env()
    smtp_users = [name for name, uses in (
        ("MUTUALAID_TRANSMISSION=smtp", settings.transmission == "smtp"),
        ("MUTUALAID_NOTIFY_UNIT_CHANNEL=smtp", channels.unit_channel == "smtp"),
        ("MUTUALAID_COUNTY_EMAIL", bool(channels.county_email))) if uses]
    if smtp_users and not channels.smtp_host:
        raise ConfigError(PREFIX + "SMTP_HOST", None,
                          f"{smtp_users[0]} sends e-mail through the mail server it names")
    if settings.transmission == "smtp" and not settings.city_office_email:
        raise ConfigError(PREFIX + "CITY_OFFICE_EMAIL", None,
                          "MUTUALAID_TRANSMISSION=smtp e-mails the manifest to this address")
    if settings.transmission == "http" and not settings.transmission_url:
        raise ConfigError(PREFIX + "TRANSMISSION_URL", None,
                          "MUTUALAID_TRANSMISSION=http posts the manifest to this URL")
    sms_user = next((f"MUTUALAID_{kind}=sms" for kind, channel in (
        ("NOTIFY_UNIT_CHANNEL", channels.unit_channel),
        ("NOTIFY_WORKER_CHANNEL", channels.worker_channel)) if channel == "sms"), None)
    if sms_user and not channels.sms_url:
        raise ConfigError(PREFIX + "SMS_URL", None,
                          f"{sms_user} sends text messages through the gateway at this URL")
    spec = os.environ.get(PREFIX + "SMS_TEMPLATES", "")
    if sms_user and (not channels.sms_templates
                     or any("=" not in item for item in spec.split(",") if item.strip())):
        raise ConfigError(PREFIX + "SMS_TEMPLATES", spec or None,
                          "the gateway's template id per message, e.g. "
                          "funds_received_worker=SMS_100,remind_uncollected=SMS_101")
    return channels
