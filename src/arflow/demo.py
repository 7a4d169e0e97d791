"""A small sample book and the story ``arflow demo`` tells with it.

:func:`sample_events` is the book as it stands on 2026-11-23: three customers, a contract
with milestones, invoices, cash, a dispute, a promise and an order. :func:`story_events`
adds a fourth customer who is suspended and then pays, and an order the rules refuse.
:func:`play` runs the 60 days to a date one by one, as a host would: each day's events
through ``Engine.handle`` (orders are checked as they come), then ``Engine.run`` for the
day, then the outbox delivered to an in-process adapter; and it writes the HTML report.
:func:`story_text` says what happened in one screen.

The events have fixed ids and every decision and message a key, so playing the story
twice changes nothing the second time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from . import events as ev
from .actions import MemoryAdapter, Message
from .analytics import build_report
from .decisions import Decision
from .domain import (
    Contact,
    Contract,
    CreditProfile,
    Customer,
    DueRule,
    Milestone,
    PaymentNode,
    Person,
    PersonAddress,
    Project,
)
from .engine import Engine
from .ledger import Ledger
from .messages import ledger_feedback, ledger_tasks
from .money import Money
from .outbox import Dispatcher
from .report import render_html
from .rules import default_pack_path


def _at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 9, 0, tzinfo=UTC)


def sample_events() -> list[ev.Event]:
    """The sample book's events, in the order they happened."""
    cny = "CNY"
    out: list[ev.Event] = []

    def add(e: ev.Event) -> None:
        out.append(e)

    # the people the internal messages go to (an ERP syncs its staff the same way)
    for pid, name, roles, email, locale in (
        ("zhang.min", "Zhang Min", ("sales_manager",), "zhang.min@example.cn", "zh_CN"),
        ("li.wei", "Li Wei", ("salesperson",), "li.wei@example.cn", "zh_CN"),
        ("amy.chen", "Amy Chen", ("salesperson",), "amy.chen@example.com", "en"),
    ):
        add(
            ev.PersonAdded(
                event_id=f"demo-person-{pid}",
                occurred_at=_at(date(2026, 5, 1)),
                actor="hr-sync",
                person=Person(
                    id=pid,
                    name=name,
                    roles=roles,
                    manager=None if pid == "zhang.min" else "zhang.min",
                    addresses=(PersonAddress(channel="email", address=email),),
                    locale=locale,
                ),
            )
        )
    d = date(2026, 6, 1)
    add(
        ev.CustomerRegistered(
            event_id="demo-c1",
            occurred_at=_at(d),
            actor="import",
            customer=Customer(
                id="C001",
                name="华东精密机械有限公司",
                region="East",
                salesperson="li.wei",
                sales_manager="zhang.min",
                contacts=[
                    Contact(
                        name="王芳",
                        email="wang.fang@example.cn",
                        phone="+8613800000001",
                        locale="zh_CN",
                        timezone="Asia/Shanghai",
                    )
                ],
                credit=CreditProfile(
                    grade="A", credit_limit=Money.of(500_000, cny), payment_terms_days=90
                ),
            ),
        )
    )
    add(
        ev.CustomerRegistered(
            event_id="demo-c2",
            occurred_at=_at(d),
            actor="import",
            customer=Customer(
                id="C002",
                name="Northwind Trading Ltd",
                region="Export",
                salesperson="amy.chen",
                sales_manager="zhang.min",
                contacts=[
                    Contact(
                        name="Tom Baker",
                        email="ap@northwind.example",
                        locale="en",
                        timezone="Europe/London",
                        preferred_channel="email",
                    )
                ],
                credit=CreditProfile(
                    grade="B", credit_limit=Money.of(200_000, cny), payment_terms_days=60
                ),
            ),
        )
    )
    add(
        ev.CustomerRegistered(
            event_id="demo-c3",
            occurred_at=_at(d),
            actor="import",
            customer=Customer(
                id="C003",
                name="西南新能源科技",
                region="West",
                salesperson="li.wei",
                contacts=[
                    Contact(
                        name="陈刚",
                        phone="+8613900000003",
                        preferred_channel="sms",
                        locale="zh_CN",
                        timezone="Asia/Shanghai",
                    )
                ],
                credit=CreditProfile(
                    grade="C",
                    credit_limit=Money.of(50_000, cny),
                    payment_terms_days=30,
                    prepayment_percent=Decimal(30),
                ),
            ),
        )
    )
    add(
        ev.ContractSigned(
            event_id="demo-k1",
            occurred_at=_at(date(2026, 6, 10)),
            actor="sales",
            contract=Contract(
                id="K-2026-001",
                customer_id="C001",
                title="Production line retrofit",
                signed_on=date(2026, 6, 10),
                amount=Money.of(600_000, cny),
                project_id="P-RETRO",
                salesperson="li.wei",
                payment_nodes=[
                    PaymentNode(
                        id="advance", label="30% advance", percent=Decimal(30), due=DueRule(days=15)
                    ),
                    PaymentNode(
                        id="delivery",
                        label="60% on acceptance",
                        percent=Decimal(60),
                        due=DueRule(basis="milestone", milestone_id="M-ACCEPT", days=30),
                    ),
                    PaymentNode(
                        id="retention",
                        label="10% retention",
                        percent=Decimal(10),
                        due=DueRule(days=365),
                    ),
                ],
            ),
            project=Project(id="P-RETRO", customer_id="C001", name="Retrofit line 3"),
            milestones=[
                Milestone(
                    id="M-ACCEPT",
                    contract_id="K-2026-001",
                    name="Site acceptance",
                    planned_date=date(2026, 9, 30),
                ),
            ],
        )
    )
    add(
        ev.InvoiceIssued(
            event_id="demo-i1",
            occurred_at=_at(date(2026, 6, 12)),
            actor="finance",
            number="INV-1001",
            customer_id="C001",
            issue_date=date(2026, 6, 12),
            amount=Money.of(180_000, cny),
            contract_id="K-2026-001",
            payment_node_id="advance",
            product_line="retrofit",
        )
    )
    add(
        ev.PaymentReceived(
            event_id="demo-p1",
            occurred_at=_at(date(2026, 6, 26)),
            actor="bank-feed",
            payment_id="BANK-7781",
            customer_id="C001",
            amount=Money.of(180_000, cny),
            received_on=date(2026, 6, 26),
            reference="INV-1001",
        )
    )
    add(
        ev.MilestoneCompleted(
            event_id="demo-m1",
            occurred_at=_at(date(2026, 10, 8)),
            actor="pm.zhao",
            milestone_id="M-ACCEPT",
            completed_on=date(2026, 10, 8),
        )
    )
    add(
        ev.InvoiceIssued(
            event_id="demo-i2",
            occurred_at=_at(date(2026, 10, 9)),
            actor="finance",
            number="INV-1002",
            customer_id="C001",
            issue_date=date(2026, 10, 9),
            amount=Money.of(360_000, cny),
            contract_id="K-2026-001",
            payment_node_id="delivery",
            product_line="retrofit",
        )
    )
    for n, (num, issued, amount) in enumerate(
        [
            ("INV-2001", date(2026, 8, 3), 45_000),
            ("INV-2002", date(2026, 9, 1), 62_500),
            ("INV-2003", date(2026, 10, 2), 38_200),
        ]
    ):
        add(
            ev.InvoiceIssued(
                event_id=f"demo-i2{n}",
                occurred_at=_at(issued),
                actor="finance",
                number=num,
                customer_id="C002",
                issue_date=issued,
                amount=Money.of(amount, cny),
                product_line="spares",
            )
        )
    add(
        ev.PaymentReceived(
            event_id="demo-p2",
            occurred_at=_at(date(2026, 10, 15)),
            actor="bank-feed",
            payment_id="BANK-7790",
            customer_id="C002",
            amount=Money.of(50_000, cny),
            received_on=date(2026, 10, 15),
        )
    )
    add(
        ev.DisputeOpened(
            event_id="demo-d1",
            occurred_at=_at(date(2026, 10, 20)),
            actor="amy.chen",
            dispute_id="D-01",
            receivable_id="INV-2002",
            amount=Money.of(12_500, cny),
            reason_code="short-delivery",
            opened_on=date(2026, 10, 20),
            note="2 of 10 pallets missing",
        )
    )
    add(
        ev.InvoiceIssued(
            event_id="demo-i3",
            occurred_at=_at(date(2026, 9, 15)),
            actor="finance",
            number="INV-3001",
            customer_id="C003",
            issue_date=date(2026, 9, 15),
            amount=Money.of(41_000, cny),
        )
    )
    add(
        ev.PromiseMade(
            event_id="demo-pr1",
            occurred_at=_at(date(2026, 10, 20)),
            actor="li.wei",
            promise_id="PTP-01",
            customer_id="C003",
            receivable_ids=["INV-3001"],
            amount=Money.of(41_000, cny),
            promised_date=date(2026, 11, 30),
            promised_by="陈刚",
            made_on=date(2026, 10, 20),
        )
    )
    add(
        ev.OrderSubmitted(
            event_id="demo-o1",
            occurred_at=_at(date(2026, 11, 2)),
            actor="amy.chen",
            order_id="SO-501",
            customer_id="C002",
            amount=Money.of(80_000, cny),
            submitted_on=date(2026, 11, 2),
        )
    )
    add(
        ev.OrderApproved(
            event_id="demo-o1a",
            occurred_at=_at(date(2026, 11, 3)),
            actor="zhang.min",
            order_id="SO-501",
            approver="zhang.min",
        )
    )
    return out


#: the day the story ends on unless told otherwise
DEFAULT_AS_OF = date(2026, 11, 23)
#: how many days the story plays, up to and including its last
DEFAULT_DAYS = 60


def story_events() -> list[ev.Event]:
    """:func:`sample_events` and what the story adds: Pearl River Foods (grade B), whose
    invoice runs more than 30 days overdue (orders suspended) until it is paid in
    November (orders open again), and an order from the suspended 西南新能源科技 that the
    rules refuse. In the order they happened."""
    cny = "CNY"
    more: list[ev.Event] = [
        ev.CustomerRegistered(
            event_id="demo-c4",
            occurred_at=_at(date(2026, 6, 1)),
            actor="import",
            customer=Customer(
                id="C004",
                name="Pearl River Foods",
                region="South",
                salesperson="amy.chen",
                sales_manager="zhang.min",
                contacts=[
                    Contact(
                        name="Lin Hui",
                        email="ap@pearlriver.example",
                        locale="en",
                        timezone="Asia/Shanghai",
                    )
                ],
                credit=CreditProfile(
                    grade="B", credit_limit=Money.of(200_000, cny), payment_terms_days=60
                ),
            ),
        ),
        ev.InvoiceIssued(
            event_id="demo-i4",
            occurred_at=_at(date(2026, 7, 20)),
            actor="finance",
            number="INV-4001",
            customer_id="C004",
            issue_date=date(2026, 7, 20),
            amount=Money.of(28_600, cny),
            product_line="food-lines",
        ),
        ev.PaymentReceived(
            event_id="demo-p4",
            occurred_at=_at(date(2026, 11, 6)),
            actor="bank-feed",
            payment_id="BANK-7802",
            customer_id="C004",
            amount=Money.of(28_600, cny),
            received_on=date(2026, 11, 6),
            reference="INV-4001",
        ),
        ev.OrderSubmitted(
            event_id="demo-o2",
            occurred_at=_at(date(2026, 11, 18)),
            actor="li.wei",
            order_id="SO-502",
            customer_id="C003",
            amount=Money.of(15_000, cny),
            submitted_on=date(2026, 11, 18),
        ),
    ]
    # stable: events of one instant keep the order they were written in
    return sorted(sample_events() + more, key=lambda e: e.occurred_at)


@dataclass(frozen=True)
class Story:
    """What :func:`play` did and what the book now holds of the story's days."""

    book: str  # the store's URL
    start: date
    as_of: date
    applied: int  # events new to the book (0 when the story was played before)
    recorded: int  # decisions new to the book
    customers: tuple[tuple[str, str, str | None], ...]  # (id, name, grade)
    #: every message delivered over the story's days, in the order it was sent
    sent: tuple[Message, ...]
    #: the decisions recorded for the story's days other than reminders (locks, lifts,
    #: approvals, alerts), oldest first
    events: tuple[Decision, ...]
    report: Path | None  # the HTML report written, if any


Progress = Callable[[int, int, date], None]


def play(
    ledger: Ledger | str,
    as_of: date = DEFAULT_AS_OF,
    *,
    days: int = DEFAULT_DAYS,
    rules: Sequence[str] | None = None,
    progress: Progress | None = None,
    report_dir: Path | str | None = None,
) -> Story:
    """Play the ``days`` days up to ``as_of`` on ``ledger`` (or a store URL): the events
    before them at once, then day by day each day's events, the rules' run and the
    delivery of what is due; then write the HTML report as of ``as_of`` into
    ``report_dir`` (default: next to a SQLite file, else a new temporary folder).
    Events after ``as_of`` are not applied. ``progress(i, days, day)`` is called after
    each day."""
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    book = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
    engine = Engine(book, list(rules) if rules else [str(default_pack_path())])
    start = as_of - timedelta(days=days - 1)
    events = [e for e in story_events() if _day_of(e) <= as_of]
    applied = book.apply_all(e for e in events if _day_of(e) < start)
    by_day: dict[date, list[ev.Event]] = {}
    for e in events:
        if _day_of(e) >= start:
            by_day.setdefault(_day_of(e), []).append(e)
    sink = MemoryAdapter()
    recorded = 0
    day = start
    for i in range(days):
        for e in by_day.get(day, ()):
            done, decided = engine.handle(e)
            applied += not done.duplicate
            recorded += len(decided) if not done.duplicate else 0
        result = engine.run(day, first_run=engine.last_run() is None)
        recorded += result.recorded
        end = datetime(day.year, day.month, day.day, 23, 59, tzinfo=UTC)
        Dispatcher(
            book.store,
            sink,
            on_feedback=ledger_feedback(book),
            on_sent=ledger_tasks(book),  # a task sent as another channel's fallback is tracked
            clock=lambda end=end: end,  # type: ignore[misc]
            worker="demo",
        ).run()
        if progress is not None:
            progress(i + 1, days, day)
        day += timedelta(days=1)
    report = _write_report(book, engine, as_of, report_dir)
    return Story(
        book=book.store.url,
        start=start,
        as_of=as_of,
        applied=applied,
        recorded=recorded,
        customers=tuple(
            (c.id, c.name, c.credit.grade if c.credit else None)
            for c in sorted(book.store.all("customer"), key=lambda c: c.id)
        ),
        sent=_sent(book, start, as_of),
        events=_story_decisions(book, start, as_of),
        report=report,
    )


def _day_of(e: ev.Event) -> date:
    return e.occurred_at.astimezone(UTC).date()


def _sent(book: Ledger, start: date, end: date) -> tuple[Message, ...]:
    out: list[tuple[int, Message]] = []
    for rec in book.store.outbox(status="sent"):
        m = Message.model_validate_json(rec.body)
        at = rec.sent_at if rec.sent_at is not None else rec.created_at
        when = datetime.fromtimestamp(at / 1e6, UTC).date()
        if start <= when <= end:
            out.append((at, m))
    return tuple(m for _at_, m in sorted(out, key=lambda p: p[0]))


def _story_decisions(book: Ledger, start: date, end: date) -> tuple[Decision, ...]:
    out = []
    for rec in book.store.decisions():
        if rec.kind in ("lock", "unlock", "approval") and rec.status == "planned":
            d = Decision.model_validate_json(rec.body)
            if start <= d.occurrence <= end:
                out.append(d)
    return tuple(sorted(out, key=lambda d: (d.occurrence, d.key)))


def _write_report(book: Ledger, engine: Engine, as_of: date, where: Path | str | None) -> Path:
    if where is not None:
        folder = Path(where)
        name = "arflow-demo-report.html"
    else:
        url = book.store.url
        path = url[len("sqlite:///") :].split("?")[0] if url.startswith("sqlite:///") else ""
        if path and path != ":memory:":
            db = Path(path)
            folder, name = db.parent, f"{db.stem}-report.html"
        else:
            folder, name = Path(tempfile.mkdtemp(prefix="arflow-demo-")), "report.html"
    target = folder / name
    report = build_report(book.store, as_of, pack=engine.pack)
    target.write_text(render_html(report), encoding="utf-8")
    return target


#: what a message's template is for, in a few words (others: the template's name)
_WHY = {
    "reminder_before_due": "reminder before due",
    "reminder_due": "due today",
    "formal_notice": "overdue notice",
    "overdue_sms": "overdue SMS",
    "call_on_due_day": "call on the due day",
    "call_and_record": "call and record the outcome",
    "escalation": "escalation",
    "order_lock_notice": "orders suspended",
    "order_lock_lifted": "orders open again",
    "credit_limit_warning": "credit limit warning",
    "approval_request": "approval request",
    "invoice_request": "please invoice",
}


def _why(m: Message) -> str:
    if m.key.startswith("alert:"):
        return "risk alert"
    if m.key.startswith("approval:") and m.template != "approval_request":
        return "order approved: confirm and ship"
    if m.key.startswith("milestone:"):
        return "milestone done: please invoice"
    name = m.template or m.rule or m.action
    return _WHY.get(name, name.replace("_", " "))


def _because(d: Decision) -> str:
    """A lock's condition and the fact that made it hold, or no longer hold."""
    facts = d.why.get("facts") or {}
    conditions = d.why.get("conditions") or []
    shown = ", ".join(f"{k.split('.')[-1]} {v}" for k, v in facts.items())
    if d.kind == "lock":
        return f"{shown}; the rule: {' and '.join(conditions)}" if conditions else shown
    return f"{shown} now" if shown else "no longer holds"


def story_text(story: Story, *, verbose: bool = False) -> str:
    """What :func:`play` did, in one screen: the customers, what was sent to whom and why
    (grouped by customer), the locks set and lifted, the orders decided, the report's
    path. ``verbose``: every message sent, with its key, too."""
    names = {cid: name for cid, name, _grade in story.customers}
    out = [
        f"arflow demo: {len(story.customers)} customers, {(story.as_of - story.start).days + 1}"
        f" days played one by one, {story.start} to {story.as_of}",
        f"book at {story.book} ({story.applied} new events applied, "
        f"{story.recorded} new decisions recorded)",
        "",
        f"What was sent, to whom and why ({len(story.sent)} messages):",
    ]
    for cid, name, grade in story.customers:
        mine = [m for m in story.sent if m.customer_id == cid]
        if not mine:
            out.append(f"  {cid} {name} (grade {grade or '-'}): nothing")
            continue
        to: dict[str, dict[str, int]] = {}
        why: dict[str, int] = {}
        for m in mine:
            who = ", ".join(m.to) or "-"
            to.setdefault(who, {}).setdefault(m.channel, 0)
            to[who][m.channel] += 1
            why[_why(m)] = why.get(_why(m), 0) + 1
        ranked = sorted(to.items(), key=lambda kv: -sum(kv[1].values()))
        whom = "; ".join(
            f"{' '.join(f'{n} {ch}' for ch, n in chans.items())} to {who}"
            for who, chans in ranked[:3]
        ) + (f"; {len(ranked) - 3} more" if len(ranked) > 3 else "")
        out.append(f"  {cid} {name} (grade {grade or '-'}): {whom}")
        out.append("      why: " + ", ".join(f"{w} ×{n}" if n > 1 else w for w, n in why.items()))
    out += ["", "Locks set and lifted:"]
    locks = [d for d in story.events if d.kind in ("lock", "unlock")]
    for d in locks:
        what = "orders suspended" if d.kind == "lock" else "orders open again"
        out.append(
            f"  {d.occurrence}  {d.customer_id} {names.get(d.customer_id, '')}: {what}"
            f" ({d.rule}: {_because(d)})"
        )
    if not locks:
        out.append("  none")
    out += ["", "Orders:"]
    orders = [d for d in story.events if d.kind == "approval"]
    for d in orders:
        outcome = d.why.get("on_order", "approve")
        cust = f"{d.customer_id} {names.get(d.customer_id, '')}"
        if outcome == "reject":
            text = f"refused ({d.rule}: {d.reason or 'a lock refuses new orders'})"
        elif outcome == "approved":
            text = "approved: finance confirms, the warehouse ships"
        else:
            approvers = ", ".join(v for v in d.recipients.values() if v) or "the approvers"
            text = f"sent for approval to {approvers} ({d.rule})"
        out.append(f"  {d.occurrence}  {d.subject_id} of {cust}: {text}")
    if not orders:
        out.append("  none")
    if verbose:
        out += ["", "Every message sent:"]
        out += [f"  {m.channel:<5} {', '.join(m.to):<32} {m.key}" for m in story.sent]
    out.append("")
    if story.report is not None:
        out.append(f"Report as of {story.as_of}: {story.report} (open it in a browser)")
    out.append(
        "Next: arflow show customer C004 · arflow outbox list · arflow explain KEY "
        "(add --db when you gave one)"
    )
    return "\n".join(out)


def progress_bar(stream: TextIO) -> Progress:
    """A progress indicator for :func:`play` on ``stream``: a bar redrawn in place on a
    terminal, a plain line every tenth of the way otherwise."""
    tty = stream.isatty()

    def show(i: int, n: int, day: date) -> None:
        if tty:
            width = 30
            full = width * i // n
            bar = "#" * full + "-" * (width - full)
            stream.write(f"\r  day {i:>3}/{n} [{bar}] {day}")
            if i == n:
                stream.write("\n")
        elif i == n or i % max(n // 10, 1) == 0:
            stream.write(f"  day {i}/{n}: {day}\n")
        stream.flush()

    return show


def command(args: argparse.Namespace) -> int:
    """``arflow demo``: play the story on ``args.db`` up to ``args.as_of`` and tell it
    (``args.rules``, ``args.verbose`` as ``cmd_demo`` reads them; ``args.days`` and
    ``args.report_dir`` when the command line has them)."""
    story = play(
        args.db,
        args.as_of,
        days=getattr(args, "days", None) or DEFAULT_DAYS,
        rules=args.rules,
        progress=progress_bar(sys.stderr),
        report_dir=getattr(args, "report_dir", None),
    )
    print(story_text(story, verbose=args.verbose))
    return 0
