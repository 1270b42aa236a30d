"""How a batch's manifest reaches the city office: a folder (default), e-mail, or HTTP POST.

Each transport only sends; workflows.batch decides when, records the outcome on the batch
and, for the transports that put the manifest in the city office's hands, records `deliver`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import smtplib
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import ClassVar, Protocol

from claims.models import Batch
from claims.money import format_fen
from claims.runtime import Runtime
from config.channels import ChannelSettings
from workflows.manifest import TITLE, ManifestFiles

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class TransmissionError(Exception):
    """The manifest could not be sent now; the batch is retried later. No secrets in the text."""


class Transmission(Protocol):
    name: ClassVar[str]
    delivers: ClassVar[bool]  # a successful send records `deliver`: the city office has it

    def send(self, batch: Batch, files: ManifestFiles) -> str:
        """Send the manifest; returns where it went; raises TransmissionError."""
        ...


def resend_key(batch: Batch, files: ManifestFiles) -> str:
    """Batch number and manifest digest: the same manifest sent again carries the same key."""
    return f"{batch.batch_no}.{files.digest()[:32]}"


@dataclass(frozen=True)
class FolderTransmission:
    """Copy the files to a folder (a share the city office reads, or one a clerk carries)."""

    folder: Path
    name: ClassVar[str] = "folder"
    delivers: ClassVar[bool] = False  # the paper materials go with it: a clerk records deliver

    def send(self, batch: Batch, files: ManifestFiles) -> str:
        target = self.folder / batch.batch_no
        try:
            target.mkdir(parents=True, exist_ok=True)
            for path in files.all():
                partial = target / f".{path.name}.part"
                shutil.copyfile(path, partial)
                os.replace(partial, target / path.name)
        except OSError as error:
            raise TransmissionError(f"folder: {type(error).__name__}: {error.strerror}") from None
        return str(target)


def manifest_message(batch: Batch, files: ManifestFiles, *, sender: str, to: str,
                     county_office: str, city_office: str) -> EmailMessage:
    """The e-mail to the city office: a short summary, the XLSX and the CSV attached."""
    key = resend_key(batch, files)
    domain = sender.rpartition("@")[2] or "mutualaid"
    message = EmailMessage()
    message["Subject"] = f"{TITLE} {batch.batch_no}（{batch.claim_count}件）"
    message["From"] = sender
    message["To"] = to
    # Derived from the batch and the manifest's digest: a resend of the same manifest has
    # the same Message-ID, so the city office's mail system can spot it.
    message["Message-ID"] = f"<{key}@{domain}>"
    message["X-Mutualaid-Batch"] = batch.batch_no
    message.set_content(
        f"{city_office}：\n\n{county_office}报送职工互助保障理赔资料，批次 {batch.batch_no}，"
        f"共 {batch.claim_count} 件，预估互助金合计 {format_fen(batch.total_claimed)} 元。\n"
        f"报送清单见附件（XLSX 与 CSV 内容相同），纸质材料随后送达。\n\n"
        f"清单校验码：{key}\n"
    )
    message.add_attachment(files.xlsx.read_bytes(), maintype="application",
                           subtype=XLSX_TYPE.split("/")[1], filename=files.xlsx.name)
    message.add_attachment(files.csv.read_bytes(), maintype="text", subtype="csv",
                           filename=files.csv.name)
    return message


@dataclass(frozen=True)
class SmtpTransmission:
    """E-mail the manifest to the city office (MUTUALAID_CITY_OFFICE_EMAIL) over SMTP."""

    server: ChannelSettings
    to: str
    city_office: str
    timeout: float
    name: ClassVar[str] = "smtp"
    delivers: ClassVar[bool] = True

    def send(self, batch: Batch, files: ManifestFiles) -> str:
        if not self.server.smtp_host:
            raise TransmissionError("smtp: MUTUALAID_SMTP_HOST is not set")
        if not self.to:
            raise TransmissionError("smtp: MUTUALAID_CITY_OFFICE_EMAIL is not set")
        message = manifest_message(batch, files, sender=self.server.smtp_from, to=self.to,
                                   county_office=self.server.county_office,
                                   city_office=self.city_office)
        try:
            with smtplib.SMTP(self.server.smtp_host, self.server.smtp_port,
                              timeout=self.timeout) as smtp:
                if self.server.smtp_starttls:
                    smtp.starttls()
                if self.server.smtp_username:
                    smtp.login(self.server.smtp_username, self.server.smtp_password)
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            raise TransmissionError(f"smtp: {type(error).__name__}: {error}"[:300]) from None
        return self.to


def multipart_body(fields: dict[str, str],
                   files: list[tuple[str, Path, str]]) -> tuple[bytes, str]:
    """multipart/form-data: text fields, then (field name, path, content type) files."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
                     f"Content-Type: application/json; charset=utf-8\r\n\r\n".encode()
                     + value.encode() + b"\r\n")
    for name, path, content_type in files:
        quoted = urllib.parse.quote(path.name)
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f"filename=\"{quoted}\"; filename*=UTF-8''{quoted}\r\n"
                     f"Content-Type: {content_type}\r\n\r\n".encode()
                     + path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@dataclass(frozen=True)
class HttpTransmission:
    """POST the manifest (multipart: metadata, xlsx, csv) to the city office's endpoint."""

    url: str
    token: str
    timeout: float
    name: ClassVar[str] = "http"
    delivers: ClassVar[bool] = True

    def send(self, batch: Batch, files: ManifestFiles) -> str:
        if not self.url:
            raise TransmissionError("http: MUTUALAID_TRANSMISSION_URL is not set")
        key = resend_key(batch, files)
        metadata = json.dumps({"batch_no": batch.batch_no, "week": batch.week,
                               "claim_count": batch.claim_count,
                               "total_claimed": format_fen(batch.total_claimed),
                               "digest": files.digest()}, ensure_ascii=False)
        body, content_type = multipart_body(
            {"metadata": metadata}, [("xlsx", files.xlsx, XLSX_TYPE),
                                     ("csv", files.csv, "text/csv; charset=utf-8")])
        headers = {"Content-Type": content_type, "Idempotency-Key": key}
        url = urllib.parse.urlsplit(self.url)
        if url.username is not None:  # user:password@host in the URL: basic authentication
            credentials = f"{urllib.parse.unquote(url.username)}:"
            credentials += urllib.parse.unquote(url.password or "")
            headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
            url = url._replace(netloc=url.netloc.rpartition("@")[2])
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(urllib.parse.urlunsplit(url), data=body,
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            raise TransmissionError(f"http: the city office answered {error.code}") from None
        except urllib.error.URLError as error:
            reason = error.reason
            detail = type(reason).__name__ if isinstance(reason, BaseException) else "URLError"
            raise TransmissionError(f"http: {detail}: {reason}"[:300]) from None
        except OSError as error:  # timeouts and resets while reading the answer
            raise TransmissionError(f"http: {type(error).__name__}: {error}"[:300]) from None
        if not 200 <= status < 300:
            raise TransmissionError(f"http: the city office answered {status}")
        return url.hostname or ""


def transmission_for(runtime: Runtime) -> Transmission:
    """The transport MUTUALAID_TRANSMISSION names: folder (default), smtp or http."""
    settings = runtime.settings
    if settings.transmission == "smtp":
        return SmtpTransmission(server=ChannelSettings.from_env(), to=settings.city_office_email,
                                city_office=settings.city_office,
                                timeout=settings.transmission_timeout)
    if settings.transmission == "http":
        return HttpTransmission(url=settings.transmission_url, token=settings.transmission_token,
                                timeout=settings.transmission_timeout)
    folder = settings.transmission_folder or settings.instance_path / "outbox" / "city"
    return FolderTransmission(folder=folder)
