"""A real SMTP server for tests (aiosmtpd in a thread): records what it accepts, can refuse
the first N messages with a 4xx, refuse recipients with a 5xx, speak STARTTLS or implicit TLS
and require a login."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class Recorder:
    """The handler: keeps every accepted message; ``defer_first`` answers 451 to that many
    DATA commands first; ``reject`` holds addresses answered with 550."""

    defer_first: int = 0
    reject: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    deferred: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.reject:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.deferred < self.defer_first:
                self.deferred += 1
                return "451 4.3.0 try again later"
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), msg)  # type: ignore[arg-type]
            )
        return "250 OK queued"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(r.message["Message-ID"]) for r in self.received]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1, made with the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class Server:
    """An aiosmtpd server on a free local port, started and stopped by the caller."""

    def __init__(
        self,
        handler: Recorder | None = None,
        *,
        port: int | None = None,
        tls: str = "none",  # none, starttls, ssl
        cert: tuple[Path, Path] | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.handler = handler or Recorder()
        self.port = port or free_port()
        kw: dict[str, Any] = {}
        if tls != "none":
            assert cert is not None
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
            if tls == "ssl":
                kw["ssl_context"] = ctx
            else:
                kw["tls_context"] = ctx
                kw["require_starttls"] = True
        if login is not None:

            def check(
                server: Any, session: Any, envelope: Any, mechanism: str, data: Any
            ) -> AuthResult:
                ok = (
                    isinstance(data, LoginPassword)
                    and (
                        data.login.decode(),
                        data.password.decode(),
                    )
                    == login
                )
                return AuthResult(success=ok, handled=False)

            kw["authenticator"] = check
            kw["auth_required"] = True
            kw["auth_require_tls"] = tls != "none"
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kw)

    def start(self) -> Server:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
