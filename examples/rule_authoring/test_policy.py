"""The worked example of docs/rule-authoring.md: a policy file and the test that pins it."""

from datetime import date
from pathlib import Path

from arflow.testing import RuleHarness

POLICY = Path(__file__).parent / "policy"


def test_key_accounts_get_a_call_before_any_email() -> None:
    h = RuleHarness(POLICY)
    h.book.customer("KA", grade="A", email="ap@ka.example")
    h.book.customer("SME", grade="C", email="ap@sme.example")
    h.book.invoice("INV-1", "KA", 8_000, issued="2026-04-29", due="2026-05-29")  # a Friday
    h.book.invoice("INV-2", "SME", 8_000, issued="2026-04-29", due="2026-05-29")
    h.book.invoice("INV-3", "SME", 300, issued="2026-04-29", due="2026-05-29")  # under 500

    assert h.run_days("2026-05-25", "2026-06-30") == {
        date(2026, 5, 30): ["dunning others/reminder INV-2"],
        date(2026, 6, 2): ["dunning key-accounts/courtesy-call INV-1"],  # 2 business days
        date(2026, 6, 5): ["dunning key-accounts/reminder INV-1", "dunning others/sms INV-2"],
        date(2026, 6, 12): ["dunning others/sms INV-2"],
        date(2026, 6, 19): ["dunning others/sms INV-2"],
    }
    assert h.skipped("2026-05-30") == {
        "dunning others/reminder INV-3": "undisputed balance 300.00 is under the minimum 500"
    }


def test_a_payment_stops_the_ladder() -> None:
    h = RuleHarness(POLICY)
    h.book.customer("SME", grade="C", email="ap@sme.example")
    h.book.invoice("INV-2", "SME", 8_000, issued="2026-04-29", due="2026-05-29")
    h.run_days("2026-05-25", "2026-06-06")
    h.book.pay("PAY-1", "SME", 8_000, on="2026-06-08")
    assert h.run_days("2026-06-07", "2026-06-30") == {}
