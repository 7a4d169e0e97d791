"""The SQL store's edge: the driver's and SQLAlchemy's exceptions leave it as
:class:`~arflow.errors.StoreError`, saying what failed on which store (its URL without the
password), with the original exception as ``__cause__``.

One place does it (:class:`_Edge`, used as a context manager or, on methods of objects
that carry one as ``_edge``, through :func:`translated`). Inside a transaction, the reads a
ledger handler makes object by object (``get``, ``find``, ``has_event``...) are left as
they are: handlers refuse events with ``ArflowError``, and a broken database must not pass
for a refusal; what escapes the ``with store.transaction()`` block is translated there.
"""

from __future__ import annotations

import functools
import inspect
import re
import sqlite3
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, TypeVar, cast

import sqlalchemy as sa

from ...errors import StoreError, StoreUnavailable

F = TypeVar("F", bound=Callable[..., Any])

#: What the edge translates: SQLAlchemy's exceptions (the driver's come wrapped in them)
#: and sqlite3's own, from the pragmas run on the driver's connection.
_DRIVER_ERRORS = (sa.exc.SQLAlchemyError, sqlite3.Error)


class _Edge:
    """Translates driver errors into StoreError for one store (see the module)."""

    def __init__(self, url: sa.URL) -> None:
        self.where = url.render_as_string(hide_password=True)
        self._secret = url.password if isinstance(url.password, str) and url.password else None

    def __call__(self, what: str) -> _Translating:
        """A block whose driver errors become StoreError saying ``what`` failed."""
        return _Translating(self, what)

    def error(self, what: str, exc: BaseException) -> StoreError:
        """``exc`` as the StoreError to raise (from it): StoreUnavailable when the database
        could not be reached or the connection dropped."""
        orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else None
        reason = " ".join(str(orig if orig is not None else exc).split()) or type(exc).__name__
        if self._secret is not None:
            reason = reason.replace(self._secret, "***")
        kind = StoreUnavailable if _unavailable(exc) else StoreError
        return kind(f"{what} failed ({self.where}): {reason}")


def _unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached: a connection that could not
    be made (an operational error before any statement), one that dropped, or no
    connection free in the pool in time."""
    if isinstance(exc, sa.exc.TimeoutError):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    return exc.statement is None and isinstance(
        exc, sa.exc.OperationalError | sa.exc.InterfaceError
    )


class _Translating:
    """The block :meth:`_Edge.__call__` gives (a class rather than a generator: it wraps
    calls made thousands of times a run)."""

    __slots__ = ("_edge", "_what")

    def __init__(self, edge: _Edge, what: str) -> None:
        self._edge, self._what = edge, what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and isinstance(exc, _DRIVER_ERRORS):
            raise self._edge.error(self._what, exc) from exc


def translated(what: str) -> Callable[[F], F]:
    """A method of an object with an ``_edge`` whose driver errors become StoreError
    saying ``what`` failed; generator methods (and so ``@contextmanager`` ones, decorated
    under it) translate what escapes them, including what the ``with`` block raised."""

    def wrap(method: F) -> F:
        if inspect.isgeneratorfunction(method):

            @functools.wraps(method)
            def generator(self: Any, *args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                with self._edge(what):
                    return (yield from method(self, *args, **kwargs))

            return cast(F, generator)

        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with self._edge(what):
                return method(self, *args, **kwargs)

        return cast(F, call)

    return wrap


def _hidden(text: str) -> str:
    """``text`` with the password of any URL in it (``scheme://user:password@host``) hidden,
    as SQLAlchemy renders it: for messages about a URL that could not be parsed."""
    shown = re.sub(r"(://[^:/@\s]*:)\S*@", r"\1***@", text)
    if shown == text:  # no scheme://user:password@ in it: hide whatever comes before an @
        shown = re.sub(r"[^\s'\"/]*@", "***@", text)
    return shown
