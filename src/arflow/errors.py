"""The exception hierarchy: every refusal names what was wrong and with which object.

A call that raises one of these has changed nothing.
"""

from __future__ import annotations


class ArflowError(Exception):
    """Root of every error arflow raises on purpose."""


class ValidationError(ArflowError):
    """Input that does not describe a valid business object or event."""


class CurrencyMismatch(ArflowError):
    """Arithmetic or allocation across two currencies without an explicit rate."""

    def __init__(self, left: str, right: str, where: str = "") -> None:
        self.left, self.right = left, right
        suffix = f" ({where})" if where else ""
        super().__init__(f"currency mismatch: {left} vs {right}{suffix}")


class UnknownObject(ArflowError):
    """An event refers to a customer, invoice, contract... that the book does not hold."""

    def __init__(self, kind: str, object_id: str) -> None:
        self.kind, self.object_id = kind, object_id
        super().__init__(f"unknown {kind} {object_id!r}")


class DuplicateObject(ArflowError):
    """An event would create an object whose id the book already holds."""

    def __init__(self, kind: str, object_id: str) -> None:
        self.kind, self.object_id = kind, object_id
        super().__init__(f"{kind} {object_id!r} already exists")


class InvalidAmount(ArflowError):
    """A zero or negative amount where a positive one is required."""


class OverAllocation(ArflowError):
    """More money applied than a payment holds or than an item has open."""


class ClosedItem(ArflowError):
    """An event addresses an item that is already closed (paid, credited, written off)."""

    def __init__(self, kind: str, object_id: str, state: str, event: str) -> None:
        self.kind, self.object_id, self.state, self.event = kind, object_id, state, event
        super().__init__(f"{event}: {kind} {object_id!r} is closed (state {state!r})")


class IllegalTransition(ArflowError):
    """A lifecycle move that the state machine does not allow from the current state."""

    def __init__(self, kind: str, object_id: str, state: str, trigger: str) -> None:
        self.kind, self.object_id, self.state, self.trigger = kind, object_id, state, trigger
        super().__init__(f"{kind} {object_id!r} cannot {trigger!r} from state {state!r}")


class InvalidDates(ArflowError):
    """Dates that contradict each other, such as a due date before the issue date."""


class ImportRejected(ArflowError):
    """An import file with bad rows; nothing from it was imported.

    ``problems`` lists ``(file, row, column, reason)`` for every bad row found.
    """

    def __init__(self, problems: list[tuple[str, int, str, str]]) -> None:
        self.problems = problems
        shown = "\n".join(f"{f}:{r}:{c}: {why}" for f, r, c, why in problems[:50])
        more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} bad row(s), nothing imported:\n{shown}{more}")


class StoreError(ArflowError):
    """The store cannot be opened or its schema is newer than this library."""


class AmountOutOfRange(InvalidAmount):
    """An amount beyond the range arflow accepts (see ``arflow.money.MAX_INTEGER_DIGITS``).

    Accepted amounts are bounded so that any total of them stays exact.
    """

    def __init__(self, message: str, amount: object = None) -> None:
        self.amount = amount
        super().__init__(message)


class DateOutOfRange(InvalidDates):
    """A business date outside the horizon arflow accepts (see ``arflow.money.FIRST_DATE``
    and ``LAST_DATE``): past it, due dates and rule offsets would leave the calendar."""

    def __init__(self, message: str, value: object = None) -> None:
        self.value = value
        super().__init__(message)


# -- store failures (arflow.store): the database's own errors, translated at the store's edge


class StoreUnavailable(StoreError):
    """The database cannot be reached: the connection was refused, timed out or dropped.

    Raised from the driver's exception (``__cause__``); worth retrying later, unlike a
    :class:`StoreError` about the book itself (a file that is not a database, a newer
    schema, a constraint the writes broke).
    """
