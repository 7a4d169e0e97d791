"""E-mail over SMTP: ``smtp://`` (plain, or STARTTLS with ``?starttls=1``) and ``smtps://``
(TLS from the first byte), with login, multipart text + HTML, and a ``Message-ID`` derived
from the action's idempotency key.

    smtp://user:password@mail.example.com:587?starttls=1&from=ar@example.com
    smtps://user:password@mail.example.com:465?from=AR%20Team%20%3Car@example.com%3E
    smtp://127.0.0.1:8025?from=ar@example.com          # a local relay, no login

One connection is kept open and used for up to ``reuse`` messages (100; ``?reuse=1`` opens
one per message); a connection the server dropped while idle is replaced before the message
is sent, so the drop never causes a repeat.

Failures: a refused connection, a time-out, a 4xx reply are temporary (retried); a 5xx reply
to a recipient is permanent and reported as a bounce of that address; any other 5xx is
permanent. The password never appears in an error, a log line or the audit trail.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

from ..actions import (
    DeliveryError,
    Message,
    PermanentFailure,
    Scrubber,
    TemporaryFailure,
    redact,
    split_userinfo,
)
from ..errors import ArflowError


class SmtpAdapter:
    """Sends e-mail messages through one SMTP server, one connection per delivery."""

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        tls: str = "none",  # none, starttls, ssl
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        reuse: int = 100,
        secrets: Iterable[str | None] = (),
    ) -> None:
        if tls not in ("none", "starttls", "ssl"):
            raise ArflowError(f"smtp: tls must be none, starttls or ssl, not {tls!r}")
        self.host = host
        self.port = port or (465 if tls == "ssl" else 25)
        self.sender = sender
        self.username = username
        self._password = password
        self.tls = tls
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.local_hostname = local_hostname
        self.reuse = max(1, reuse)
        self._smtp: smtplib.SMTP | None = None
        self._used = 0
        self._lock = threading.Lock()
        self.scrub = Scrubber([password, *secrets])
        if password:  # as AUTH PLAIN and AUTH LOGIN send it
            self.scrub.add(f"\0{username or ''}\0{password}")
            self.scrub.add(f"{username or ''}\0{username or ''}\0{password}")

    def __repr__(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"SmtpAdapter({self.tls} {user}{self.host}:{self.port})"

    def build(self, message: Message) -> EmailMessage:
        """The e-mail for ``message``: text, plus HTML as an alternative when there is one."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = ", ".join(message.to)
        if message.cc:
            mail["Cc"] = ", ".join(message.cc)
        mail["Subject"] = message.subject or ""
        mail["Message-ID"] = message.message_id
        mail["Date"] = formatdate(localtime=False)
        mail["X-Arflow-Key"] = message.key
        if message.priority in ("high", "urgent"):
            mail["X-Priority"] = "1"
        mail.set_content(message.text or "")
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        return mail

    def deliver(self, message: Message) -> str | None:
        try:
            return self._deliver(message)
        except DeliveryError as exc:
            raise type(exc)(
                self.scrub(str(exc)), feedback=exc.feedback, address=exc.address
            ) from None

    def _deliver(self, message: Message) -> str | None:
        if message.channel != "email":
            raise PermanentFailure(f"smtp: cannot deliver a {message.channel} message")
        if not message.to:
            raise PermanentFailure("smtp: the message has no recipient", feedback="invalid")
        mail = self.build(message)
        where = f"{self.host}:{self.port}"
        try:
            with self._lock:
                refused = self._send(mail, [*message.to, *message.cc])
        except smtplib.SMTPRecipientsRefused as exc:
            return self._refused(exc.recipients, where)
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentFailure(f"smtp {where}: login refused ({exc.smtp_code})") from None
        except smtplib.SMTPResponseException as exc:
            text = _text(exc.smtp_error)
            if 400 <= exc.smtp_code < 500:
                raise TemporaryFailure(f"smtp {where}: {exc.smtp_code} {text}") from None
            raise PermanentFailure(f"smtp {where}: {exc.smtp_code} {text}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"smtp {where}: {type(exc).__name__}: {exc}") from None
        if refused:
            # some recipients took it: it is delivered; report the others as bounces
            bad = ", ".join(sorted(refused))
            return f"{message.message_id} (refused: {bad})"
        return message.message_id

    def _send(self, mail: EmailMessage, to: list[str]) -> dict[str, tuple[int, bytes]]:
        """Send on the open connection (a new one every ``reuse`` messages). A connection
        found dead before the message went out is replaced once; any error closes it."""
        for fresh in (False, True):
            if self._smtp is None or self._used >= self.reuse:
                self.close()
                self._smtp = self._open()
                fresh = True
            smtp = self._smtp
            try:
                smtp.rset() if self._used else None
                refused = smtp.send_message(mail, to_addrs=to)
            except smtplib.SMTPServerDisconnected:
                self.close()
                if fresh:
                    raise
                continue  # the server dropped an idle connection: once more on a new one
            except BaseException:
                self.close()
                raise
            self._used += 1
            if self.reuse <= 1:
                self.close()
            return dict(refused)
        raise smtplib.SMTPServerDisconnected("connection lost")  # pragma: no cover

    def _open(self) -> smtplib.SMTP:
        smtp = self._connect()
        try:
            if self.tls == "starttls":
                smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self._password or "")
        except BaseException:
            with contextlib.suppress(Exception):
                smtp.close()
            raise
        self._used = 0
        return smtp

    def close(self) -> None:
        """Close the kept connection (the next delivery opens a new one)."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with contextlib.suppress(Exception):
                smtp.quit()
            with contextlib.suppress(Exception):
                smtp.close()

    def _refused(self, recipients: dict[str, tuple[int, bytes]], where: str) -> str:
        addr, (code, text) = sorted(recipients.items())[0]
        if 400 <= code < 500:
            raise TemporaryFailure(f"smtp {where}: {addr} deferred: {code} {_text(text)}")
        raise PermanentFailure(
            f"smtp {where}: {addr} refused: {code} {_text(text)}",
            feedback="bounced",
            address=addr,
        )

    def _connect(self) -> smtplib.SMTP:
        if self.tls == "ssl":
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                timeout=self.timeout,
                context=self.ssl_context or ssl.create_default_context(),
                local_hostname=self.local_hostname,
            )
        return smtplib.SMTP(
            self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname
        )


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def from_url(url: str, query: dict[str, str]) -> SmtpAdapter:
    clean, user, password = split_userinfo(url)
    parts = urlsplit(clean)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host:
        raise ArflowError(f"smtp: no host (or a bad port) in {redact(url)!r}")
    sender = query.get("from")
    if not sender:
        raise ArflowError(f"smtp: say who sends, e.g. ?from=ar@example.com, in {redact(url)!r}")
    tls = (
        "ssl"
        if parts.scheme == "smtps"
        else ("starttls" if query.get("starttls") in ("1", "true", "yes") else "none")
    )
    try:
        timeout = float(query.get("timeout", 30))
        reuse = int(query.get("reuse", 100))
    except ValueError:
        raise ArflowError(f"smtp: ?timeout= and ?reuse= are numbers, in {redact(url)!r}") from None
    return SmtpAdapter(
        host,
        port,
        sender=sender,
        username=unquote(user) if user else None,
        password=unquote(password) if password else None,
        tls=tls,
        timeout=timeout,
        reuse=reuse,
        secrets=[password],
    )
