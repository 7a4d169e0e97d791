"""The story of seed 000: one contract from signing to cash, and where it stands at each stage.

A contract of 1,000,000 CNY with an 8% discount, paid 30% on signing, 40% on installation
and commissioning (a signed delivery note before finance sees the invoice request) and 30%
thirty days after acceptance (an acceptance certificate). The discount goes up the default
pack's chain (sales manager, sales director, CEO: each may grant so much); each milestone's
invoice request waits for its document; finance approves; the invoices are issued, sent and
confirmed; the customer pays. After each step the script prints `where` the contract is:
its stage, since when, who owns it and what it waits for.

    python examples/contract_to_cash.py [STORE_URL]

The store defaults to a fresh SQLite file in a temporary directory.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from arflow import (
    BaseEvent,
    Contract,
    ContractSigned,
    Customer,
    CustomerRegistered,
    DocumentAttached,
    DocumentsMissing,
    DueRule,
    Engine,
    InvoiceConfirmed,
    InvoiceIssued,
    InvoiceRequestApproved,
    InvoiceSent,
    Ledger,
    Milestone,
    MilestoneCompleted,
    MilestoneNotDone,
    Money,
    PaymentNode,
    PaymentReceived,
    Person,
    PersonAdded,
    StepDecided,
    default_pack_path,
    where,
)

_ids = iter(range(1, 1000))


def at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def yuan(amount: int | str) -> Money:
    return Money.of(amount, "CNY")


def say(engine: Engine, event: BaseEvent) -> None:
    """Hand an event to the engine (it records what the rules decide with it)."""
    engine.handle(event)


def stage(ledger: Ledger, day: date, label: str) -> None:
    answer = where(ledger.store, "contract", "K1", day)
    print(f"{day} {label}: {answer.stage}, owner {answer.owner or '-'}")
    for part in answer.parts:
        waiting = "; ".join(part.waiting) or "-"
        print(f"    {part.subject_id}: {part.stage} (waiting: {waiting})")


def main(url: str) -> None:
    ledger = Ledger(url)
    engine = Engine(ledger, default_pack_path())
    signed = date(2026, 3, 2)  # a Monday

    def ev(cls: type[BaseEvent], day: date, actor: str, **fields: object) -> BaseEvent:
        return cls(event_id=f"story-{next(_ids)}", occurred_at=at(day), actor=actor, **fields)

    people = [
        ("chen.ceo", "Chen Jie", ("ceo",), None),
        ("zhao.sd", "Zhao Min", ("sales_director",), "chen.ceo"),
        ("wang.sm", "Wang Lei", ("sales_manager",), "zhao.sd"),
        ("li.sales", "Li Wei", ("sales",), "wang.sm"),
        ("zhang.pm", "Zhang Tao", ("project_manager",), "zhao.sd"),
        ("sun.fin", "Sun Li", ("finance",), "chen.ceo"),
    ]
    for pid, name, roles, manager in people:
        person = Person(id=pid, name=name, roles=roles, manager=manager)
        say(engine, ev(PersonAdded, signed, "hr", person=person))
    customer = Customer(id="C1", name="华东精密", salesperson="li.sales", sales_manager="wang.sm")
    say(engine, ev(CustomerRegistered, signed, "crm", customer=customer))

    contract = Contract(
        id="K1",
        customer_id="C1",
        title="Line 3 automation",
        signed_on=signed,
        amount=yuan(1_000_000),
        discount_percent=Decimal(8),
        salesperson="li.sales",
        payment_nodes=[
            PaymentNode(id="sign", label="on signing", percent=Decimal(30)),
            PaymentNode(
                id="install",
                label="installation and commissioning",
                percent=Decimal(40),
                due=DueRule(basis="milestone", milestone_id="M-inst", days=30),
                documents=["delivery_note"],
            ),
            PaymentNode(
                id="accept",
                label="acceptance + 30 days",
                percent=Decimal(30),
                due=DueRule(basis="milestone", milestone_id="M-acc", days=30),
                documents=["acceptance_certificate"],
            ),
        ],
    )
    milestones = [
        Milestone(id="M-inst", contract_id="K1", name="Installation and commissioning"),
        Milestone(id="M-acc", contract_id="K1", name="Acceptance"),
    ]
    say(engine, ev(ContractSigned, signed, "li.sales", contract=contract, milestones=milestones))

    # The 8% discount (86,956.52 off a list price of 1,086,956.52) goes up the chain: the
    # sales manager may grant 5% and 10,000, the sales director 10% and 50,000, so it ends
    # with the CEO.
    process_id = "PR-contract_discount-K1"

    def decide(who: str, comment: str) -> None:
        """``who`` approves the step the discount's process is at."""
        process = ledger.get("process", process_id)
        print(f"discount 8%: step {process.state}, owner {process.owner}")
        decided = ev(
            StepDecided, signed, who, process_id=process_id, step=process.state,
            decision="approve", decided_on=signed, comment=comment,
        )  # fmt: skip
        say(engine, decided)

    decide("wang.sm", "strategic account")
    decide("zhao.sd", "over my 50,000")
    decide("chen.ceo", "approved")
    print(f"discount 8%: {ledger.get('process', process_id).state}")

    # 30% on signing: invoiced at once.
    say(
        engine,
        ev(
            InvoiceIssued,
            signed,
            "sun.fin",
            number="INV-K1-1",
            customer_id="C1",
            issue_date=signed,
            due_date=date(2026, 3, 16),
            amount=yuan(300_000),
            contract_id="K1",
            payment_node_id="sign",
        ),
    )
    say(engine, ev(InvoiceSent, signed, "sun.fin", receivable_id="INV-K1-1", sent_on=signed))
    stage(ledger, signed, "signed")

    # The acceptance node cannot be invoiced before acceptance.
    try:
        say(
            engine,
            ev(
                InvoiceIssued,
                signed,
                "sun.fin",
                number="INV-EARLY",
                customer_id="C1",
                issue_date=signed,
                amount=yuan(300_000),
                contract_id="K1",
                payment_node_id="accept",
            ),
        )
    except MilestoneNotDone as refused:
        print(f"refused: {refused}")

    paid = date(2026, 3, 13)
    say(
        engine,
        ev(
            PaymentReceived,
            paid,
            "bank",
            payment_id="P1",
            customer_id="C1",
            amount=yuan(300_000),
            received_on=paid,
        ),
    )

    # Installation done: its invoice request waits for the delivery note.
    installed = date(2026, 5, 4)
    say(
        engine,
        ev(
            MilestoneCompleted, installed, "zhang.pm", milestone_id="M-inst", completed_on=installed
        ),
    )
    request = ledger.get("invoice_request", "IR-K1-install")
    print(f"{request.id}: {request.state}, {request.amount}, missing {request.missing_documents}")
    stage(ledger, installed, "installed")
    try:
        say(
            engine,
            ev(
                InvoiceRequestApproved,
                installed,
                "sun.fin",
                request_id=request.id,
                approver="sun.fin",
                approved_on=installed,
            ),
        )
    except DocumentsMissing as refused:
        print(f"refused: {refused}")
    note = b"%PDF- delivery note DN-2026-0042, signed by the customer"
    say(
        engine,
        ev(
            DocumentAttached,
            installed,
            "zhang.pm",
            request_id=request.id,
            kind="delivery_note",
            reference="DN-2026-0042.pdf",
            sha256=hashlib.sha256(note).hexdigest(),
        ),
    )
    stage(ledger, installed, "delivery note attached")
    say(
        engine,
        ev(
            InvoiceRequestApproved,
            installed,
            "sun.fin",
            request_id=request.id,
            approver="sun.fin",
            approved_on=installed,
        ),
    )
    say(
        engine,
        ev(
            InvoiceIssued,
            installed,
            "sun.fin",
            number="INV-K1-2",
            customer_id="C1",
            issue_date=installed,
            amount=yuan(400_000),
            contract_id="K1",
            payment_node_id="install",
            invoice_request_id=request.id,
        ),
    )
    say(engine, ev(InvoiceSent, installed, "sun.fin", receivable_id="INV-K1-2", sent_on=installed))
    say(
        engine,
        ev(
            InvoiceConfirmed,
            installed,
            "li.sales",
            receivable_id="INV-K1-2",
            confirmed_on=date(2026, 5, 6),
        ),
    )
    stage(ledger, date(2026, 5, 6), "installation invoiced")

    # Acceptance: the last 30%, due 30 days after it, with the certificate.
    accepted = date(2026, 6, 1)
    say(
        engine,
        ev(MilestoneCompleted, accepted, "zhang.pm", milestone_id="M-acc", completed_on=accepted),
    )
    certificate = b"%PDF- acceptance certificate AC-2026-007"
    say(
        engine,
        ev(
            DocumentAttached,
            accepted,
            "zhang.pm",
            request_id="IR-K1-accept",
            kind="acceptance_certificate",
            reference="AC-2026-007.pdf",
            sha256=hashlib.sha256(certificate).hexdigest(),
        ),
    )
    say(
        engine,
        ev(
            InvoiceRequestApproved,
            accepted,
            "sun.fin",
            request_id="IR-K1-accept",
            approver="sun.fin",
            approved_on=accepted,
        ),
    )
    say(
        engine,
        ev(
            InvoiceIssued,
            accepted,
            "sun.fin",
            number="INV-K1-3",
            customer_id="C1",
            issue_date=accepted,
            amount=yuan(300_000),
            contract_id="K1",
            payment_node_id="accept",
            invoice_request_id="IR-K1-accept",
        ),
    )
    say(engine, ev(InvoiceSent, accepted, "sun.fin", receivable_id="INV-K1-3", sent_on=accepted))
    stage(ledger, date(2026, 6, 10), "accepted")

    cash = date(2026, 7, 1)
    say(
        engine,
        ev(
            PaymentReceived,
            cash,
            "bank",
            payment_id="P2",
            customer_id="C1",
            amount=yuan(700_000),
            received_on=cash,
        ),
    )
    stage(ledger, cash, "paid")
    open_items = ledger.balance("C1")
    print("balance:", ", ".join(str(m) for m in open_items.values()) or "nothing open")


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else None
    if target is None:
        with tempfile.TemporaryDirectory() as tmp:
            main(f"sqlite:///{Path(tmp) / 'contract.db'}")
    else:
        main(target)
