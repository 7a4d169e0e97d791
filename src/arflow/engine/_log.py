"""The engine's logger and the run its records are about.

Every record about a run carries ``extra={"arflow_run": "<as_of>/<run id>"}`` (and the
same text in its message); a record about a decision also carries ``arflow_decision``.
:func:`running` sets the run for the code a run calls (recording, sweeping), so those
records carry it without passing it along.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date

log = logging.getLogger("arflow.engine")

_RUN: ContextVar[str | None] = ContextVar("arflow_run", default=None)


def current_run() -> str | None:
    """The run being recorded in this context (``as_of/run id``), or None outside a run."""
    return _RUN.get()


@contextmanager
def running(as_of: date) -> Iterator[str]:
    """A new run id for ``as_of``, current for the code inside the block."""
    run = f"{as_of.isoformat()}/{uuid.uuid4().hex[:12]}"
    token = _RUN.set(run)
    try:
        yield run
    finally:
        _RUN.reset(token)


def log_decision(what: str, key: str, status: str) -> None:
    """A debug record of a decision recorded (``what``: by a run, by an event)."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    run = current_run()
    log.debug(
        "decision %s %s (%s)%s",
        key,
        what,
        status,
        f" in run {run}" if run else "",
        extra={"arflow_run": run, "arflow_decision": key},
    )
