"""Every script in examples/ runs, and says what the docs say it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_load_book(tmp_path: Path) -> None:
    out = run("load_book.py", f"sqlite:///{tmp_path / 'ex.db'}")
    assert out.splitlines() == [
        "INV-2: due 2026-10-31, partially_paid, open 28,000.00 CNY",
        "balance: 28,000.00 CNY",
        "exposure: 53,000.00 CNY",
        "credit available: 47,000.00 CNY",
    ]


def test_rule_authoring_worked_example_passes() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(EXAMPLES / "rule_authoring"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_rule_authoring_doc_quotes_the_example_verbatim() -> None:
    doc = (EXAMPLES.parent / "docs" / "rule-authoring.md").read_text(encoding="utf-8")
    for name in ("policy/dunning.yaml", "test_policy.py"):
        text = (EXAMPLES / "rule_authoring" / name).read_text(encoding="utf-8")
        assert text in doc, name


def test_dunning_day_against_a_local_smtp_server(tmp_path: Path) -> None:
    out = run("dunning_day_smtp.py", f"sqlite:///{tmp_path / 'smtp.db'}")
    assert "dispatched: 2 sent, 0 to retry, 0 dead" in out
    assert "--- to ap@huadong.example.cn: 发票今日到期" in out
    assert "- INV-101：¥12,500.00" in out and "- INV-102：¥8,000.00" in out
    assert "--- to payables@northwind.example: Invoice due today" in out
    assert out.rstrip().endswith("run 2026-03-02 again: 0 decisions, nothing queued twice")


def test_credit_distributor_checks_orders_at_entry() -> None:
    """Seed 004's flow (docs/credit.md): an order within limit approved, one over 90% of the
    limit sent for approval and approved only by a holder of the role, a suspended
    customer's order refused with the lock's reason, a prepayment applied to the invoice."""
    out = run("credit_distributor.py").splitlines()
    assert out[:4] == [
        "SO-A1 (A1, 50,000 CNY): approved",
        "SO-B1 (B1, 4,000 CNY): pending_approval",
        "SO-C1 (C1, 1,000 CNY): rejected",
        "SO-D1 (D1, 20,000 CNY): approved",
    ]
    assert out[4] == (
        "  SO-C1 refused by arflow-engine: Anything over 30 days overdue suspends the customer."
    )
    assert out[5].startswith("  intern: order 'SO-B1': 'intern' may not decide it")
    assert out[6:] == [
        "SO-B1 after the sales manager's approval: approved",
        "INV-D1: paid, paid 20,000.00 CNY, open 0.00 CNY",
    ]


def test_contract_to_cash_tells_the_seed_000_story(tmp_path: Path) -> None:
    """Seed 000's contract (30% on signing, 40% on installation with a delivery note, 30%
    on acceptance + 30 days), an 8% discount up to the CEO, invoice requests held until
    their documents, and where the contract stands at each stage."""
    out = run("contract_to_cash.py", f"sqlite:///{tmp_path / 'k.db'}").splitlines()
    assert out[:4] == [
        "discount 8%: step sales_manager, owner wang.sm",
        "discount 8%: step sales_director, owner zhao.sd",
        "discount 8%: step ceo, owner chen.ceo",
        "discount 8%: approved",
    ]
    text = "\n".join(out)
    assert "refused: invoice INV-EARLY: milestone 'M-acc' is not done yet" in text
    assert "IR-K1-install: awaiting_documents, 400,000.00 CNY, missing ('delivery_note',)" in out
    assert "    IR-K1-install: invoice_request (waiting: document: delivery_note)" in out
    assert (
        "refused: invoice request 'IR-K1-install' cannot 'approve': missing delivery_note" in text
    )
    assert "    IR-K1-install: invoice_request (waiting: approval by finance)" in out
    assert "2026-06-10 accepted: due, owner li.sales" in out
    assert "    INV-K1-2: due (waiting: payment of 400,000.00 CNY, due 2026-06-03)" in out
    assert out[-5:] == [
        "2026-07-01 paid: paid, owner -",
        "    INV-K1-1: paid (waiting: -)",
        "    INV-K1-2: paid (waiting: -)",
        "    INV-K1-3: paid (waiting: -)",
        "balance: nothing open",
    ]
