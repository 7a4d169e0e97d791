"""Issue 12's leftovers: terms from the grade for orders and contracts (to the pack's terms
tier, or refused), approval requests that reach their approvers, tier names checked when
the pack loads, the dunning skip for what unapplied credit covers, and send windows of
internal messages in the recipient's time zone. On memory, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

from arflow import Engine, Ledger, Store
from arflow.rules import default_pack_path
from arflow.rules.loader import load_pack
from arflow.testing import BookBuilder

DUE = date(2026, 2, 28)


# -- dunning: what the customer's unapplied credit covers ---------------------------------------


def test_dunning_says_an_item_is_covered_by_unapplied_credit(store: Store) -> None:
    b = BookBuilder(Ledger(store, apply_unapplied_cash=False))
    b.customer("C1", name="华东精密", email="ap@c1.example")
    b.pay("PRE", "C1", 1_000, on="2026-01-10")
    b.invoice("INV-1", "C1", 800, issued="2026-01-29", due=DUE)
    b.invoice("INV-2", "C1", 1_200, issued="2026-01-29", due=DUE)  # more than the credit
    engine = Engine(b.ledger, load_pack(default_pack_path()))
    result = engine.run(DUE, first_run=True)
    sent = {d.subject_id for d in result.plan.decisions if d.kind == "dunning"}
    skipped = [d for d in result.plan.skipped if d.subject_id == "INV-1" and d.occurrence == DUE]
    assert sent == {"INV-2"}
    assert skipped and {d.reason for d in skipped} == {
        "covered by unapplied credit of 1,000.00 CNY"
    }
    explained = engine.explain(skipped[0].key)
    assert explained["reason"] == "covered by unapplied credit of 1,000.00 CNY"
    assert explained["status"] == "skipped"
