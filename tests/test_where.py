"""``arflow where`` (issue 14, item 4): an order followed through order to cash, a contract
through its payment nodes, an invoice request through its documents and finance; since
when (the audit trail) and who owns each step. On memory, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from arflow import (
    InvoiceConfirmed,
    InvoiceSent,
    Ledger,
    MilestoneCompleted,
    OrderApprovalRequested,
    OrderApproved,
    OrderShipped,
    OrderSubmitted,
    PaymentReceived,
    SqlStore,
    Store,
    UnknownObject,
    ValidationError,
    Where,
    where,
)
from arflow.cli import main
from arflow.events import DunningStepRecorded
from tests.test_invoice_requests import approve, attach, book, cny, invoice, meta

_n = count()


def when(day: date) -> dict[str, Any]:
    m = meta(day)
    m["event_id"] = f"w{next(_n)}"
    return m


@pytest.fixture
def ledger(store: Store) -> Ledger:
    led = Ledger(store, order_documents={"project": ["delivery_note"]})
    book(led)
    return led


def at(ledger: Ledger, kind: str, oid: str, day: date = date(2026, 3, 20)) -> Where:
    return where(ledger.store, kind, oid, day)


def test_an_order_from_submitted_to_paid(ledger: Ledger) -> None:
    ap = ledger.apply
    ap(
        OrderSubmitted(
            **when(date(2026, 3, 1)),
            order_id="O1",
            customer_id="C1",
            amount=cny(5_000),
            submitted_on=date(2026, 3, 1),
            order_type="project",
        )
    )
    w = at(ledger, "order", "O1")
    assert (w.stage, w.waiting) == ("submitted", ("the credit check at entry",))
    assert w.since == datetime(2026, 3, 1, 9, tzinfo=UTC)

    ap(
        OrderApprovalRequested(
            **when(date(2026, 3, 2)), order_id="O1", roles=("sales_director",), approvers=("S1",)
        )
    )
    w = at(ledger, "order", "O1")
    assert (w.stage, w.owner, w.waiting) == ("credit_check", "S1", ("approval by sales_director",))
    assert w.since == datetime(2026, 3, 2, 9, tzinfo=UTC)

    ap(OrderApproved(**when(date(2026, 3, 3)), order_id="O1", approver="S1"))
    w = at(ledger, "order", "O1")
    assert (w.stage, w.owner) == ("approval", "role:warehouse")

    ap(OrderShipped(**when(date(2026, 3, 4)), order_id="O1", shipped_on=date(2026, 3, 4)))
    w = at(ledger, "order", "O1")
    assert (w.stage, w.subject_kind, w.subject_id) == (
        "invoice_request",
        "invoice_request",
        "IR-O1",
    )
    assert w.waiting == ("document: delivery_note",)
    assert w.kind == "order" and w.id == "O1"

    ap(attach("IR-O1", "delivery_note"))
    w = at(ledger, "order", "O1")
    assert (w.owner, w.waiting) == ("role:finance", ("approval by finance",))
    ap(approve("IR-O1"))
    assert "to be issued" in at(ledger, "order", "O1").waiting[0]

    ap(
        invoice(
            "INV-1", 5_000, order_id="O1", invoice_request_id="IR-O1", due_date=date(2026, 4, 2)
        )
    )
    w = at(ledger, "order", "O1")
    assert (w.stage, w.subject_id, w.waiting) == (
        "invoice_issued",
        "INV-1",
        ("the invoice to be sent",),
    )
    ap(InvoiceSent(**when(date(2026, 3, 5)), receivable_id="INV-1", sent_on=date(2026, 3, 5)))
    assert at(ledger, "invoice", "INV-1").stage == "sent"
    ap(
        InvoiceConfirmed(
            **when(date(2026, 3, 6)), receivable_id="INV-1", confirmed_on=date(2026, 3, 6)
        )
    )
    w = at(ledger, "invoice", "INV-1")
    assert (w.stage, w.since) == ("confirmed", datetime(2026, 3, 6, 9, tzinfo=UTC))

    w = at(ledger, "invoice", "INV-1", date(2026, 4, 10))
    assert (w.stage, w.since) == ("due", datetime(2026, 4, 3, tzinfo=UTC))
    ap(
        DunningStepRecorded(
            **when(date(2026, 4, 12)),
            receivable_id="INV-1",
            ladder="standard",
            step="first",
            level=1,
            decision_key="k1",
            sent_on=date(2026, 4, 12),
        )
    )
    w = at(ledger, "order", "O1", date(2026, 4, 13))
    assert (w.stage, w.since) == ("dunning", datetime(2026, 4, 12, 9, tzinfo=UTC))
    ap(
        PaymentReceived(
            **when(date(2026, 4, 20)),
            payment_id="P1",
            customer_id="C1",
            amount=cny(5_000),
            received_on=date(2026, 4, 20),
        )
    )
    w = at(ledger, "order", "O1", date(2026, 4, 21))
    assert (w.stage, w.done, w.owner) == ("paid", True, None)


def test_a_contract_is_where_its_first_open_node_is(ledger: Ledger) -> None:
    w = at(ledger, "contract", "K1")
    assert [p.stage for p in w.parts] == ["invoice_request", "milestone", "milestone"]
    assert (w.stage, w.owner) == ("invoice_request", "S1")
    assert w.parts[1].waiting == ('milestone "Installation and commissioning" to be done',)
    ledger.apply(invoice("INV-S", 300_000, contract_id="K1", payment_node_id="sign"))
    ledger.apply(
        MilestoneCompleted(
            **when(date(2026, 3, 10)), milestone_id="M-inst", completed_on=date(2026, 3, 10)
        )
    )
    w = at(ledger, "contract", "K1")
    assert [p.stage for p in w.parts] == ["invoice_issued", "invoice_request", "milestone"]
    assert w.parts[1].waiting == ("document: delivery_note",)
    assert w.parts[1].id == "K1/install"
    assert w.stage == "invoice_issued"  # the first node not done: its invoice is not sent
    text = w.describe()
    assert "K1/install" in text and "delivery_note" in text


def test_where_refuses_what_it_does_not_know(ledger: Ledger) -> None:
    with pytest.raises(ValidationError):
        at(ledger, "customer", "C1")
    with pytest.raises(UnknownObject):
        at(ledger, "invoice", "NOPE")


def test_arflow_where_command(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'book.db'}"
    store = SqlStore(url)
    led = Ledger(store)
    book(led)
    led.apply(
        MilestoneCompleted(
            **when(date(2026, 3, 10)), milestone_id="M-inst", completed_on=date(2026, 3, 10)
        )
    )
    store.close()
    args = ["where", "--db", url, "invoice_request", "IR-K1-install", "--as-of", "2026-03-20"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "invoice_request IR-K1-install: invoice_request since 2026-03-10" in out
    assert "waiting for: document: delivery_note" in out
    assert main([*args, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["owner"] == "S1" and got["waiting"] == ["document: delivery_note"]
    assert main(["where", "--db", url, "order", "NOPE"]) == 3


def test_the_workflows_page_runs_and_draws_the_machine(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every python block of docs/workflows.md runs, in order, as one program; its diagram
    is the one drawn from the declaration."""
    monkeypatch.chdir(tmp_path)  # the page's book is ./book.db
    from arflow.lifecycle import INVOICE_REQUEST_TRANSITIONS, mermaid

    text = (Path(__file__).parent.parent / "docs" / "workflows.md").read_text(encoding="utf-8")
    assert mermaid(INVOICE_REQUEST_TRANSITIONS, "requested") in text
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    assert len(blocks) == 3
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, "docs/workflows.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert out.count("refused:") == 3
    assert "with_finance" in out and "F1 approved -> invoiced invoiced as INV-0301" in out
    assert "payment_node K1/install: sent" in out
    assert 'waiting for: milestone "Acceptance" to be done' in out
