"""The pipeline of an import: which files hold what, the event stream read in this process
or by the reader process (``_reader``), applied by the ledger in one transaction, and a
refusal (the importer's or the ledger's) mapped back to its file:row:column.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .._gc import fewer_gc_passes
from ..errors import (
    ArflowError,
    ClosedItem,
    CurrencyMismatch,
    DuplicateObject,
    ImportRejected,
    InvalidAmount,
    InvalidDates,
    OverAllocation,
    StoreError,
    UnknownObject,
)
from ..events import Event, parse_event
from ..ledger import Ledger
from ..rows import PlainInvoice
from . import _reader
from ._run import Problem, _Rejected, _Run
from ._schema import _FORMATS, COLUMNS, KINDS
from ._stream import _sourced

log = logging.getLogger("arflow.importer")

#: an info record every this many rows handed to the ledger
PROGRESS_EVERY = 10_000

#: Files larger than this in all are read by a second process (``arflow.importer._reader``).
READER_PROCESS_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ImportReport:
    """What an import did: events read per kind, and how many were new to the book."""

    files: tuple[str, ...]
    customers: int = 0
    contracts: int = 0
    invoices: int = 0
    payments: int = 0
    applied: int = 0
    people: int = 0

    @property
    def events(self) -> int:
        """Events read from the files (one per customer, contract, invoice, payment)."""
        return self.people + self.customers + self.contracts + self.invoices + self.payments

    @property
    def already_imported(self) -> int:
        """Events whose id the book already held: rows imported before, skipped."""
        return self.events - self.applied

    def __str__(self) -> str:
        people = f"{self.people} person(s), " if self.people else ""
        return (
            f"imported {len(self.files)} file(s): {people}{self.customers} customer(s), "
            f"{self.contracts} contract(s), {self.invoices} invoice(s), "
            f"{self.payments} payment(s); {self.applied} new event(s) applied, "
            f"{self.already_imported} already in the book"
        )


def _events(
    run: _Run, plan: list[tuple[int, Path, str, str]]
) -> Generator[Event | PlainInvoice, None, None]:
    """The event stream fed to ``Ledger.apply_all``, read in this process."""
    return _handed_over(run, plan, _sourced(run, plan))


def _from_reader(
    run: _Run, plan: list[tuple[int, Path, str, str]]
) -> Generator[Event | PlainInvoice, None, None]:
    """The event stream fed to the ledger, read by a second process (``arflow.importer._reader``):
    the files are parsed and checked there while this process applies what it sent, so
    an import uses both cores of a small machine."""
    return _handed_over(run, plan, _read_by_reader(run, plan))


def _handed_over(
    run: _Run,
    plan: list[tuple[int, Path, str, str]],
    sourced: Generator[tuple[int, int, Event | PlainInvoice], None, None],
) -> Generator[Event | PlainInvoice, None, None]:
    """The events of ``sourced``, each remembered as handed to the ledger (with where it
    came from, for a refusal's row); closing this closes ``sourced``."""
    kinds = {file_no: (kind, fmt) for file_no, _path, kind, fmt in plan}
    extra = {"arflow_import": run.id}
    current, n = -1, 0
    try:
        for file_no, row, event in sourced:
            run.handed_over(event.event_id, (run.files[file_no], row, *kinds[file_no]))
            if file_no != current:
                current = file_no
                log.info(
                    "%s: reading %s (%s)",
                    run.id,
                    run.files[file_no],
                    kinds[file_no][0],
                    extra=extra,
                )
            n += 1
            if n % PROGRESS_EVERY == 0:
                log.info(
                    "%s: %d rows handed to the ledger (%s row %d)",
                    run.id,
                    n,
                    run.files[file_no],
                    row,
                    extra=extra,
                )
            yield event
    finally:
        run.where = None
        sourced.close()


def _read_by_reader(
    run: _Run, plan: list[tuple[int, Path, str, str]]
) -> Generator[tuple[int, int, Event | PlainInvoice], None, None]:
    """:func:`_sourced`, read by the reader process: plain invoices come as
    :class:`~arflow.rows.PlainInvoice`, other events as their JSON; problems and counts
    arrive at the end, then ``_Rejected`` is raised as by :func:`_sourced`."""
    spec = {
        "files": run.files,
        "plan": [(file_no, str(path), kind, fmt) for file_no, path, kind, fmt in plan],
        "actor": run.actor,
        "now": run.now.isoformat(),
    }
    for message in _reader.messages(spec):
        if message[0] == "end":
            run.problems.extend(message[1])
            run.counts.update(message[2])
            break
        for file_no, row, item in message[1]:
            yield file_no, row, parse_event(item) if type(item) is str else item
    if run.problems:
        raise _Rejected


# -- which column a ledger refusal is about -------------------------------------------------------
_REFUSAL_COLUMNS: dict[str, dict[str, str]] = {
    "people": {"person": "id"},
    "customers": {"customer": "id"},
    "contracts": {
        "contract": "contract_id",
        "customer": "customer_id",
        "project": "project_id",
        "milestone": "due_milestone_id",
    },
    "invoices": {
        "receivable": "number",
        "customer": "customer_id",
        "contract": "contract_id",
        "payment node": "payment_node_id",
        "milestone": "payment_node_id",
        "order": "order_id",
    },
    "payments": {"payment": "payment_id", "customer": "customer_id", "receivable": "allocate_to"},
}
_REFUSAL_DEFAULTS: dict[type[ArflowError], str] = {
    InvalidDates: "due_date",
    InvalidAmount: "amount",
    CurrencyMismatch: "currency",
    OverAllocation: "allocate_to",
    ClosedItem: "allocate_to",
}


def _refusal_column(kind: str, fmt: str, exc: ArflowError) -> str:
    if kind == "contracts" and fmt != "csv":
        nested = {"contract": "id", "customer": "customer_id", "milestone": "milestones"}
        return nested.get(getattr(exc, "kind", ""), "-")
    if kind == "people" and isinstance(exc, UnknownObject):
        return "manager"  # the one person a new person's row refers to
    if isinstance(exc, UnknownObject | DuplicateObject | ClosedItem):
        col = _REFUSAL_COLUMNS[kind].get(exc.kind)
        if col is not None:
            return col
    for cls, col in _REFUSAL_DEFAULTS.items():
        if isinstance(exc, cls) and col in {*COLUMNS[kind][0], *COLUMNS[kind][1]}:
            return col
    return "-"


# -- the entry point ----------------------------------------------------------------------------
def _kind_of(path: Path, kind: str | None) -> str | None:
    if kind is not None:
        return kind
    stem = path.name.lower()
    if stem.startswith("person"):
        return "people"
    return next((k for k in KINDS if stem.startswith(k.removesuffix("s"))), None)


def _in_order(run: _Run, plan: list[tuple[int, Path, str, str]]) -> list[Problem]:
    """Problems by file (files that could not be read first, then in the order applied)
    and row; a ledger that reads ahead may find them out of that order."""
    rank = {run.files[item[0]]: i for i, item in enumerate(plan)}
    return sorted(run.problems, key=lambda p: (rank.get(p[0], -1), p[1]))


def import_files(
    ledger: Ledger,
    paths: Sequence[str | Path],
    *,
    kind: str | None = None,
    actor: str = "import",
    now: datetime | None = None,
    reader_process: bool | None = None,
) -> ImportReport:
    """Import ERP export files into the book, all of them or nothing.

    The kind of each file comes from its name (``people*.csv``, ``customers*.csv``,
    ``contracts*.json``, ``invoices*.jsonl``, ``payments*.csv``...; singular names work too)
    unless ``kind`` (``"people"``, ``"customers"``, ``"contracts"``, ``"invoices"`` or
    ``"payments"``) is given, which then applies to every path. Files are applied people
    first, then customers, payments last, whatever
    order they are given in. ``actor`` is recorded as who made the events; ``now`` is when
    customers were registered (rows without a date of their own), default the current time.
    ``reader_process``: read and check the files in a second process while this one applies
    them (about a third faster on a machine with two cores or more); default: when the
    files hold more than 16 MiB.

    Raises :class:`ImportRejected` listing every bad row as (file, row, column, reason),
    with nothing imported. Rows already imported (same kind and key) are skipped.
    """
    if kind is not None:
        plural = kind if kind in KINDS else "people" if kind == "person" else kind + "s"
        if plural not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        kind = plural
    if not actor:
        raise ValueError("actor must not be empty")
    run = _Run(len(paths), actor, now or datetime.now(UTC))
    plan: list[tuple[int, Path, str, str]] = []
    for file_no, p in enumerate(paths):
        path = Path(p)
        name = str(p)
        run.files.append(name)
        found = _kind_of(path, kind)
        fmt = _FORMATS.get(path.suffix.lower())
        if found is None:
            run.problem(
                name,
                0,
                "-",
                "cannot tell what the file holds: name it people*, customers*, contracts*, "
                "invoices* or payments* (or pass the kind)",
            )
        if fmt is None:
            run.problem(name, 0, "-", "unknown format: use .csv, .json or .jsonl")
        if not path.is_file():
            run.problem(name, 0, "-", "no such file")
        elif found is not None and fmt is not None:
            plan.append((file_no, path, found, fmt))
    plan.sort(key=lambda item: KINDS.index(item[2]))
    if reader_process is None:
        size = sum(path.stat().st_size for _file_no, path, _kind, _fmt in plan)
        reader_process = size > READER_PROCESS_BYTES and bool(sys.executable)
    stream: Generator[Event | PlainInvoice, None, None]
    stream = _from_reader(run, plan) if reader_process else _events(run, plan)
    extra = {"arflow_import": run.id}
    log.info(
        "%s started: %d file(s)%s",
        run.id,
        len(paths),
        ", read by a second process" if reader_process else "",
        extra=extra,
    )
    try:
        try:
            with fewer_gc_passes():
                applied = ledger.apply_all(stream)
        except _Rejected:
            log.warning(
                "%s rejected, nothing imported: %d problem(s)",
                run.id,
                len(run.problems),
                extra=extra,
            )
            raise ImportRejected(_in_order(run, plan)) from None
        except StoreError as exc:
            # the database failed, not a row: nothing to report against a row
            log.error("%s failed, nothing imported: %s", run.id, exc, extra=extra)
            raise
        except ArflowError as exc:
            # The refused event is the last one handed over, unless the ledger read ahead and
            # says which it was.
            where = run.recent.get(getattr(exc, "event_id", ""), run.where)
            if where is None:
                raise
            file, row, kind_, fmt_ = where
            run.problem(file, row, _refusal_column(kind_, fmt_, exc), str(exc))
            try:
                for _ in stream:  # keep reading: report the bad rows further down too
                    pass
            except _Rejected:
                pass
            log.warning(
                "%s rejected, nothing imported: %d problem(s)",
                run.id,
                len(run.problems),
                extra=extra,
            )
            raise ImportRejected(_in_order(run, plan)) from exc
    finally:
        stream.close()  # stops the reader process, if any
    log.info(
        "%s done: %d event(s) applied (%s)",
        run.id,
        applied,
        ", ".join(f"{n} {k}" for k, n in run.counts.items() if n),
        extra=extra,
    )
    return ImportReport(
        files=tuple(run.files),
        customers=run.counts["customers"],
        contracts=run.counts["contracts"],
        invoices=run.counts["invoices"],
        payments=run.counts["payments"],
        applied=applied,
        people=run.counts["people"],
    )
