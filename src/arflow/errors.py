"""The exception hierarchy: every refusal names what was wrong and with which object.

A call that raises one of these has changed nothing. Every exception arflow raises on
purpose is defined here and rooted at :class:`ArflowError`; a third-party exception (from
pydantic, SQLAlchemy, YAML, Jinja2, a driver) is translated at the public edge with
``raise ... from`` so that its cause stays readable::

    ArflowError
    ├── ValidationError              input that describes no valid object, event or rule
    │   ├── CalendarError            (also a ValueError)
    │   │   ├── MissingAnchor
    │   │   └── ParseError
    │   │       ├── OffsetError
    │   │       ├── ScheduleError
    │   │       └── WindowError
    │   ├── ExpressionError          a rule condition that does not parse or type-check
    │   ├── UnknownGrade             a credit grade the rule pack does not define
    │   ├── UnknownDimension         a figure filtered or grouped by a dimension not known
    │   ├── RuleLoadError            a rule pack with problems (file:line each)
    │   └── MilestoneNotDone         an invoice for a payment node before its milestone
    ├── CurrencyMismatch
    ├── UnknownObject
    ├── DuplicateObject
    ├── InvalidAmount
    │   ├── AmountOutOfRange
    │   └── OverInvoiced             more invoiced than a payment node or request holds
    ├── OverAllocation
    ├── ClosedItem
    ├── IllegalTransition
    │   └── DocumentsMissing         an invoice request sent on without its documents
    ├── NotAuthorized                an approval by someone who does not hold the role
    │   ├── RoleRequired             (an invoice request approved by a non-holder)
    │   └── NotReviewer              a proposal's action by someone not holding the review role
    ├── InvalidDates
    │   └── DateOutOfRange
    ├── ImportRejected               an import file with bad rows (file:row:column each)
    ├── StoreError                   the store cannot be opened, read or written
    │   ├── StoreUnavailable         the database cannot be reached (worth a retry)
    │   ├── SchemaTooOld             an arflow schema older than this arflow, not upgraded
    │   ├── SchemaTooNew             an arflow schema newer than this arflow
    │   ├── SchemaNotSupported       a schema for arflow's tables that cannot be used
    │   ├── UnsupportedDatabase      a host's connection to neither SQLite nor PostgreSQL
    │   ├── HostTransactionFailed    the host's transaction failed already
    │   └── RunNeedsOwnTransaction   a run in several processes inside the host's transaction
    ├── TemplateError                a template that cannot be found, parsed or rendered
    │   └── TemplateLimitError
    ├── DeliveryError                an adapter could not deliver a message
    │   ├── TemporaryFailure
    │   └── PermanentFailure
    ├── SignatureError               a webhook signature that does not verify
    ├── UnsupportedForDurable        a rule durable-rules cannot express
    ├── DurableError                 durable-rules failed while matching
    └── WorkerFailed                 a helper process stopped without saying why
        └── ReaderFailed             (the import's reader process)

``arflow.cli`` maps these classes to exit codes (see ``docs/cli.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


class ArflowError(Exception):
    """Root of every error arflow raises on purpose."""


class ValidationError(ArflowError):
    """Input that does not describe a valid business object or event."""


class UnknownGrade(ValidationError):
    """A credit grade the rule pack does not define (the engine refuses it; the ledger,
    which has no pack, takes any well-formed grade name)."""

    def __init__(self, grade: str, known: Sequence[str]) -> None:
        self.grade, self.known = grade, tuple(known)
        super().__init__(f"grade {grade!r} is not one of the pack's grades {', '.join(known)}")


class TermsNotAllowed(ValidationError):
    """Payment terms longer than the customer's grade allows, in a pack that names no
    approval tier for them (``settings.terms_tier``): refused by the engine."""

    def __init__(self, subject: str, asked: int, grade: str, allowed: int) -> None:
        self.subject, self.asked, self.grade, self.allowed = subject, asked, grade, allowed
        super().__init__(
            f"{subject}: {asked} days of payment terms, more than grade {grade} allows "
            f"({allowed} days), and the pack names no approval tier for longer terms "
            "(settings.terms_tier)"
        )


class UnknownDimension(ValidationError):
    """A figure of ``arflow.analytics`` asked to filter or group by a dimension it does not
    know (or to group by one it can only filter by)."""

    def __init__(self, dimension: str, known: Sequence[str], where: str = "") -> None:
        self.dimension, self.known = dimension, tuple(known)
        suffix = f" ({where})" if where else ""
        super().__init__(f"unknown dimension {dimension!r}{suffix}: use one of {', '.join(known)}")


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


class NotAuthorized(ArflowError):
    """An approval (or refusal) of an order by someone who does not hold a role it was
    sent to, or of an order that needs an approval path it was never given."""

    def __init__(self, order_id: str, who: str, why: str) -> None:
        self.order_id, self.who = order_id, who
        super().__init__(f"order {order_id!r}: {who!r} may not decide it: {why}")


class TaskClosed(ClosedItem):
    """A task that is done or cancelled already is completed, cancelled or reassigned."""

    def __init__(self, task_id: str, state: str, event: str) -> None:
        super().__init__("task", task_id, state, event)


class NotTaskOwner(ArflowError):
    """A task completed (or cancelled) by someone who neither owns it nor holds its role."""

    def __init__(self, task_id: str, who: str, owner: str, role: str | None) -> None:
        self.task_id, self.who, self.owner, self.role = task_id, who, owner, role
        held = f" nor holds its role {role!r}" if role else ""
        super().__init__(f"task {task_id!r}: {who!r} is not its owner ({owner!r}){held}")


class NotReviewer(NotAuthorized):
    """An action on a review proposal (edit, drop, hold, release) by someone who is not an
    active holder of the pack's ``settings.review_role``."""

    def __init__(self, who: str, role: str, why: str) -> None:
        self.order_id, self.who, self.role = "", who, role
        ArflowError.__init__(
            self, f"proposal: {who!r} may not review it: only a holder of {role} may ({why})"
        )


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


# -- the calendar ---------------------------------------------------------------------------


class CalendarError(ValidationError, ValueError):
    """A calendar, offset, schedule or window that cannot be built or used as asked.

    Also a ``ValueError``, so code that validates text with ``except ValueError`` catches it.
    """


class MissingAnchor(CalendarError):
    """An offset needs a date (the promise, the dispute...) that the caller did not give."""

    def __init__(self, anchor: str, text: str) -> None:
        self.anchor, self.text = anchor, text
        super().__init__(f"{text!r} needs the {anchor} date, which was not given")


class ParseError(CalendarError):
    """Text that does not follow the grammar; says what was expected and where.

    ``position`` is the 0-based column of the problem; the message shows it 1-based, as
    editors do.
    """

    def __init__(self, text: str, position: int, expected: str) -> None:
        self.text, self.position, self.expected = text, position, expected
        super().__init__(f"expected {expected} at column {position + 1} in {text!r}")


class OffsetError(ParseError):
    """Malformed offset text such as ``due+3x``."""


class ScheduleError(ParseError):
    """Malformed schedule text such as ``every 0d from due``."""


class WindowError(ParseError):
    """Malformed send-window text such as ``mon-fry 09:00-18:00``."""


# -- rules ----------------------------------------------------------------------------------


class ExpressionError(ValidationError):
    """A condition that does not parse or does not type-check; ``position`` is 0-based."""

    def __init__(self, message: str, text: str, position: int) -> None:
        self.text, self.position, self.reason = text, position, message
        super().__init__(f"{message} at column {position + 1} in {text!r}")


@dataclass(frozen=True)
class Problem:
    """One problem in a rule file: where (file, 1-based line, rule id) and what."""

    file: str
    line: int
    rule: str | None
    message: str

    def __str__(self) -> str:
        where = f" [{self.rule}]" if self.rule else ""
        shown = self.message if len(self.message) <= 500 else self.message[:500] + "..."
        return f"{self.file}:{self.line}:{where} {shown}"


class RuleLoadError(ValidationError):
    """A rule pack that cannot be loaded; ``problems`` has file, line, rule id, message."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line))
        shown = "\n".join(str(p) for p in self.problems[:50])
        more = f"\n... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the rules:\n{shown}{more}")


class UnsupportedForDurable(ArflowError):
    """A condition or pattern the durable-rules matcher cannot express; raised at build time."""


class DurableError(ArflowError):
    """durable-rules failed while matching; the session it used is retired, not reused."""


# -- messages and delivery ------------------------------------------------------------------


class TemplateError(ArflowError):
    """A template that cannot be found, parsed or rendered.

    The message names the template, its locale, file and line, and carries Jinja's message,
    which names variables and attributes, not their values: it is meant to be logged."""

    def __init__(
        self,
        name: str,
        locale: str | None,
        message: str,
        line: int | None = None,
        file: str | None = None,
    ) -> None:
        self.name, self.locale, self.line, self.file = name, locale, line, file
        where = f"template {name}" + (f" ({locale})" if locale else "")
        if file is not None:
            where += f", {file}"
        if line is not None:
            where += f" line {line}"
        super().__init__(f"{where}: {message}")


class TemplateLimitError(TemplateError):
    """A template that would build or do more than any message needs: a string, a message
    or a loop past the limits (``MAX_TEXT``, ``MAX_OUTPUT``, ``MAX_STEPS``...), or calls
    nested too deep. The message says which limit, and where when it can."""


#: What a failed delivery says about the contact's address.
Feedback = Literal["bounced", "invalid", "unsubscribed"]


class DeliveryError(ArflowError):
    """A delivery attempt failed. ``feedback`` says what it means for the contact."""

    temporary = True

    def __init__(
        self, message: str, *, feedback: Feedback | None = None, address: str | None = None
    ) -> None:
        super().__init__(message)
        self.feedback = feedback
        self.address = address


class TemporaryFailure(DeliveryError):
    """May work later: retried with backoff until the attempts run out."""


class PermanentFailure(DeliveryError):
    """Never will: the action goes to the dead letters at once (or to its fallback)."""

    temporary = False


class SignatureError(ArflowError):
    """A webhook signature that does not verify: wrong, malformed, or outside the time window."""


# -- helper processes -----------------------------------------------------------------------


class WorkerFailed(ArflowError):
    """A child process stopped without saying why (killed, out of memory), sent a broken
    message or loaded another arflow than this process."""


class ReaderFailed(WorkerFailed):
    """The import's reader process stopped without saying why (killed, out of memory) or
    sent a message that cannot be read; nothing was imported."""


class MilestoneNotDone(ValidationError):
    """An invoice (or its request's approval) for a payment node that falls due on a
    milestone not done yet, without an approval to invoice it early."""

    def __init__(self, what: str, milestone_id: str) -> None:
        self.milestone_id = milestone_id
        super().__init__(
            f"{what}: milestone {milestone_id!r} is not done yet; finance must approve an "
            "invoice before its milestone (InvoiceRequestApproved with before_milestone)"
        )


class OverInvoiced(InvalidAmount):
    """An invoice or invoice request for more than its payment node (or its request) has
    left to invoice."""

    def __init__(self, what: str, asked: object, left: object, of: str) -> None:
        self.asked, self.left = asked, left
        super().__init__(f"{what}: {asked} is more than the {left} left to invoice on {of}")


class DocumentsMissing(IllegalTransition):
    """An invoice request moved on to finance (or approved) before every document its
    payment node or order type requires is attached."""

    def __init__(self, request_id: str, state: str, trigger: str, missing: Sequence[str]) -> None:
        self.kind, self.object_id, self.state, self.trigger = (
            "invoice_request",
            request_id,
            state,
            trigger,
        )
        self.missing = tuple(missing)
        ArflowError.__init__(
            self,
            f"invoice request {request_id!r} cannot {trigger!r}: missing "
            f"{', '.join(self.missing)} (attach with DocumentAttached)",
        )


class RoleRequired(NotAuthorized):
    """A decision on an invoice request by someone who is not an active holder of the
    role it needs (finance) in the people directory."""

    def __init__(self, request_id: str, who: str, role: str, why: str) -> None:
        self.order_id = self.request_id = request_id
        self.who, self.role = who, role
        ArflowError.__init__(
            self,
            f"invoice request {request_id!r}: {who!r} may not decide it: only an active "
            f"holder of the role {role!r} may ({why})",
        )


class StepNotOwned(NotAuthorized):
    """A process step decided by someone who neither owns it nor is an active holder of
    its role in the people directory."""

    def __init__(self, process_id: str, step: str, who: str, why: str) -> None:
        self.order_id = self.process_id = process_id
        self.step, self.who = step, who
        ArflowError.__init__(
            self, f"process {process_id!r}, step {step!r}: {who!r} may not decide it: {why}"
        )


class StepClosed(IllegalTransition):
    """A decision on a process step that is no longer the process's current step."""

    def __init__(self, process_id: str, step: str, state: str, why: str) -> None:
        self.kind, self.object_id, self.state, self.trigger = "process", process_id, state, step
        self.step = step
        ArflowError.__init__(self, f"process {process_id!r}, step {step!r}: {why}")


class StepDecidedAlready(StepClosed):
    """A process step decided a second time (by the same person or another)."""


class StepTimedOut(StepClosed):
    """A process step decided after its deadline passed and the daily run moved the
    process on (``on_timeout``)."""


class DiscountWithoutTier(ValidationError):
    """A discount that no approval tier of the pack can grant: no discount process, or a
    discount beyond the widest limit of its chain."""

    def __init__(self, subject: str, discount: str, why: str) -> None:
        self.subject, self.discount = subject, discount
        super().__init__(f"{subject}: discount {discount} has no approval tier: {why}")


class ApprovalPending(IllegalTransition):
    """An order shipped while a process it waits for (its discount's approval chain) is
    open, or ended other than approved."""

    def __init__(self, order_id: str, why: str) -> None:
        self.kind, self.object_id, self.state, self.trigger = "order", order_id, "", "ship"
        ArflowError.__init__(self, f"order {order_id!r} cannot ship: {why}")


class EngineOnly(NotAuthorized):
    """An event only the engine may send (a process step timed out: the daily run decides
    that, by the pack's calendar) sent by someone else."""

    def __init__(self, process_id: str, step: str, who: str, engine: str) -> None:
        self.order_id = self.process_id = process_id
        self.step, self.who = step, who
        ArflowError.__init__(
            self,
            f"process {process_id!r}, step {step!r}: {who!r} may not time it out: only the "
            f"engine's daily run ({engine!r}) does, when the step's deadline has passed",
        )


class RaisePending(IllegalTransition):
    """A raise of a customer's credit limit asked while another raise of the same
    customer still waits for its approval process."""

    def __init__(self, customer_id: str, process_id: str, why: str) -> None:
        self.kind, self.object_id, self.state, self.trigger = (
            "customer",
            customer_id,
            "",
            "raise",
        )
        self.process_id = process_id
        ArflowError.__init__(
            self, f"customer {customer_id!r}: a raise of its credit limit waits already: {why}"
        )


# -- arflow's schema in a shared database (docs/storage.md#migrations-side-by-side) ----------


class SchemaTooOld(StoreError):
    """The database's arflow schema is older than this arflow, and the store was opened
    without upgrading it (``SqlStore(..., upgrade=False)``): run ``arflow db upgrade`` (or
    ``arflow.store.sql.upgrade``) first. ``found`` and ``expected`` are the versions."""

    def __init__(self, message: str, found: int = 0, expected: int = 0) -> None:
        self.found, self.expected = found, expected
        super().__init__(message)


class SchemaTooNew(StoreError):
    """The database's arflow schema is newer than this arflow knows: it is refused rather
    than misread (or downgraded). ``found`` and ``expected`` are the versions."""

    def __init__(self, message: str, found: int = 0, expected: int = 0) -> None:
        self.found, self.expected = found, expected
        super().__init__(message)


class SchemaNotSupported(StoreError):
    """A PostgreSQL schema for arflow's tables that cannot be used: on SQLite (which has
    none), a name that is not a plain identifier, or two different names for one book."""


class UnsupportedDatabase(StoreError):
    """A connection or engine of a database arflow does not keep its book in (it keeps it
    in SQLite or PostgreSQL)."""


class HostTransactionFailed(StoreError):
    """The host's connection or session is in a failed transaction (or closed): the host
    rolls it back before arflow can work in it."""


class RunNeedsOwnTransaction(StoreError):
    """A run in several processes was asked to run inside the host's transaction, which
    one process holds: run it with ``workers=1`` there, or in the book's own transaction."""
