"""How a message leaves: a file in the outbox, a printable notice, e-mail, or an SMS gateway."""

from __future__ import annotations

import html
import json
import os
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from config.channels import ChannelSettings


class ChannelError(Exception):
    """The channel could not deliver now; the message is retried later."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    params: dict[str, str]  # the values an SMS template fills in


# A notice names a worker, an amount and a product: readable by the service's user and group
# (the county's staff who print them), nobody else on the host.
NOTICE_MODE = 0o640
# The folders of the file outbox holding notices (outbox/<recipient kind>/, and print/ in
# each); outbox/city holds transmitted manifests, kept as the record of what was sent.
NOTICE_FOLDERS = ("unit", "worker")


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".part")
    partial.write_text(text, encoding="utf-8")
    os.chmod(partial, NOTICE_MODE)
    os.replace(partial, path)


def prune_notices(outbox: Path, keep_seconds: float, now: float) -> int:
    """Remove notices written to the file outbox more than `keep_seconds` ago; how many."""
    removed = 0
    for folder in NOTICE_FOLDERS:
        for path in (outbox / folder).rglob("*"):
            if path.suffix in (".txt", ".html") and path.is_file() and (
                    now - path.stat().st_mtime > keep_seconds):
                path.unlink(missing_ok=True)  # another scheduler host may have removed it
                removed += 1
    return removed


def send_file(outbox: Path, name: str, rendered: Rendered) -> str:
    """Write the message as a text file under the outbox; it counts as sent."""
    path = outbox / f"{name}.txt"
    _write_atomically(path, f"Subject: {rendered.subject}\n\n{rendered.body}")
    return str(path)


def send_print(outbox: Path, name: str, rendered: Rendered) -> str:
    """A printable notice (领款通知书 and the like) for a unit union without e-mail."""
    path = outbox / "print" / f"{name}.html"
    page = (
        '<!doctype html><html lang="zh-CN"><meta charset="utf-8">'
        f"<title>{html.escape(rendered.subject)}</title>"
        "<style>body{font-family:serif;max-width:40em;margin:2em auto;line-height:1.8}"
        "pre{white-space:pre-wrap;font-family:inherit}"
        "@media print{body{margin:1cm}}</style>"
        f"<h1>{html.escape(rendered.subject)}</h1><pre>{html.escape(rendered.body)}</pre>"
        "<p>经办人：__________　　日期：__________</p></html>"
    )
    _write_atomically(path, page)
    return str(path)


def send_smtp(settings: ChannelSettings, to: str, rendered: Rendered, key: str) -> str:
    """E-mail over SMTP; the Message-ID carries the outbox key so a resend is recognisable."""
    if not settings.smtp_host:
        raise ChannelError("MUTUALAID_SMTP_HOST is not set")
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Message-ID"] = make_msgid(idstring=key, domain="mutualaid")
    message.set_content(rendered.body)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                          timeout=settings.smtp_timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        raise ChannelError(f"smtp: {type(error).__name__}: {error}"[:300]) from None
    return to


def send_sms(settings: ChannelSettings, phone: str, template: str, rendered: Rendered,
             key: str) -> str:
    """POST to the SMS gateway: the template id from configuration and its parameters."""
    template_id = settings.sms_templates.get(template)
    if not settings.sms_url or not template_id:
        raise ChannelError(f"sms: no gateway URL or template id for {template}")
    body: dict[str, Any] = {"phone": phone, "template_id": template_id,
                            "params": rendered.params, "request_id": key}
    request = urllib.request.Request(
        settings.sms_url, data=json.dumps(body, ensure_ascii=False).encode(), method="POST",
        headers={"Content-Type": "application/json; charset=utf-8",
                 "Authorization": f"Bearer {settings.sms_key}", "Idempotency-Key": key},
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.smtp_timeout) as answer:
            answer.read()
    except urllib.error.HTTPError as error:
        raise ChannelError(f"sms: gateway answered {error.code}") from None
    except OSError as error:
        raise ChannelError(f"sms: {type(error).__name__}") from None
    return phone
