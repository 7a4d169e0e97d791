"""A dunning day against a real SMTP server: start a local SMTP server (aiosmtpd), load a
small book, run the default rules for a day, deliver the outbox over SMTP, and print what the
server received.

    pip install arflow aiosmtpd
    python examples/dunning_day_smtp.py [sqlite:///book.db]

In production the server is your mail relay: ``arflow dispatch --email
"smtp://user:pass@mail.example.com:587?starttls=1&from=ar@example.com"``.
"""

from __future__ import annotations

import email
import email.policy
import socket
import sys
from datetime import UTC, date, datetime
from typing import Any

from arflow import (
    Contact,
    CreditProfile,
    Customer,
    CustomerRegistered,
    Dispatcher,
    Engine,
    Ledger,
    Money,
    adapter_from_url,
    ledger_feedback,
)
from arflow.rules import default_pack_path
from arflow.testing import BookBuilder

try:
    from aiosmtpd.controller import Controller
except ImportError:  # pragma: no cover
    sys.exit("this example needs aiosmtpd: pip install aiosmtpd")


class Mailbox:
    """Keeps what the SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(db: str) -> None:
    mailbox = Mailbox()
    port = free_port()
    server = Controller(mailbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        b = BookBuilder(Ledger(db).store)
        for cid, name, addr, locale in (
            ("C1", "华东精密机械有限公司", "ap@huadong.example.cn", "zh_CN"),
            ("C2", "Northwind Trading Ltd", "payables@northwind.example", "en"),
        ):
            b.apply(
                CustomerRegistered(
                    event_id=f"reg-{cid}",
                    occurred_at=datetime(2026, 1, 5, tzinfo=UTC),
                    actor="example",
                    customer=Customer(
                        id=cid,
                        name=name,
                        salesperson="li.wei@example.com",
                        contacts=[Contact(name="AP", email=addr, locale=locale)],
                        credit=CreditProfile(
                            grade="B", credit_limit=Money.of(500_000, "CNY"), payment_terms_days=30
                        ),
                    ),
                )
            )
        b.invoice("INV-101", "C1", 12_500, issued="2026-02-01", due="2026-03-02")
        b.invoice("INV-102", "C1", 8_000, issued="2026-02-01", due="2026-03-02")
        b.invoice("INV-201", "C2", 4_300, issued="2026-02-01", due="2026-03-02")

        engine = Engine(b.ledger, default_pack_path())
        result = engine.run(date(2026, 3, 2), first_run=True)
        print(f"run 2026-03-02: {result.recorded} decisions")
        stats = Dispatcher(
            b.ledger.store,
            {"email": adapter_from_url(f"smtp://127.0.0.1:{port}?from=ar@example.com")},
            channels=["email"],
            clock=lambda: datetime(2026, 3, 2, 10, tzinfo=UTC),
            on_feedback=ledger_feedback(b.ledger),  # a bounce marks the contact in the book
        ).run()
        print(f"dispatched: {stats.sent} sent, {stats.retried} to retry, {stats.dead} dead")
        for m in sorted(mailbox.messages, key=lambda m: str(m["To"])):
            print(f"--- to {m['To']}: {m['Subject']}")
            body = m.get_body(("plain",))
            print(body.get_content().strip() if body is not None else "")
        again = engine.run(date(2026, 3, 2))
        print(f"run 2026-03-02 again: {again.recorded} decisions, nothing queued twice")
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "memory://")
