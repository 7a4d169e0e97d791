"""The events of a plan of files, read and checked: what the importing process applies, or
what the reader process (``_reader``) sends it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

from ..events import Event
from ._cells import _json_type, _Row
from ._contracts import _contract_groups, _contract_json, _contract_rows
from ._formats import _csv_records, _flat, _json_records, _jsonl_records
from ._kinds import _BUILDERS
from ._run import _Rejected, _Run


def _file_events(
    run: _Run, file_no: int, path: Path, kind: str, fmt: str
) -> Iterator[tuple[int, Event]]:
    """(row, event) for every good record of one file; problems go to ``run``."""
    name = run.files[file_no]
    records: Iterator[tuple[int, Any]]
    if fmt == "csv":
        records = _csv_records(run, name, path, kind)
    elif fmt == "jsonl":
        records = _jsonl_records(run, name, path)
    else:
        records = _json_records(run, name, path)
    if kind == "contracts":
        if fmt == "csv":
            for group in _contract_groups(records):
                signed = _contract_rows(run, file_no, group)
                if signed is not None:
                    yield group[0][0], signed
        else:
            for row, value in records:
                signed = _contract_json(run, file_no, row, value)
                if signed is not None:
                    yield row, signed
        return
    build = _BUILDERS[kind]
    for row, value in records:
        if fmt == "csv":
            r = _Row(run, file_no, row, value)
        elif isinstance(value, dict):
            r = _Row(run, file_no, row, {})
            _flat(r, kind, value)
        else:
            run.problem(name, row, "-", f"expected a JSON object, got {_json_type(value)}")
            continue
        event = build(r)
        if event is not None:
            yield row, event


def _sourced(
    run: _Run, plan: list[tuple[int, Path, str, str]]
) -> Generator[tuple[int, int, Event], None, None]:
    """(file number, row, event) for the events to hand to the ledger. Once any problem
    is known it stops giving events (later rows may depend on the bad one) but keeps
    reading, so that every bad row is reported; at the end it raises ``_Rejected`` so the
    transaction rolls back."""
    for file_no, path, kind, fmt in plan:
        for row, event in _file_events(run, file_no, path, kind, fmt):
            run.counts[kind] += 1
            if not run.problems:
                yield file_no, row, event
    if run.problems:
        raise _Rejected
