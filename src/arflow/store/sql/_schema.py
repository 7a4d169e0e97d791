"""The SQL schema: a table per kind of object, the event log, the audit trail, the decision
ledger, run records and the outbox; and :func:`migrate`, which creates and upgrades it by a
numbered list of steps recorded in ``arflow_schema``.

Writers are serialised by :func:`_lock` (an advisory lock on PostgreSQL; ``BEGIN IMMEDIATE``
on SQLite, see ``_sqlite``), so the read-validate-write of an event never races another
writer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ...errors import SchemaTooNew
from ...money import Money
from ..base import KINDS
from ._errors import _Edge
from ._naming import qualified, schema_of

metadata = sa.MetaData()
_SUMMARY_INDEX = "ix_ar_receivable_customer_summary"
_BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

OBJECT_TABLES: dict[str, sa.Table] = {
    name: sa.Table(
        f"ar_{name}",
        metadata,
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=True),
        sa.Column("state", sa.String(40), nullable=True),
        sa.Column("due_date", sa.Date, nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        *(
            # what a day's customer facts read of every receivable (``summary_text``)
            [sa.Column("summary", sa.String(120), nullable=True)] if name == "receivable" else []
        ),
        *(
            # a day's customer facts read every receivable of their customers from this
            # index alone (``receivable_summaries``), without the rows' JSON
            [sa.Index(_SUMMARY_INDEX, "customer_id", "state", "due_date", "id", "summary")]
            if name == "receivable"
            else [sa.Index(f"ix_ar_{name}_customer_state", "customer_id", "state")]
        ),
    )
    for name in KINDS
}
sa.Index(
    "ix_ar_receivable_state_due",
    OBJECT_TABLES["receivable"].c.state,
    OBJECT_TABLES["receivable"].c.due_date,
)

EVENTS = sa.Table(
    "ar_event",
    metadata,
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(200), nullable=False, unique=True),
    sa.Column("event_type", sa.String(60), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
AUDIT = sa.Table(
    "ar_audit",
    metadata,
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("subject_kind", sa.String(40), nullable=False),
    sa.Column("subject_id", sa.String(200), nullable=False),
    sa.Column("event_id", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_ar_audit_subject", "subject_kind", "subject_id"),
)
DECISIONS = sa.Table(
    "ar_decision",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("subject_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_ar_decision_as_of", "as_of", "status"),
)
RUNS = sa.Table(
    "ar_run",
    metadata,
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
OUTBOX = sa.Table(
    "ar_outbox",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_at", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("claimed_by", sa.String(200), nullable=True),
    sa.Column("lease_until", sa.BigInteger, nullable=True),
    sa.Column("sent_at", sa.BigInteger, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("receipt", sa.Text, nullable=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("claim", sa.String(40), nullable=True),
    sa.Index("ix_ar_outbox_status_next", "status", "next_at"),
)
#: The receivable movement journal (``MOVEMENT_COLUMNS``): one row per change of a
#: receivable's open balance, with the receivable's dimensions, so that every figure of
#: ``arflow.analytics`` is a GROUP BY over indexed columns. ``amount`` is an exact integer of
#: the currency's minor units: SQLite's SUM of 64-bit integers is exact up to 2**63 - 1
#: minor units (about 9.2e16 of a two-decimal currency) and raises beyond, never rounds.
MOVEMENTS = sa.Table(
    "ar_movement",
    metadata,
    sa.Column("seq", _BigInt, primary_key=True, autoincrement=True),
    sa.Column("receivable_id", sa.String(200), nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("on_date", sa.Date, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("open_delta", sa.SmallInteger, nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("salesperson", sa.String(200), nullable=True),
    sa.Column("region", sa.String(200), nullable=True),
    sa.Column("product_line", sa.String(200), nullable=True),
    sa.Column("contract_id", sa.String(200), nullable=True),
    sa.Column("project_id", sa.String(200), nullable=True),
    # aging and balances as of a date: due date and amount read from the index alone
    sa.Index("ix_ar_movement_due", "currency", "due_date", "on_date", "amount", "open_delta"),
    # sales, cash and write-offs of a period
    sa.Index("ix_ar_movement_kind", "kind", "on_date", "currency", "amount", "open_delta"),
    # drilling down by customer (the commonest grouping) from the index alone
    sa.Index(
        "ix_ar_movement_customer",
        "customer_id",
        "currency",
        "due_date",
        "on_date",
        "kind",
        "amount",
        "open_delta",
    ),
)
#: The customer dimension (``CUSTOMER_DIM_COLUMNS``), kept with each customer's object.
CUSTOMER_DIM = sa.Table(
    "ar_customer_dim",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("grade", sa.String(40), nullable=True),
    sa.Column("salesperson", sa.String(200), nullable=True),
    sa.Column("sales_manager", sa.String(200), nullable=True),
    sa.Column("team", sa.String(200), nullable=True),
    sa.Column("region", sa.String(200), nullable=True),
    sa.Column("tags", sa.Text, nullable=False),
)
SCHEMA = sa.Table(
    "arflow_schema",
    sa.MetaData(),
    sa.Column("version", sa.Integer, nullable=False),
)


#: Kinds of object added after the first version, by the step that creates their table.
_LATER_KINDS = {"person": 7, "task": 9, "invoice_request": 10, "process": 12}
_V1 = [
    "ar_event",
    "ar_audit",
    *(t.name for k, t in OBJECT_TABLES.items() if k not in _LATER_KINDS),
]


def _v1(conn: Connection) -> None:
    """The book: objects, event log, audit trail."""
    metadata.create_all(conn, tables=[metadata.tables[n] for n in _V1])


def _v2(conn: Connection) -> None:
    """The engine's decision ledger and run records."""
    metadata.create_all(conn, tables=[DECISIONS, RUNS])


def _v3(conn: Connection) -> None:
    """The outbox: actions waiting for delivery, written with the decisions."""
    metadata.create_all(conn, tables=[OUTBOX])


def _v4(conn: Connection) -> None:
    """Receivables keep their summary (``summary_text``) beside the JSON, filled in here
    for the receivables already stored (a book created by step 1 of this version has the
    column already)."""
    where = schema_of(conn)
    receivable = qualified(conn, "ar_receivable")
    columns = {c["name"] for c in sa.inspect(conn).get_columns("ar_receivable", schema=where)}
    if "summary" not in columns:
        conn.execute(sa.text(f"ALTER TABLE {receivable} ADD COLUMN summary VARCHAR(120)"))
    sqlite = conn.dialect.name == "sqlite"

    def field(path: str) -> str:
        if sqlite:
            return f"json_extract(data, '$.{path}')"
        return "(data::json #>> '{" + path.replace(".", ",") + "}')"

    number = "REAL" if sqlite else "NUMERIC"
    disputed = (
        f"CASE WHEN CAST({field('disputed_amount.amount')} AS {number}) = 0 THEN '0' ELSE '1' END"
    )
    parts = [
        field("open_balance.currency"),
        field("issue_date"),
        field("open_balance.amount"),
        disputed,
        f"coalesce({field('closed_on')}, '')",
    ]
    summary = " || '|' || ".join(parts)
    conn.execute(sa.text(f"UPDATE {receivable} SET summary = {summary} WHERE summary IS NULL"))


def _v5(conn: Connection) -> None:
    """The receivables' customer index covers what ``receivable_summaries`` reads (customer,
    state, due date, id, summary), so that a day's run reads summaries from the index
    instead of visiting each row and its JSON; it replaces the index on
    (customer, state), whose queries it serves as well."""
    where = schema_of(conn)
    indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("ar_receivable", schema=where)}
    if _SUMMARY_INDEX not in indexes:
        t = OBJECT_TABLES["receivable"]
        next(ix for ix in t.indexes if ix.name == _SUMMARY_INDEX).create(conn)
    if "ix_ar_receivable_customer_state" in indexes:
        # an index is in its table's schema
        old = qualified(conn, "ix_ar_receivable_customer_state")
        conn.execute(sa.text(f"DROP INDEX {old}"))


def _v6(conn: Connection) -> None:
    """Outbox claims carry a token (``claim``), new with every claim: a dispatcher renews
    its lease, and records an outcome, only while the action still holds its token (a book
    created by step 3 of this version has the column already). Claims made before the
    upgrade have none: they are taken over when their lease runs out."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("ar_outbox", schema=schema_of(conn))}
    if "claim" not in columns:
        outbox = qualified(conn, "ar_outbox")
        conn.execute(sa.text(f"ALTER TABLE {outbox} ADD COLUMN claim VARCHAR(40)"))


def _v7(conn: Connection) -> None:
    """The people directory (``ar_person``): who arflow addresses inside the company."""
    metadata.create_all(conn, tables=[OBJECT_TABLES["person"]], checkfirst=True)


def _v8(conn: Connection) -> None:
    """Payments and credit notes with money left to apply are in the state ``unapplied``
    (the others ``applied``, or ``reversed`` as before), so a day's customer facts read
    only those through the (customer, state) index: filled in here from the stored JSON
    (``unapplied.amount``) for the rows written before."""
    if conn.dialect.name == "sqlite":
        left = "CAST(json_extract(data, '$.unapplied.amount') AS REAL)"
    else:
        left = "CAST(data::json #>> '{unapplied,amount}' AS NUMERIC)"
    conn.execute(
        sa.text(
            f"UPDATE {qualified(conn, 'ar_payment')} SET state = CASE WHEN "
            f"{left} > 0 THEN 'unapplied' ELSE 'applied' END "
            "WHERE state IS NULL OR state <> 'reversed'"
        )
    )
    conn.execute(
        sa.text(
            f"UPDATE {qualified(conn, 'ar_credit_note')} SET state = CASE WHEN {left} > 0 "
            "THEN 'unapplied' ELSE 'applied' END"
        )
    )


def _v9(conn: Connection) -> None:
    """Tracked tasks (``ar_task``): who must do what, by when, and how it went."""
    metadata.create_all(conn, tables=[OBJECT_TABLES["task"]], checkfirst=True)


def _v10(conn: Connection) -> None:
    """Invoice requests (``ar_invoice_request``): asked for, waiting for their documents,
    with finance, approved, invoiced (docs/workflows.md)."""
    metadata.create_all(conn, tables=[OBJECT_TABLES["invoice_request"]], checkfirst=True)


def _v11(conn: Connection) -> None:
    """The receivable movement journal and the customer dimension (``arflow.analytics``),
    filled in from the book already stored (see :func:`backfill_movements`)."""
    metadata.create_all(conn, tables=[MOVEMENTS, CUSTOMER_DIM], checkfirst=True)
    backfill_movements(conn)


def _v12(conn: Connection) -> None:
    """Process instances (``ar_process``): declared processes running, with their state as
    data and their audit trail (docs/workflows.md#processes)."""
    metadata.create_all(conn, tables=[OBJECT_TABLES["process"]], checkfirst=True)


#: What each shard of a distributed day's run recorded (``arflow.engine.distributed``):
#: written in the shard's own transaction, with its decisions, so that a shard delivered
#: twice records once and its coordinator reads every shard's counts from the book.
RUN_SHARDS = sa.Table(
    "ar_run_shard",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("shard", sa.Integer, primary_key=True),
    sa.Column("shards", sa.Integer, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)


def _v13(conn: Connection) -> None:
    """The shards of distributed runs (``ar_run_shard``, docs/distributed.md)."""
    metadata.create_all(conn, tables=[RUN_SHARDS], checkfirst=True)


def backfill_movements(conn: Connection) -> None:
    """Rebuild the journal from the audit trail: each audit record of a receivable holds its
    open balance before and after an event, and the event's business date is in the log.
    The kind of a reduction comes from the event (and the audit summary, for credit applied
    as an invoice is issued); the dimensions from the receivable as stored. The rows are
    those the ledger writes as it applies the same events (a test compares the two)."""
    import json

    from ...domain import Contract, Customer, Receivable
    from ..base import BUSINESS_DATE, customer_dim, minor_units

    conn.execute(MOVEMENTS.delete())
    conn.execute(CUSTOMER_DIM.delete())
    dims = [
        dict(zip(CUSTOMER_DIM.c.keys(), customer_dim(Customer.model_validate_json(d)), strict=True))
        for (d,) in conn.execute(sa.select(OBJECT_TABLES["customer"].c.data))
    ]
    if dims:
        conn.execute(CUSTOMER_DIM.insert(), dims)
    projects = {
        c.id: c.project_id
        for c in (
            Contract.model_validate_json(d)
            for (d,) in conn.execute(sa.select(OBJECT_TABLES["contract"].c.data))
        )
    }
    receivables = {
        r.id: r
        for r in (
            Receivable.model_validate_json(d)
            for (d,) in conn.execute(sa.select(OBJECT_TABLES["receivable"].c.data))
        )
    }
    rows: list[dict[str, object]] = []
    q = (
        sa.select(AUDIT.c.body, EVENTS.c.event_type, EVENTS.c.body)
        .join(EVENTS, EVENTS.c.event_id == AUDIT.c.event_id)
        .where(AUDIT.c.subject_kind == "receivable")
        .order_by(AUDIT.c.seq)
    )
    for audit_body, event_type, event_body in conn.execute(q):
        a = json.loads(audit_body)
        r = receivables.get(a["subject_id"])
        if r is None:
            continue
        after = a.get("after_balance")
        before = a.get("before_balance")
        after_minor = 0 if after is None else minor_units(_money(after))
        before_minor = 0 if before is None else minor_units(_money(before))
        amount = after_minor - before_minor
        if not amount and before is not None:
            continue
        if before is None:
            kind = "invoiced"
        elif amount > 0:
            kind = "reversed" if event_type == "PaymentReversed" else "adjusted"
        elif event_type == "WrittenOff":
            kind = "written_off"
        elif event_type == "CreditNoteIssued" or a.get("summary", "").startswith("credited"):
            kind = "credited"
        else:
            kind = "paid"
        event = json.loads(event_body)
        field = BUSINESS_DATE.get(event_type)
        on = (
            date.fromisoformat(event[field])
            if field and field in event
            else datetime.fromisoformat(event["occurred_at"]).astimezone(UTC).date()
        )
        opened = (1 if after_minor else 0) - (1 if before_minor else 0)
        rows.append(
            {
                "receivable_id": r.id,
                "customer_id": r.customer_id,
                "currency": r.currency,
                "kind": kind,
                "on_date": on,
                "amount": amount,
                "open_delta": opened,
                "issue_date": r.issue_date,
                "due_date": r.due_date,
                "salesperson": r.salesperson,
                "region": r.region,
                "product_line": r.product_line,
                "contract_id": r.contract_id,
                "project_id": projects.get(r.contract_id) if r.contract_id else None,
            }
        )
        if len(rows) >= 10_000:
            conn.execute(MOVEMENTS.insert(), rows)
            rows = []
    if rows:
        conn.execute(MOVEMENTS.insert(), rows)


def _task_sweep_index(conn: Connection) -> None:
    """A task's ``due_date`` is the day the daily sweep next changes it by the calendar
    (``task_sweep_day``: the day after its deadline while open, its escalation day while
    not escalated), indexed with its state, so a day's sweep reads only the tasks that
    can change; filled in here for the open and overdue tasks stored before (their column
    held the deadline)."""
    from ...domain import Task
    from .._records import task_sweep_day

    task = qualified(conn, "ar_task")
    rows = conn.execute(
        sa.text(f"SELECT id, data FROM {task} WHERE state IN ('open', 'overdue')")
    ).fetchall()
    update = sa.text(f"UPDATE {task} SET due_date = :day WHERE id = :id")
    days = [{"id": i, "day": task_sweep_day(Task.model_validate_json(d))} for i, d in rows]
    for at in range(0, len(days), 1000):
        conn.execute(update, days[at : at + 1000])
    conn.execute(
        sa.text(f"CREATE INDEX IF NOT EXISTS ix_ar_task_state_due ON {task} (state, due_date)")
    )


def _money(data: dict[str, str]) -> Money:
    return Money.of(data["amount"], data["currency"])


#: Schema steps, oldest first. A new step is appended, never edited: version N of the
#: schema is what steps 1..N made. Each runs in the transaction that records it.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1,
    _v2,
    _v3,
    _v4,
    _v5,
    _v6,
    _v7,
    _v8,
    _v9,
    _v10,
    _v11,
    _v12,
    _v13,
    _task_sweep_index,
]
SCHEMA_VERSION = len(MIGRATIONS)


#: The writers' lock of a book whose tables the search path finds: named after the schema
#: that holds them (not the search path's first, which may be a host's own schema:
#: ``search_path=erp,arflow``), so that it is the lock a store naming that schema takes.
_SEARCH_PATH_LOCK = sa.text(
    "SELECT pg_advisory_xact_lock(hashtext('arflow:' || COALESCE("
    "(SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.oid = to_regclass(:table)), current_schema())))"
).bindparams(table="arflow_schema")


def _lock(conn: Connection) -> None:
    """Serialise the book's writers: one advisory lock per schema (so two books in two
    schemas of one database do not wait for each other), released at commit. The schema
    is arflow's own (``SqlStore(..., schema=...)``), else the one the search path finds
    arflow's tables in."""
    if conn.dialect.name == "postgresql":
        where = schema_of(conn)
        if where is None:
            conn.execute(_SEARCH_PATH_LOCK)
        else:
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext('arflow:' || :schema))"),
                {"schema": where},
            )


def migrate(engine: Engine) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION`; return the version found before."""
    with _Edge(engine.url)("opening the book"), engine.connect() as conn, conn.begin():
        return _migrate(conn)


def _migrate(conn: Connection) -> int:
    """:func:`migrate` in ``conn``'s transaction (begun by the caller): the writers' lock,
    arflow's PostgreSQL schema created if it names one, then the steps not yet recorded.
    Returns the version found before; refuses a newer one (:class:`SchemaTooNew`)."""
    _lock(conn)
    where = schema_of(conn)
    if where is not None:
        conn.execute(sa.schema.CreateSchema(where, if_not_exists=True))
    SCHEMA.create(conn, checkfirst=True)
    found = conn.execute(sa.select(sa.func.max(SCHEMA.c.version))).scalar() or 0
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the database schema is version {found}, newer than this arflow "
            f"(version {SCHEMA_VERSION}); upgrade arflow",
            found,
            SCHEMA_VERSION,
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[version - 1](conn)
        conn.execute(SCHEMA.insert().values(version=version))
    return int(found)
