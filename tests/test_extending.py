"""docs/extending.md: the worked planner, run exactly as the page shows it, plugs into the
engine and decides what the page says it does."""

from __future__ import annotations

import re
import sys
import types
from datetime import date
from pathlib import Path

from arflow import Contact, CustomerUpdated, Engine, MemoryStore, default_pack_path
from arflow.testing import BookBuilder

DOC = Path(__file__).resolve().parent.parent / "docs" / "extending.md"


def _planner_module() -> types.ModuleType:
    """The page's first Python block, as the module it says it is in the tree."""
    (code,) = re.findall(r"^```python\n(.*?)^```", DOC.read_text("utf-8"), re.S | re.M)[:1]
    name = "arflow.engine.planners._doc_unreachable"
    module = types.ModuleType(name)
    module.__package__ = "arflow.engine.planners"  # its relative imports resolve in the tree
    sys.modules[name] = module
    try:
        exec(compile(code, str(DOC), "exec"), module.__dict__)
    finally:
        del sys.modules[name]
    return module


def test_the_worked_planner_flags_an_unreachable_customer_once() -> None:
    doc = _planner_module()
    b = BookBuilder(MemoryStore())
    b.customer("C1", email="ap@c1.example")
    b.customer("C2", email="ap@c2.example")
    bounced = Contact(name="AP", email="ap@c2.example", email_invalid=True)
    b.apply(CustomerUpdated(**b._meta(), customer_id="C2", contacts=[bounced]))
    for cid in ("C1", "C2"):
        b.invoice(f"I-{cid}", cid, 10_000, issued="2026-01-01", due="2026-01-31")
    engine = Engine(b.ledger, default_pack_path())
    engine.customer_planners += (doc.UnreachableCustomers(),)
    day = date(2026, 3, 2)
    first = engine.run(day, first_run=True)
    flagged = [d for d in first.plan.decisions if d.rule == "unreachable-customer"]
    assert [(d.key, d.subject_id) for d in flagged] == [("alert:unreachable-customer:C2", "C2")]
    assert flagged[0].reason == "no contact of the customer can be reached by e-mail"
    assert first.failures == []
    assert engine.run(day).recorded == 0  # the day again: nothing twice
    assert b.ledger.store.decision("alert:unreachable-customer:C2") is not None
