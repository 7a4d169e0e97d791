"""A corpus of hostile import files: each is refused whole, with the file:row:column and
the words it must give, and leaves the book as it was (nothing imported, on every store).

The files are generated from the table below rather than kept on disk; each case is
imported together with a good customers file, so that "nothing imported" is tested too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from arflow import ImportRejected, Ledger, MemoryStore, Store, dump_book
from arflow.importer import import_files
from arflow.store.sql import SqlStore

from .test_importer import NOW

GOOD_CUSTOMERS = "id,name\nC1,Acme\nC2,Northwind\n"
INV = "number,customer_id,issue_date,due_date,amount,currency,occurred_at\n"
CUS = "id,name,contact_email,contact_phone,salesperson,credit_limit,currency,payment_terms_days\n"
PAY = "payment_id,customer_id,amount,currency,received_on,allocate_to\n"
CON = (
    "contract_id,customer_id,signed_on,amount,currency,node_id,node_amount,node_percent,"
    "due_days,due_milestone_id,milestone_planned_date\n"
)
BIG = "1" * 27
HUGE = "1" * 5000


def inv(
    number: str = "I1",
    issued: str = "2026-01-05",
    due: str = "",
    amount: str = "100",
    currency: str = "CNY",
    at: str = "",
    customer: str = "C1",
) -> str:
    return INV + f"{number},{customer},{issued},{due},{amount},{currency},{at}\n"


def cus(
    id_: str = "C9",
    email: str = "",
    phone: str = "",
    sales: str = "",
    limit: str = "",
    currency: str = "",
    terms: str = "",
) -> str:
    return CUS + f"{id_},Name,{email},{phone},{sales},{limit},{currency},{terms}\n"


def pay(amount: str = "10", received: str = "2026-02-01", alloc: str = "") -> str:
    return PAY + f"P1,C1,{amount},CNY,{received},{alloc}\n"


def con(
    cid: str = "K1",
    signed: str = "2026-01-10",
    amount: str = "1000",
    node: str = "N1",
    node_amount: str = "100",
    days: str = "",
    ms: str = "",
    planned: str = "",
) -> str:
    return CON + f"{cid},C1,{signed},{amount},CNY,{node},{node_amount},,{days},{ms},{planned}\n"


def inv_json(**fields: object) -> str:
    record: dict[str, object] = {
        "number": "I1",
        "customer_id": "C1",
        "issue_date": "2026-01-05",
        "amount": "100",
        "currency": "CNY",
    }
    record.update(fields)
    return json.dumps([record])


def contract_json(**fields: object) -> str:
    record: dict[str, object] = {
        "id": "K1",
        "customer_id": "C1",
        "signed_on": "2026-01-10",
        "amount": {"amount": "1000", "currency": "CNY"},
    }
    record.update(fields)
    return json.dumps([record])


def deep(n: int) -> str:
    return "[" * n + "]" * n


# (case, file name, content, [(row, column, words)]): the problems the refusal must list
# (it may list more).
CORPUS: list[tuple[str, str, str | bytes, list[tuple[int, str, str]]]] = [
    # -- amounts
    ("amount-27-digits", "invoices.csv", inv(amount=BIG), [(2, "amount", "out of range")]),
    ("amount-16-digits", "invoices.csv", inv(amount="1" * 16), [(2, "amount", "out of range")]),
    ("amount-5000-digits", "invoices.csv", inv(amount=HUGE), [(2, "amount", "out of range")]),
    (
        "amount-27-grouped",
        "invoices.csv",
        inv(amount='"' + f"{int(BIG):,}" + '"'),
        [(2, "amount", "out of range")],
    ),
    ("amount-exponent", "invoices.csv", inv(amount="1e30"), [(2, "amount", "exponent")]),
    ("amount-nan", "invoices.csv", inv(amount="NaN"), [(2, "amount", "not a decimal amount")]),
    ("amount-infinity", "invoices.csv", inv(amount="Infinity"), [(2, "amount", "not a decimal")]),
    ("amount-negative", "invoices.csv", inv(amount="-5"), [(2, "amount", "must be positive")]),
    ("amount-zero", "invoices.csv", inv(amount="0"), [(2, "amount", "must be positive")]),
    (
        "amount-bad-grouping",
        "invoices.csv",
        inv(amount='"1,0000.00"'),
        [(2, "amount", "ambiguous")],
    ),
    (
        "amount-float-artefact",
        "invoices.csv",
        inv(amount="0.30000000000000004"),
        [(2, "amount", "more decimals")],
    ),
    ("amount-currency-sign", "invoices.csv", inv(amount="¥100"), [(2, "amount", "not a decimal")]),
    # -- dates
    (
        "issued-9999-12-31",
        "invoices.csv",
        inv(issued="9999-12-31"),
        [(2, "issue_date", "outside the dates arflow accepts")],
    ),
    ("issued-year-1", "invoices.csv", inv(issued="0001-01-01"), [(2, "issue_date", "outside")]),
    ("due-9999-12-31", "invoices.csv", inv(due="9999-12-31"), [(2, "due_date", "outside")]),
    ("issued-feb-30", "invoices.csv", inv(issued="2026-02-30"), [(2, "issue_date", "not a date")]),
    (
        "issued-month-13",
        "invoices.csv",
        inv(issued="2026-13-01"),
        [(2, "issue_date", "not a date")],
    ),
    ("issued-compact", "invoices.csv", inv(issued="20260105"), [(2, "issue_date", "not a date")]),
    (
        "issued-full-width",
        "invoices.csv",
        inv(issued="２０２６-01-05"),
        [(2, "issue_date", "not a date")],
    ),
    ("due-before-issue", "invoices.csv", inv(due="2025-01-01"), [(2, "due_date", "before")]),
    (
        "occurred-past-horizon",
        "invoices.csv",
        inv(at="9999-12-31T23:59:59-10:00"),
        [(2, "occurred_at", "outside")],
    ),
    (
        "occurred-naive",
        "invoices.csv",
        inv(at="2026-01-05T09:00:00"),
        [(2, "occurred_at", "no UTC offset")],
    ),
    # -- currencies
    ("currency-unknown", "invoices.csv", inv(currency="XXX"), [(2, "currency", "ISO 4217")]),
    ("currency-rmb", "invoices.csv", inv(currency="RMB"), [(2, "currency", "is CNY")]),
    # -- identifiers: every backend stores the same ids
    ("nul-in-number", "invoices.csv", inv(number="I\x001"), [(2, "number", "U+0000")]),
    (
        "nul-in-customer-ref",
        "invoices.csv",
        inv(customer="C\x001"),
        [(2, "customer_id", "U+0000")],
    ),
    ("cr-in-number", "invoices.csv", inv(number='"I\r1"'), [(2, "number", "U+000D")]),
    ("lf-in-number", "invoices.csv", inv(number='"I\n1"'), [(2, "number", "U+000A")]),
    ("tab-in-number", "invoices.csv", inv(number="I\t1"), [(2, "number", "U+0009")]),
    (
        "line-separator-in-number",
        "invoices.csv",
        inv(number="I\u20281"),
        [(2, "number", "U+2028")],
    ),
    ("zero-width-in-number", "invoices.csv", inv(number="I\u200b1"), [(2, "number", "U+200B")]),
    ("number-too-long", "invoices.csv", inv(number="I" * 101), [(2, "number", "at most 100")]),
    # -- the CSV itself
    (
        "missing-column",
        "invoices.csv",
        "number,customer_id,issue_date,currency\nI1,C1,2026-01-05,CNY\n",
        [(1, "amount", "required column is missing")],
    ),
    (
        "unknown-column",
        "invoices.csv",
        inv().replace("occurred_at", "colour"),
        [(1, "colour", "unknown column")],
    ),
    (
        "extra-field",
        "invoices.csv",
        INV + "I1,C1,2026-01-05,,100,CNY,,x\n",
        [(2, "-", "8 fields, the header has 7")],
    ),
    ("empty-file", "invoices.csv", "", [(1, "-", "the file is empty")]),
    (
        "not-utf8",
        "invoices.csv",
        (INV + "I1,C1,2026-01-05,,100,CNY,\n").encode() + "发票,C1".encode("gbk") + b"\n",
        [(3, "-", "not UTF-8")],
    ),
    (
        "same-number-twice",
        "invoices.csv",
        inv() + "I1,C1,2026-01-06,,5,CNY,\n",
        [(3, "number", "appears twice")],
    ),
    (
        "unknown-customer",
        "invoices.csv",
        inv(customer="C404"),
        [(2, "customer_id", "unknown customer")],
    ),
    (
        "csv-quote-syntax",
        "invoices.csv",
        INV + 'I1,C1,2026-01-05,,"10"0,CNY,\n',
        [(2, "-", "CSV syntax")],
    ),
    ("csv-huge-field", "invoices.csv", inv(number="x" * 200_000), [(2, "-", "CSV syntax")]),
    # -- customers: addresses
    (
        "email-two-addresses",
        "customers.csv",
        cus(email='"a@x.com, b@y.com"'),
        [(2, "contact_email", "one address")],
    ),
    (
        "email-semicolon-list",
        "customers.csv",
        cus(email="a@x.com;b@y.com"),
        [(2, "contact_email", "one address")],
    ),
    (
        "email-display-name",
        "customers.csv",
        cus(email="Ann <a@x.com>"),
        [(2, "contact_email", "not an e-mail address")],
    ),
    (
        "email-line-break",
        "customers.csv",
        cus(email='"a@x.com\nBcc: c@z.com"'),
        [(2, "contact_email", "U+000A")],
    ),
    (
        "salesperson-line-break",
        "customers.csv",
        cus(sales='"w@x.com\r\nBcc: c@z.com"'),
        [(2, "salesperson", "U+000D")],
    ),
    ("phone-nul", "customers.csv", cus(phone="+86\x00123"), [(2, "contact_phone", "U+0000")]),
    ("customer-id-nul", "customers.csv", cus(id_="C\x009"), [(2, "id", "U+0000")]),
    (
        "credit-limit-27-digits",
        "customers.csv",
        cus(limit=BIG, currency="CNY"),
        [(2, "credit_limit", "out of range")],
    ),
    (
        "terms-too-long",
        "customers.csv",
        cus(terms="99999"),
        [(2, "payment_terms_days", "less than or equal to 3650")],
    ),
    (
        "terms-exponent",
        "customers.csv",
        cus(terms="1e5"),
        [(2, "payment_terms_days", "not a whole number")],
    ),
    # -- payments
    ("payment-27-digits", "payments.csv", pay(amount=BIG), [(2, "amount", "out of range")]),
    (
        "payment-past-horizon",
        "payments.csv",
        pay(received="9999-12-31"),
        [(2, "received_on", "outside")],
    ),
    (
        "allocation-27-digits",
        "payments.csv",
        pay(alloc=f"I1:{BIG}"),
        [(2, "allocate_to", "out of range")],
    ),
    ("allocation-nul", "payments.csv", pay(alloc="I\x001:5"), [(2, "allocate_to", "U+0000")]),
    # -- contracts (CSV)
    ("contract-27-digits", "contracts.csv", con(amount=BIG), [(2, "amount", "out of range")]),
    (
        "contract-signed-9999",
        "contracts.csv",
        con(signed="9999-12-31"),
        [(2, "signed_on", "outside")],
    ),
    ("node-27-digits", "contracts.csv", con(node_amount=BIG), [(2, "node_amount", "out of range")]),
    (
        "milestone-9999",
        "contracts.csv",
        con(ms="M1", planned="9999-12-31"),
        [(2, "milestone_planned_date", "outside")],
    ),
    ("due-days-4000", "contracts.csv", con(days="4000"), [(2, "due_days", "3650")]),
    ("contract-id-nul", "contracts.csv", con(cid="K\x001"), [(2, "contract_id", "U+0000")]),
    # -- JSON and JSON lines
    (
        "json-nested-100000",
        "invoices.json",
        "[" + deep(100_000) + "]",
        [(1, "-", "nested too deep")],
    ),
    ("jsonl-nested-100000", "invoices.jsonl", deep(100_000) + "\n", [(1, "-", "nested too deep")]),
    (
        "json-int-5000-digits",
        "invoices.json",
        inv_json(amount=0).replace('"amount": 0', '"amount": ' + HUGE),
        [(1, "-", "5000 digits")],
    ),
    (
        "jsonl-int-5000-digits",
        "invoices.jsonl",
        '{"amount": ' + HUGE + "}\n",
        [(1, "-", "5000 digits")],
    ),
    (
        "json-int-30-digits",
        "invoices.json",
        inv_json(amount=10**30),
        [(1, "amount", "out of range")],
    ),
    (
        "json-float-1e400",
        "invoices.json",
        inv_json(amount=0).replace('"amount": 0', '"amount": 1e400'),
        [(1, "amount", "exponent")],
    ),
    (
        "json-nan",
        "invoices.json",
        inv_json(amount=0).replace('"amount": 0', '"amount": NaN'),
        [(1, "amount", "not a decimal amount")],
    ),
    ("json-nul-escape", "invoices.json", inv_json(number="I\x001"), [(1, "number", "U+0000")]),
    (
        "json-lone-surrogate",
        "invoices.json",
        inv_json(number="I\ud8001"),
        [(1, "number", "U+D800")],
    ),
    (
        "json-issued-9999",
        "invoices.json",
        inv_json(issue_date="9999-12-31"),
        [(1, "issue_date", "outside")],
    ),
    ("json-not-a-list", "invoices.json", "{}", [(0, "-", "expected a JSON list")]),
    ("json-record-not-object", "invoices.json", "[1]", [(1, "-", "expected a JSON object")]),
    (
        "json-amount-boolean",
        "invoices.json",
        inv_json(amount=True),
        [(1, "amount", "expected text")],
    ),
    (
        "json-trailing-comma",
        "invoices.json",
        inv_json()[:-1] + ",]",
        [(1, "-", "',' before the closing ']'")],
    ),
    ("jsonl-broken", "invoices.jsonl", '{"number": "I1",\n', [(1, "-", "invalid JSON")]),
    (
        "json-email-two-addresses",
        "customers.json",
        json.dumps([{"id": "C9", "name": "N", "contact_email": "a@x.com, b@y.com"}]),
        [(1, "contact_email", "one address")],
    ),
    (
        "json-contract-nested",
        "contracts.json",
        contract_json(payment_nodes=[json.loads(deep(30))]),
        [(1, "-", "nested more than 16 levels")],
    ),
    (
        "json-contract-signed-9999",
        "contracts.json",
        contract_json(signed_on="9999-12-31"),
        [(1, "signed_on", "outside")],
    ),
    (
        "json-contract-27-digits",
        "contracts.json",
        contract_json(amount={"amount": BIG, "currency": "CNY"}),
        [(1, "amount", "out of range")],
    ),
    (
        "json-milestone-9999",
        "contracts.json",
        contract_json(milestones=[{"id": "M1", "planned_date": "9999-12-31"}]),
        [(1, "milestones[0].planned_date", "outside")],
    ),
    ("json-contract-id-nul", "contracts.json", contract_json(id="K\x001"), [(1, "id", "U+0000")]),
    (
        "json-allocation-27-digits",
        "payments.json",
        json.dumps(
            [
                {
                    "payment_id": "P1",
                    "customer_id": "C1",
                    "amount": "5",
                    "currency": "CNY",
                    "received_on": "2026-02-01",
                    "allocate_to": [{"invoice": "I1", "amount": BIG}],
                }
            ]
        ),
        [(1, "allocate_to", "out of range")],
    ),
]


def make_store(kind: str, tmp_path: Path) -> Store:
    return MemoryStore() if kind == "memory" else SqlStore(f"sqlite:///{tmp_path / 'book.db'}")


def write_case(folder: Path, name: str, content: str | bytes) -> list[Path]:
    path = folder / name
    path.write_bytes(
        content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
    )
    if name.startswith("customers"):
        return [path]
    good = folder / "customers.csv"
    good.write_text(GOOD_CUSTOMERS)
    return [good, path]


def check_refused(
    ledger: Ledger, paths: list[Path], name: str, expected: list[tuple[int, str, str]]
) -> ImportRejected:
    before = dump_book(ledger.store), ledger.store.event_count(), ledger.store.audit_count()
    with pytest.raises(ImportRejected) as info:
        import_files(ledger, paths, now=NOW)
    after = dump_book(ledger.store), ledger.store.event_count(), ledger.store.audit_count()
    assert after == before, "a refused import changed the book"
    problems = info.value.problems
    for row, column, words in expected:
        found = [p for p in problems if p[0].endswith(name) and p[1:3] == (row, column)]
        assert found, f"no problem at {name}:{row}:{column} in {problems}"
        assert any(words.lower() in p[3].lower() for p in found), (words, found)
        assert f"{name}:{row}:{column}: " in str(info.value)
    return info.value


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 58
    assert len({case for case, *_ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize(
    ("case", "name", "content", "expected"), CORPUS, ids=[c[0] for c in CORPUS]
)
def test_a_hostile_file_is_refused_whole_at_its_row_and_column(
    kind: str,
    case: str,
    name: str,
    content: str | bytes,
    expected: list[tuple[int, str, str]],
    tmp_path: Path,
) -> None:
    ledger = Ledger(make_store(kind, tmp_path))
    try:
        check_refused(ledger, write_case(tmp_path, name, content), name, expected)
    finally:
        ledger.store.close()


#: The cases where stores could differ (what they can hold: ids, text, amounts, dates).
BACKEND_CASES = [
    c
    for c in CORPUS
    if any(
        word in c[0]
        for word in ("nul", "too-long", "surrogate", "-in-number", "line-break", "27", "9999")
    )
]


@pytest.mark.parametrize(
    ("case", "name", "content", "expected"), BACKEND_CASES, ids=[c[0] for c in BACKEND_CASES]
)
def test_every_store_refuses_the_same_identifiers(
    store: Store,
    case: str,
    name: str,
    content: str | bytes,
    expected: list[tuple[int, str, str]],
    tmp_path: Path,
) -> None:
    """A NUL byte was accepted on SQLite and a traceback on PostgreSQL: the models refuse
    it (and line breaks, and ids longer than every store keeps) before any store sees it."""
    check_refused(Ledger(store), write_case(tmp_path, name, content), name, expected)


def test_the_reader_process_refuses_the_corpus_alike(tmp_path: Path) -> None:
    """The same refusals when a second process reads the files (a sample of the corpus)."""
    sample = [
        c
        for c in CORPUS
        if c[0]
        in {
            "amount-27-digits",
            "json-nested-100000",
            "json-int-5000-digits",
            "nul-in-number",
            "issued-9999-12-31",
        }
    ]
    for case, name, content, expected in sample:
        folder = tmp_path / case
        folder.mkdir()
        ledger = Ledger(MemoryStore())
        paths = write_case(folder, name, content)
        before = dump_book(ledger.store)
        with pytest.raises(ImportRejected) as info:
            import_files(ledger, paths, now=NOW, reader_process=True)
        assert dump_book(ledger.store) == before
        row, column, words = expected[0]
        assert any(
            p[1:3] == (row, column) and words.lower() in p[3].lower() for p in info.value.problems
        ), info.value.problems


def test_an_unterminated_json_record_is_refused_in_linear_time(tmp_path: Path) -> None:
    """A record that never closes was decoded again after every 64 KiB read: 4 MiB of
    numbers took 12 s. Reads now double, so it is refused in about a second (the bound
    here is generous, for a loaded machine)."""
    path = tmp_path / "invoices.json"
    path.write_text('[{"tags": [' + "1," * (2 << 20))
    ledger = Ledger(MemoryStore())
    start = time.monotonic()
    check_refused(ledger, [path], "invoices.json", [(1, "-", "invalid JSON")])
    assert time.monotonic() - start < 6
