"""The importer's reader process.

A large import spends about as long reading and checking its files (CSV, the row checks,
the pydantic events) as applying and storing the events. :func:`messages` starts
:func:`serve` in a second Python process (``arflow._child``), which reads and checks the
files while the importing process applies what it has sent: both cores work. The reader
hands plain invoices over as :class:`~arflow.rows.PlainInvoice` tuples (strings and
integers, cheap to pickle; rebuilding a pydantic model on this side would cost what parsing
it did there) and any other event as its JSON.

Messages: ``("items", [(file number, row, item), ...])`` as the files are read, then
``("end", problems, counts)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from .._child import Child, Send
from .._child import serve as _serve
from .._gc import fewer_gc_passes
from ..errors import ReaderFailed as ReaderFailed
from ..errors import WorkerFailed
from ..rows import is_plain, plain_invoice
from ..store.base import json_of
from ._run import _Rejected, _Run
from ._stream import _sourced

#: Items per message: large enough that framing costs nothing, small enough that the
#: importing process starts early and the pipe holds little.
_BATCH = 1000


def messages(spec: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """Start the reader on ``spec`` (files, plan, actor, now: what ``_Run`` needs) and give
    its messages as they come, up to and including ``("end", ...)``. A reader's exception
    is raised here; the process is stopped when the caller stops reading."""
    with Child("importer._reader", "serve", spec, "the import's reader process") as child:
        try:
            yield from child.messages()
        except ReaderFailed:
            raise
        except WorkerFailed as exc:
            raise ReaderFailed(str(exc)) from None


def serve() -> None:
    """The reader's side (see the module's docstring)."""
    _serve(_read)


def _read(spec: dict[str, Any], send: Send) -> None:
    run = _Run(len(spec["files"]), spec["actor"], datetime.fromisoformat(spec["now"]))
    run.files.extend(spec["files"])
    plan = [(file_no, Path(path), kind, fmt) for file_no, path, kind, fmt in spec["plan"]]
    batch: list[tuple[int, int, Any]] = []
    with fewer_gc_passes():
        try:
            for file_no, row, event in _sourced(run, plan):
                if is_plain(event):
                    batch.append((file_no, row, plain_invoice(event)))
                else:
                    batch.append((file_no, row, json_of(event)))
                if len(batch) == _BATCH:
                    send(("items", batch))
                    batch = []
        except _Rejected:
            pass
    if batch:
        send(("items", batch))
    send(("end", run.problems, run.counts))
