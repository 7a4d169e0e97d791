"""The importer's reader process.

A large import spends about as long reading and checking its files (CSV, the row checks,
the pydantic events) as applying and storing the events. :func:`messages` starts this
module in a second Python process, which reads and checks the files while the importing
process applies what it has sent: both cores work. The reader hands plain invoices over
as :class:`~arflow.rows.PlainInvoice` tuples (strings and integers, cheap to pickle;
rebuilding a pydantic model on this side would cost what parsing it did there) and any
other event as its JSON.

The stream is a series of frames on the reader's standard output, each a 4-byte length
and a pickle of one message: ``("items", [(file number, row, item), ...])``,
then ``("end", problems, counts)``, or ``("error", exception)`` when the reader failed.
Pickle is safe here: both ends are this module, started by the importing process.
"""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import arflow

_FRAME = struct.Struct("<I")
#: Items per frame: large enough that framing costs nothing, small enough that the
#: importing process starts early and the pipe holds little.
_BATCH = 1000


class ReaderFailed(RuntimeError):
    """The reader process stopped without saying why (killed, out of memory)."""


def messages(spec: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """Start the reader on ``spec`` (files, plan, actor, now: what ``_Run`` needs) and give
    its messages as they come, up to and including ``("end", ...)``. A reader's exception
    is raised here; the process is stopped when the caller stops reading."""
    package_root = str(Path(arflow.__file__).resolve().parent.parent)
    boot = (
        "import sys\n"
        f"root = {package_root!r}\n"
        "if root not in sys.path:\n"
        "    sys.path.insert(0, root)\n"
        "from arflow._reader import serve\n"
        "serve()\n"
    )
    spec = {**spec, "package": str(Path(arflow.__file__).resolve())}
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [sys.executable, "-c", boot],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(spec).encode())
            proc.stdin.close()
            read = proc.stdout.read
            while True:
                head = read(_FRAME.size)
                if len(head) < _FRAME.size:
                    proc.wait()
                    errors.seek(0)
                    said = errors.read().decode(errors="replace").strip()
                    raise ReaderFailed(
                        f"the import's reader process stopped (exit code {proc.returncode})"
                        + (f": {said[-2000:]}" if said else "")
                    )
                message = pickle.loads(read(_FRAME.unpack(head)[0]))
                if message[0] == "error":
                    raise message[1]
                yield message
                if message[0] == "end":
                    break
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()


def _send(out: BinaryIO, message: tuple[Any, ...]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_FRAME.pack(len(data)))
    out.write(data)


def serve() -> None:
    """The reader's side: read the files of the spec on standard input and send what the
    importing process must apply (see the module's docstring)."""
    from ._gc import fewer_gc_passes
    from .events import InvoiceIssued
    from .importer import _Rejected, _Run, _sourced
    from .rows import plain_invoice
    from .store.base import json_of

    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not break the stream
    spec = json.loads(sys.stdin.buffer.read())
    try:
        if str(Path(arflow.__file__).resolve()) != spec["package"]:
            raise ReaderFailed(
                f"the reader process loaded arflow from {arflow.__file__}, not from "
                f"{spec['package']} as the importing process did"
            )
        run = _Run(len(spec["files"]), spec["actor"], datetime.fromisoformat(spec["now"]))
        run.files.extend(spec["files"])
        plan = [(file_no, Path(path), kind, fmt) for file_no, path, kind, fmt in spec["plan"]]
        batch: list[tuple[int, int, Any]] = []
        with fewer_gc_passes():
            try:
                for file_no, row, event in _sourced(run, plan):
                    if (
                        type(event) is InvoiceIssued
                        and event.contract_id is None
                        and event.payment_node_id is None
                        and event.order_id is None
                    ):
                        batch.append((file_no, row, plain_invoice(event)))
                    else:
                        batch.append((file_no, row, json_of(event)))
                    if len(batch) == _BATCH:
                        _send(out, ("items", batch))
                        batch = []
            except _Rejected:
                pass
        if batch:
            _send(out, ("items", batch))
        _send(out, ("end", run.problems, run.counts))
    except BaseException as exc:
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            exc = ReaderFailed(f"{type(exc).__name__}: {exc}")
        _send(out, ("error", exc))
    out.flush()
