"""The reference embedding (examples/embedding, issue 16 item 5), run as its deployment and
its users run it, on an SQLite file and on PostgreSQL (a fresh schema per test): arflow's
upgrade and the host's ``alembic upgrade head``; the scripted story; the host's rows and
arflow's book agree; ``alembic check`` proposes nothing; a host process killed (SIGKILL)
between its write and its commit leaves neither its row nor arflow's event; a rolled-back
host transaction calls no callback."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from arflow import Ledger, SqlStore
from arflow.store.sql import TABLE_NAMES

from .conftest import POSTGRES_URL, _drop_schema, _postgres_engine

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "embedding"
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{EXAMPLE}"}
ENV.pop("HOST_DB_URL", None)
sys.path.insert(0, str(EXAMPLE))

from host.app import App  # noqa: E402
from host.models import Base, CustomerRow, InvoiceRow, NotificationRow, SalesOrderRow  # noqa: E402
from host.services import enter_sales_order, post_invoice, register_customer  # noqa: E402


@dataclass(frozen=True)
class Db:
    url: str
    #: PostgreSQL: arflow's own schema, behind the host's on the search path
    arflow_schema: str | None = None

    @property
    def args(self) -> list[str]:
        """``main.py``'s options naming this database."""
        schema = ["--arflow-schema", self.arflow_schema] if self.arflow_schema else []
        return ["--db", self.url, *schema]

    def app(self) -> App:
        return App(self.url, arflow_schema=self.arflow_schema)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("postgres-arflow-schema", marks=pytest.mark.postgres),
    ]
)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """The host's database: an SQLite file; or a PostgreSQL schema of the host's named by the
    URL's search path, with arflow's tables there too, or in a schema of their own next on
    the search path."""
    if request.param == "sqlite":
        yield Db(f"sqlite:///{tmp_path / 'erp.db'}")
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _postgres_engine(schema).dispose()  # skips (or fails in CI) without PostgreSQL
    book = f"a_{uuid.uuid4().hex[:12]}" if request.param == "postgres-arflow-schema" else None
    path = f"{schema},{book}" if book else schema
    url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={path}"})
    yield Db(url.render_as_string(hide_password=False), book)
    _drop_schema(schema)
    if book:
        _drop_schema(book)


def run(*args: str, timeout: int = 180) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def deploy(db: Db) -> None:
    out = run(str(EXAMPLE / "main.py"), *db.args, "deploy")
    assert re.fullmatch(r"arflow schema 0 -> \d+; host migrations at head\n", out), out


STORY = """\
C1 registered, credit limit 50,000.00 CNY
SO-1 30000 CNY entered: approved
  callback: order_approved SO-1
SO-2 16000 CNY entered: approved
  callback: order_approved SO-2
  callback: lock_placed C1
SO-3 10000 CNY entered: pending_approval
  callback: approval_requested SO-3
SO-4 40000 CNY entered: rejected
  callback: order_refused SO-4
INV-1 not posted (the printer jammed): rolled back, no callback
INV-1 30,000.00 and INV-2 16,000.00 CNY posted
PAY-1 30,000.00 CNY received
  callback: lock_lifted C1
daily run 2026-11-20: 1 recorded, 6 skipped
daily run 2026-12-05: 3 recorded, 0 skipped
  callback: lock_placed C1
daily run 2026-12-05: 0 recorded, 0 skipped
SO-1: entered approved, now invoiced
SO-2: entered approved, now invoiced
SO-3: entered pending_approval, now pending_approval
SO-4: entered rejected, now rejected
INV-1: partially_paid, open 16,000.00 CNY
INV-2: paid, open 0.00 CNY
C1 on hold: True
  notice: order SO-1 approved
  notice: order SO-2 approved
  notice: customer C1 on hold: new orders wait (exposure-90)
  notice: order SO-3 waits for credit approval
  notice: order SO-4 refused by credit control
  notice: customer C1 released (exposure-90)
  notice: customer C1 on hold: new orders wait (overdue-30)
"""


def logged(db: Db) -> dict[str, dict[str, object]]:
    """arflow's committed events, by id, read by a book of its own."""
    store = SqlStore(db.url, schema=db.arflow_schema, upgrade=False)
    try:
        return {
            str(body["event_id"]): body
            for body in (json.loads(raw) for _type, raw in store.event_log())
        }
    finally:
        store.close()


def test_the_story_on_a_deployed_database(db: Db) -> None:
    deploy(db)
    assert run(str(EXAMPLE / "main.py"), *db.args, "story") == STORY

    # the host's rows and arflow's book agree, row for event
    events = logged(db)
    host = sa.create_engine(db.url)
    store = SqlStore(db.url, schema=db.arflow_schema, upgrade=False)
    book = Ledger(store)
    try:
        with host.connect() as conn:
            for table, prefix in (
                ("customers", "customer"),
                ("sales_orders", "order"),
                ("invoices", "invoice"),
                ("payments", "payment"),
            ):
                key = "number" if table == "invoices" else "id"
                ids = set(conn.execute(sa.text(f"SELECT {key} FROM {table}")).scalars())
                posted = {e.split(":")[2] for e in events if e.startswith(f"erp:{prefix}:")}
                assert ids == posted, table
            for number, amount in conn.execute(sa.text("SELECT number, amount FROM invoices")):
                assert book.receivable(number).amount.amount == Decimal(amount)
            for oid, status in conn.execute(sa.text("SELECT id, status FROM sales_orders")):
                assert str(book.get("order", oid).state) in (status, "invoiced")
            assert conn.execute(sa.text("SELECT on_hold FROM customers")).scalar() in (True, 1)
    finally:
        store.close()

    # the host's autogenerate proposes nothing: not for its own tables, not for arflow's
    out = run("-m", "alembic", "-c", str(EXAMPLE / "alembic.ini"), "-x", f"db={db.url}", "check")
    assert "No new upgrade operations detected" in out
    # ... because of the hook: without it, it would drop every table of arflow's (in a schema
    # of their own too: PostgreSQL's reflection lists every table on the search path)
    with host.connect() as conn:
        naive = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    dropped = {d[1].name for d in naive if d[0] == "remove_table"}
    assert dropped == TABLE_NAMES
    host.dispose()


DYING_HOST = """
import sys
from datetime import date
import sqlalchemy as sa
from host.app import App
from host.services import post_invoice

app = App(sys.argv[1])
with app.transaction() as s:
    post_invoice(app, s, "INV-K", "C1", "500", date(2026, 10, 5), date(2026, 11, 4))
    s.flush()
    rows = s.execute(sa.text("SELECT count(*) FROM invoices")).scalar()
    events = len([1 for _t, b in app.arflow(s).store.event_log() if "INV-K" in b])
    print("written", rows, events, flush=True)
    sys.stdin.read()  # until killed (the test closes stdin if it could not kill)
"""


def test_a_host_killed_between_its_write_and_its_commit_leaves_nothing(db: Db) -> None:
    deploy(db)
    app = db.app()
    try:
        with app.transaction() as s:
            register_customer(
                app, s, "C1", "ACME", "ap@acme.example", "50000", "CNY", date(2026, 10, 1)
            )
        child = subprocess.Popen(
            [sys.executable, "-c", DYING_HOST, db.url],
            env=ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdin is not None and child.stderr is not None
        try:
            ready, _, _ = select.select([child.stdout], [], [], 120)
            line = child.stdout.readline() if ready else ""
            os.kill(child.pid, signal.SIGKILL)  # inside its transaction, before its commit
        finally:
            child.stdin.close()
            code = child.wait(timeout=60)
            err = child.stderr.read()
            child.stdout.close()
            child.stderr.close()
        assert line == "written 1 1\n", err  # both written, in its transaction
        assert code == -signal.SIGKILL
        with app.sessions() as s:
            assert s.get(InvoiceRow, "INV-K") is None
        assert "erp:invoice:INV-K" not in logged(db)

        # and the same business action goes through afterwards, once
        with app.transaction() as s:
            post_invoice(app, s, "INV-K", "C1", "500", date(2026, 10, 5), date(2026, 11, 4))
        with app.sessions() as s:
            assert s.get_one(InvoiceRow, "INV-K").amount == Decimal("500")
        assert "erp:invoice:INV-K" in logged(db)
    finally:
        app.close()


def test_a_rolled_back_host_transaction_calls_no_callback(db: Db) -> None:
    deploy(db)
    app = db.app()
    try:
        with app.transaction() as s:
            register_customer(
                app, s, "C1", "ACME", "ap@acme.example", "50000", "CNY", date(2026, 10, 1)
            )
        with pytest.raises(RuntimeError), app.transaction() as s:
            enter_sales_order(app, s, "SO-9", "C1", "60000", date(2026, 10, 2))
            assert app.arflow(s).ledger.get("order", "SO-9").state == "pending_approval"
            raise RuntimeError("the host fails before its commit")
        assert app.reactions.heard == []
        with app.sessions() as s:
            assert s.query(NotificationRow).count() == 0
            assert s.get(SalesOrderRow, "SO-9") is None
            assert s.get_one(CustomerRow, "C1").on_hold is False
        assert "erp:order:SO-9" not in logged(db)

        with app.transaction() as s:  # committed: the callbacks come, after the commit
            enter_sales_order(app, s, "SO-9", "C1", "60000", date(2026, 10, 2))
            assert app.reactions.heard == []
        assert [(h.kind, h.subject_id) for h in app.reactions.heard] == [
            ("approval_requested", "SO-9"),
            ("lock_placed", "C1"),
        ]
        with app.sessions() as s:
            assert s.get_one(CustomerRow, "C1").on_hold is True
            assert [n.kind for n in s.query(NotificationRow).order_by(NotificationRow.id)] == [
                "approval_requested",
                "lock_placed",
            ]
    finally:
        app.close()


def test_the_docs_quote_the_example_verbatim() -> None:
    """docs/embedding.md, "The reference embedding": every Python block is a piece of the
    example as it is, and the story printed there is the story the example prints."""
    doc = (ROOT / "docs" / "embedding.md").read_text(encoding="utf-8")
    section = doc[doc.index("## The reference embedding") :]
    section = section[: section.index("\n## ", 1)]
    sources = "\n".join(p.read_text(encoding="utf-8") for p in sorted(EXAMPLE.rglob("*.py")))
    blocks = re.findall(r"^```python\n(.*?)^```$", section, re.S | re.M)
    assert len(blocks) == 4
    for block in blocks:
        assert block in sources, block
    assert f"```text\n{STORY}```" in section
