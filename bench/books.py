"""Seeded books for the benchmarks: the customers every bench uses, and a *realistic* book of
receivables for the suite (``bench/suite.py``).

Same arguments, same seed: the same events, byte for byte (``random.Random`` seeded by a
string, no clock, no hash order).

* :func:`customer_events`: customers with a contact (time zone, locale), salesperson, sales
  manager, credit grade (A 20%, B 40%, C 30%, D 10%), limit and terms, company profile
  (what ``bench_run.py`` and ``bench_analytics.py`` build their books on);
* :func:`realistic_events`: those customers, then ``size`` invoices in several currencies
  (by the customer's time zone: CNY, HKD, EUR, USD) with due dates spread evenly at random
  over the last 180 days and the next 90 around ``as_of``, then what happened to them before
  ``as_of``: payments in full (about 12% of those already due) and in part (about 15%, 20 to
  80% of the amount), disputes (about 3%, in full or in part) and promises to pay (about 4%
  of the overdue ones, due in the next two weeks). With ``core`` < ``size`` only the first
  ``core`` invoices are spread so; the rest are retention instalments due 400 to 899 days
  after ``as_of`` that no step, alert or lock reaches on the day (the *fixed-steps* book:
  the work of the day stays the same while the book grows).

    python bench/books.py --size 200000 --db /tmp/book.db     # build one, to look at
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any

AS_OF = date(2025, 9, 17)  # a Wednesday, three weeks clear of China's National Day week
CURRENCY = "CNY"
CLOCK = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)

REGIONS = ("华东", "华北", "华南", "西南", "华中", "东北", "Export")
GRADES = (  # grade, share %, credit limit, payment terms, prepayment %
    ("A", 20, 5_000_000, 90, 0),
    ("B", 40, 2_000_000, 60, 0),
    ("C", 30, 800_000, 30, 0),
    ("D", 10, 200_000, 0, 50),
)
ZONES = (
    ("Asia/Shanghai", 90),
    ("Asia/Hong_Kong", 4),
    ("Europe/Berlin", 3),
    ("America/New_York", 3),
)
#: The currency a customer is invoiced in, by its contact's time zone (realistic books only).
ZONE_CURRENCY = {
    "Asia/Shanghai": "CNY",
    "Asia/Hong_Kong": "HKD",
    "Europe/Berlin": "EUR",
    "America/New_York": "USD",
}
PRODUCT_LINES = ("machinery", "spare-parts", "service", "software", "consumables")

#: The realistic book's due dates: from PAST_DAYS before ``as_of`` to FUTURE_DAYS after it.
PAST_DAYS, FUTURE_DAYS = 180, 90
RETENTION_FROM, RETENTION_DAYS = 400, 500  # retention items: due as_of + 400 .. + 899
#: Shares (per mille) of what happened to the invoices before ``as_of``.
PAID_FULL, PAID_PART, DISPUTED, PROMISED = 120, 150, 30, 40


def customer_id(c: int) -> str:
    return f"C{c:06d}"


def _pick(rng: random.Random, table: tuple[tuple[Any, ...], ...], share_col: int) -> Any:
    x = rng.randrange(100)
    for row in table:
        x -= row[share_col]
        if x < 0:
            return row
    return table[-1]


def customer_zones(customers: int, seed: int) -> list[str]:
    """Each customer's time zone, as :func:`customer_events` draws it."""
    return [c.customer.contacts[0].timezone for c in customer_events(customers, seed)]


def customer_events(customers: int, seed: int, currencies: bool = False) -> Iterator[Any]:
    """The customers; with ``currencies``, each one's credit limit in its own currency
    (:data:`ZONE_CURRENCY`), else all in :data:`CURRENCY`."""
    from arflow import events as ev
    from arflow.domain import CompanyProfile, Contact, CreditProfile, Customer
    from arflow.money import Money

    rng = random.Random(f"customers-{seed}")
    for c in range(customers):
        grade, _share, limit, terms, prepay = _pick(rng, GRADES, 1)
        zone = _pick(rng, ZONES, 1)[0]
        zh = zone in ("Asia/Shanghai", "Asia/Hong_Kong")
        no_limit = rng.randrange(100) < 3
        cur = ZONE_CURRENCY[zone] if currencies else CURRENCY
        yield ev.CustomerRegistered(
            event_id=f"cust-{c}",
            occurred_at=CLOCK,
            actor="bench",
            customer=Customer(
                id=customer_id(c),
                name=f"客户{c:06d}有限公司" if zh else f"Customer {c:06d} Ltd",
                region=REGIONS[c % len(REGIONS)] if zh else "Export",
                salesperson=f"sales{c % 400:03d}",
                sales_manager=f"manager{c % 40:02d}",
                contacts=[
                    Contact(
                        name=f"联系人{c}" if zh else f"Contact {c}",
                        email=f"ap{c}@cust{c}.example.cn",
                        phone=f"+86139{c:08d}",
                        preferred_channel="sms" if c % 10 == 0 else "email",
                        locale="zh_CN" if zh else "en",
                        timezone=zone,
                    )
                ],
                credit=CreditProfile(
                    grade=grade,
                    credit_limit=None if no_limit else Money.of(limit, cur),
                    payment_terms_days=terms,
                    prepayment_percent=Decimal(prepay),
                ),
                profile=CompanyProfile(
                    enterprise_type=rng.choice(("state_owned", "listed", "private", "foreign")),
                    registered_capital=Money.of(rng.choice((1, 5, 20, 100)) * 1_000_000, cur),
                    established_on=date(1990 + rng.randrange(34), 1 + rng.randrange(12), 1),
                    industry=rng.choice(PRODUCT_LINES),
                    industry_risk=1 + rng.randrange(5),
                    bank_reference=rng.choice(("good", "good", "fair", "poor")),
                ),
            ),
        )


def realistic_events(
    size: int, customers: int, seed: int, core: int | None = None, as_of: date = AS_OF
) -> Iterator[Any]:
    """The realistic book's events, in the order a ledger takes them (module docstring)."""
    core = size if core is None else min(core, size)
    yield from customer_events(customers, seed, currencies=True)
    # two passes over the same seeded plan: every invoice first, then what happened to them
    yield from (inv for inv, _later in _plan(size, customers, seed, core, as_of))
    for _inv, later in _plan(size, customers, seed, core, as_of):
        yield from later


def _plan(
    size: int, customers: int, seed: int, core: int, as_of: date
) -> Iterator[tuple[Any, list[Any]]]:
    from arflow import events as ev
    from arflow.money import Money

    currency = [ZONE_CURRENCY[z] for z in customer_zones(customers, seed)]
    rng = random.Random(f"realistic-{seed}")
    at = datetime.combine(as_of - timedelta(1), datetime.min.time(), UTC) + timedelta(hours=9)
    for i in range(size):
        cust = i % customers
        number = f"INV{i:08d}"
        if i >= core:  # a retention instalment far in the future: nothing happened to it
            due = as_of + timedelta(RETENTION_FROM + rng.randrange(RETENTION_DAYS))
            issued = as_of - timedelta(rng.randrange(1, 90))
            cents = rng.randrange(100_000, 2_000_000)
            tags: tuple[str, ...] = ("retention",)
        else:
            due = as_of + timedelta(rng.randrange(-PAST_DAYS, FUTURE_DAYS + 1))
            issued = due - timedelta(rng.choice((30, 30, 60, 90)))
            # 2% below the ladder's minimum balance (100): their steps are skipped
            small = rng.randrange(50) == 0
            cents = rng.randrange(1_000, 9_999) if small else rng.randrange(50_000, 10_000_000)
            tags = ()
        amount = Money.of(Decimal(cents).scaleb(-2), currency[cust])
        invoice = ev.InvoiceIssued(
            event_id=f"inv-{i}",
            occurred_at=CLOCK,
            actor="bench",
            number=number,
            customer_id=customer_id(cust),
            issue_date=issued,
            due_date=due,
            amount=amount,
            product_line=PRODUCT_LINES[i % len(PRODUCT_LINES)],
            tags=tags,
        )
        later = [] if i >= core else _afterwards(rng, i, invoice, at, as_of)
        yield invoice, later


def _afterwards(rng: random.Random, i: int, invoice: Any, at: datetime, as_of: date) -> list[Any]:
    """What happened to invoice ``i`` before ``as_of`` (events recorded at ``at``): nothing,
    mostly."""
    from arflow import events as ev
    from arflow.money import Money

    number, cust, amount, due = (
        invoice.number,
        invoice.customer_id,
        invoice.amount,
        invoice.due_date,
    )
    x = rng.randrange(1000)
    overdue = (as_of - due).days
    if x < PAID_FULL + PAID_PART:  # paid, in full or in part, some days after it fell due
        if overdue < 1:
            return []
        part = x >= PAID_FULL
        share = Decimal(rng.randrange(20, 81)) / 100 if part else Decimal(1)
        paid = Money.of((amount.amount * share).quantize(Decimal("0.01")), amount.currency)
        return [
            ev.PaymentReceived(
                event_id=f"pay-{i}",
                occurred_at=at,
                actor="bench",
                payment_id=f"PAY{i:08d}",
                customer_id=cust,
                amount=paid,
                received_on=due + timedelta(rng.randrange(min(overdue, 60))),
                reference=f"BANK-{i}",
                allocations=(ev.AllocationRequest(receivable_id=number, amount=paid),),
            )
        ]
    x -= PAID_FULL + PAID_PART
    if x < DISPUTED:
        whole = rng.randrange(2) == 0
        part = Money.of((amount.amount / 2).quantize(Decimal("0.01")), amount.currency)
        return [
            ev.DisputeOpened(
                event_id=f"dsp-{i}",
                occurred_at=at,
                actor="bench",
                dispute_id=f"DSP{i:08d}",
                receivable_id=number,
                amount=None if whole else part,
                reason_code=rng.choice(("quality", "quantity", "price", "delivery")),
                opened_on=min(as_of - timedelta(1), due + timedelta(rng.randrange(1, 10))),
            )
        ]
    x -= DISPUTED
    if x < PROMISED and overdue > 3:
        made = as_of - timedelta(rng.randrange(1, 4))
        return [
            ev.PromiseMade(
                event_id=f"prm-{i}",
                occurred_at=at,
                actor="bench",
                promise_id=f"PRM{i:08d}",
                customer_id=cust,
                receivable_ids=(number,),
                amount=amount,
                promised_date=as_of + timedelta(rng.randrange(0, 15)),
                promised_by=f"AP clerk of {cust}",
                made_on=made,
            )
        ]
    return []


# -- building a book -------------------------------------------------------------------------------
def apply_in_chunks(ledger: Any, events: Iterable[Any], total: int = 0) -> dict[str, Any]:
    """``ledger.apply_all`` over ``events`` 50,000 at a time (the bulk path, bounded memory),
    with progress on stderr; how many, how long."""
    it = iter(events)
    done = 0
    t0 = time.perf_counter()
    while chunk := list(islice(it, 50_000)):
        done += ledger.apply_all(chunk)
        rate = done / (time.perf_counter() - t0)
        of = f"/{total}" if total else ""
        print(f"  built {done}{of} events ({rate:.0f}/s)", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - t0
    return {"events": done, "seconds": round(seconds, 1), "events_per_s": round(done / seconds)}


def checkpoint(db: Path) -> None:
    """Fold the WAL into the file so the file alone is the book (copies are then whole)."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def build_sqlite(target: Path, events: Iterable[Any], total: int = 0) -> dict[str, Any]:
    """A SQLite book at ``target`` from ``events``, written beside it and renamed when whole
    (a book interrupted half-way is never taken for a cached one)."""
    from arflow import Ledger

    tmp = target.with_name(target.name + ".building")
    remove_db(tmp)
    ledger = Ledger(f"sqlite:///{tmp}")
    got = apply_in_chunks(ledger, events, total)
    ledger.store.close()  # type: ignore[attr-defined]
    checkpoint(tmp)
    tmp.rename(target)
    return got


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, required=True, help="receivables")
    p.add_argument("--customers", type=int, default=0, help="customers (size / 10, at most 100k)")
    p.add_argument("--core", type=int, default=0, help="spread receivables (all)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--db", required=True, help="the SQLite file to write")
    args = p.parse_args()
    customers = args.customers or default_customers(args.size)
    events = realistic_events(args.size, customers, args.seed, args.core or None)
    print(build_sqlite(Path(args.db), events, customers + args.size))


def default_customers(size: int) -> int:
    """Ten receivables a customer, between 10 and 100,000 customers."""
    return max(10, min(100_000, size // 10))


if __name__ == "__main__":
    main()
