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

    def say_on(day: date, actor: str, cls: type[BaseEvent], **fields: object) -> None:
        say(engine, ev(cls, day, actor, **fields))

    def invoice(day: date, number: str, node: str, amount: int, request: str | None) -> None:
        """Finance issues the invoice of a payment node (from its request) and sends it."""
        say_on(day, "sun.fin", InvoiceIssued, number=number, customer_id="C1", issue_date=day,
               amount=yuan(amount), contract_id="K1", payment_node_id=node,
               invoice_request_id=request)  # fmt: skip
        say_on(day, "sun.fin", InvoiceSent, receivable_id=number, sent_on=day)

    def attach(day: date, request: str, kind: str, reference: str, scan: bytes) -> None:
        """The project manager attaches the signed document (its SHA-256 is kept)."""
        say_on(day, "zhang.pm", DocumentAttached, request_id=request, kind=kind,
               reference=reference, sha256=hashlib.sha256(scan).hexdigest())  # fmt: skip

    def approve(day: date, request: str) -> None:
        """Finance approves an invoice request."""
        say_on(day, "sun.fin", InvoiceRequestApproved, request_id=request, approver="sun.fin",
               approved_on=day)  # fmt: skip

    # 30% on signing: invoiced at once.
    invoice(signed, "INV-K1-1", "sign", 300_000, None)
    stage(ledger, signed, "signed")

    # The acceptance node cannot be invoiced before acceptance.
    try:
        invoice(signed, "INV-EARLY", "accept", 300_000, None)
    except MilestoneNotDone as refused:
        print(f"refused: {refused}")

    paid = date(2026, 3, 13)
    say_on(paid, "bank", PaymentReceived, payment_id="P1", customer_id="C1",
           amount=yuan(300_000), received_on=paid)  # fmt: skip

    # Installation done: its invoice request waits for the delivery note.
    installed = date(2026, 5, 4)
    say_on(installed, "zhang.pm", MilestoneCompleted, milestone_id="M-inst",
           completed_on=installed)  # fmt: skip
    request = ledger.get("invoice_request", "IR-K1-install")
    print(f"{request.id}: {request.state}, {request.amount}, missing {request.missing_documents}")
    stage(ledger, installed, "installed")
    try:
        approve(installed, request.id)
    except DocumentsMissing as refused:
        print(f"refused: {refused}")
    attach(installed, request.id, "delivery_note", "DN-2026-0042.pdf",
           b"%PDF- delivery note DN-2026-0042, signed by the customer")  # fmt: skip
    stage(ledger, installed, "delivery note attached")
    approve(installed, request.id)
    invoice(installed, "INV-K1-2", "install", 400_000, request.id)
    confirmed = date(2026, 5, 6)
    say_on(installed, "li.sales", InvoiceConfirmed, receivable_id="INV-K1-2",
           confirmed_on=confirmed)  # fmt: skip
    stage(ledger, confirmed, "installation invoiced")

    # Acceptance: the last 30%, due 30 days after it, with the certificate.
    accepted = date(2026, 6, 1)
    say_on(accepted, "zhang.pm", MilestoneCompleted, milestone_id="M-acc",
           completed_on=accepted)  # fmt: skip
    attach(accepted, "IR-K1-accept", "acceptance_certificate", "AC-2026-007.pdf",
           b"%PDF- acceptance certificate AC-2026-007")  # fmt: skip
    approve(accepted, "IR-K1-accept")
    invoice(accepted, "INV-K1-3", "accept", 300_000, "IR-K1-accept")
    stage(ledger, date(2026, 6, 10), "accepted")

    cash = date(2026, 7, 1)
    say_on(cash, "bank", PaymentReceived, payment_id="P2", customer_id="C1",
           amount=yuan(700_000), received_on=cash)  # fmt: skip
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
