"""Real servers on loopback for the tests: an SMTP server (aiosmtpd) and an HTTP receiver."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox:
    """What the SMTP server received, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server on a loopback port that a test can stop and start again."""

    def __init__(self, port: int | None = None) -> None:
        self.port, self.inbox = port or free_port(), Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@contextmanager
def smtp_server(port: int | None = None) -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on 127.0.0.1 for the duration of the block."""
    server = SmtpServer(port)
    server.start()
    try:
        yield server.inbox, server.port
    finally:
        server.stop()


class Received:
    def __init__(self, statuses: list[int] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])  # answered in turn; then 200


@contextmanager
def http_receiver(statuses: list[int] | None = None,
                  path: str = "/sms") -> Iterator[tuple[Received, str]]:
    """An HTTP server recording every POST (headers, and the body: parsed when JSON, else
    bytes); answers `statuses` in turn; yields the URL of `path` on it."""
    received = Received(statuses)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            status = received.statuses.pop(0) if received.statuses else 200
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw
            received.requests.append({"path": self.path, "headers": dict(self.headers),
                                      "body": body, "answered": status})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received, f"http://127.0.0.1:{server.server_address[1]}{path}"
    finally:
        server.shutdown()
        server.server_close()
