"""arflow: accounts receivable as a library.

The public API is what this module lists in ``__all__``, together with the modules
``arflow.testing``, ``arflow.strategies``, ``arflow.adapters`` and ``arflow.rules`` (for rule
authors); everything else is private and may move between versions.

``import arflow`` stays light: the names that need SQLAlchemy, YAML, Jinja2 or the
holiday tables (the engine, the rule loader, the SQL store, templates, the importer) are
imported the first time they are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .actions import (
    Adapter,
    LogAdapter,
    MemoryAdapter,
    Message,
    PermanentFailure,
    TemporaryFailure,
)
from .adapters import adapter_from_url, register_adapter
from .domain import (
    Allocation,
    AuditRecord,
    CompanyProfile,
    Contact,
    Contract,
    CreditNote,
    CreditProfile,
    Customer,
    Dispute,
    DueRule,
    Milestone,
    Order,
    OrderLock,
    OrderState,
    Payment,
    PaymentNode,
    Person,
    PersonAddress,
    Project,
    PromiseStatus,
    PromiseToPay,
    Receivable,
    ReceivableState,
)
from .errors import (
    AmountOutOfRange,
    ArflowError,
    CalendarError,
    ClosedItem,
    CurrencyMismatch,
    DateOutOfRange,
    DeliveryError,
    DuplicateObject,
    DurableError,
    ExpressionError,
    IllegalTransition,
    ImportRejected,
    InvalidAmount,
    InvalidDates,
    MissingAnchor,
    NotAuthorized,
    NotReviewer,
    OffsetError,
    OverAllocation,
    ParseError,
    Problem,
    ReaderFailed,
    RuleLoadError,
    ScheduleError,
    SignatureError,
    StoreError,
    StoreUnavailable,
    TemplateError,
    TemplateLimitError,
    TermsNotAllowed,
    UnknownGrade,
    UnknownObject,
    UnsupportedForDurable,
    ValidationError,
    WindowError,
    WorkerFailed,
)
from .events import (
    AllocationRequest,
    BaseEvent,
    CashApplied,
    ContactFeedback,
    ContractSigned,
    CreditNoteIssued,
    CreditReviewed,
    CustomerRegistered,
    CustomerUpdated,
    DisputeOpened,
    DisputeResolved,
    Event,
    FactorPoints,
    InvoiceIssued,
    MilestoneCompleted,
    OrderApprovalRequested,
    OrderApproved,
    OrderRejected,
    OrderShipped,
    OrderSubmitted,
    PaymentReceived,
    PaymentReversed,
    PersonAdded,
    PersonLeft,
    PersonUpdated,
    PromiseBroken,
    PromiseMade,
    RefundIssued,
    WrittenOff,
    parse_event,
)
from .ledger import Applied, InvoiceRequest, Ledger
from .money import Money
from .outbox import Dispatcher, RetryPolicy
from .store import MemoryStore, Store, dump_book, open_store

if TYPE_CHECKING:
    from .analytics import (
        contract_view,
        falling_due,
        forecast,
        forecasts,
        high_risk,
        project_view,
    )
    from .calendar import BusinessCalendar, Offset, Schedule, SendWindow
    from .decisions import Decision, Notice
    from .engine import CreditScore, Engine, Failure, Plan, RunResult, review_event
    from .importer import import_files
    from .messages import TemplateSet, build_context, ledger_feedback
    from .rules import default_pack_path
    from .rules.loader import RulePack, load_pack
    from .store.sql import SqlStore
    from .testing import RuleHarness

__version__ = "0.1.0"

#: Public names imported on first use, and the module each comes from.
_LAZY = {
    "BusinessCalendar": "arflow.calendar",
    "Decision": "arflow.decisions",
    "CreditScore": "arflow.engine",
    "Engine": "arflow.engine",
    "review_event": "arflow.engine",
    "Failure": "arflow.engine",
    "Notice": "arflow.decisions",
    "Offset": "arflow.calendar",
    "Plan": "arflow.engine",
    "RuleHarness": "arflow.testing",
    "RulePack": "arflow.rules.loader",
    "RunResult": "arflow.engine",
    "Schedule": "arflow.calendar",
    "SendWindow": "arflow.calendar",
    "SqlStore": "arflow.store.sql",
    "TemplateSet": "arflow.messages",
    "build_context": "arflow.messages",
    "ledger_feedback": "arflow.messages",
    "default_pack_path": "arflow.rules",
    "import_files": "arflow.importer",
    "load_pack": "arflow.rules.loader",
    "contract_view": "arflow.analytics",
    "falling_due": "arflow.analytics",
    "forecast": "arflow.analytics",
    "forecasts": "arflow.analytics",
    "high_risk": "arflow.analytics",
    "project_view": "arflow.analytics",
}


def __getattr__(name: str) -> Any:
    """Import a heavy public name the first time it is asked for (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'arflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Adapter",
    "Allocation",
    "AllocationRequest",
    "AmountOutOfRange",
    "Applied",
    "ArflowError",
    "AuditRecord",
    "BaseEvent",
    "BusinessCalendar",
    "CalendarError",
    "CashApplied",
    "ClosedItem",
    "CompanyProfile",
    "Contact",
    "ContactFeedback",
    "Contract",
    "ContractSigned",
    "CreditNote",
    "CreditNoteIssued",
    "CreditProfile",
    "CreditReviewed",
    "CreditScore",
    "CurrencyMismatch",
    "Customer",
    "CustomerRegistered",
    "CustomerUpdated",
    "DateOutOfRange",
    "Decision",
    "DeliveryError",
    "Dispatcher",
    "Dispute",
    "DisputeOpened",
    "DisputeResolved",
    "DueRule",
    "DuplicateObject",
    "DurableError",
    "Engine",
    "Event",
    "ExpressionError",
    "FactorPoints",
    "Failure",
    "IllegalTransition",
    "ImportRejected",
    "InvalidAmount",
    "InvalidDates",
    "InvoiceIssued",
    "InvoiceRequest",
    "Ledger",
    "LogAdapter",
    "MemoryAdapter",
    "MemoryStore",
    "Message",
    "Milestone",
    "MilestoneCompleted",
    "MissingAnchor",
    "Money",
    "NotAuthorized",
    "NotReviewer",
    "Notice",
    "Offset",
    "OffsetError",
    "Order",
    "OrderApprovalRequested",
    "OrderApproved",
    "OrderLock",
    "OrderRejected",
    "OrderShipped",
    "OrderState",
    "OrderSubmitted",
    "OverAllocation",
    "ParseError",
    "Payment",
    "PaymentNode",
    "PaymentReceived",
    "PaymentReversed",
    "PermanentFailure",
    "Person",
    "PersonAdded",
    "PersonAddress",
    "PersonLeft",
    "PersonUpdated",
    "Plan",
    "Problem",
    "Project",
    "PromiseBroken",
    "PromiseMade",
    "PromiseStatus",
    "PromiseToPay",
    "ReaderFailed",
    "Receivable",
    "ReceivableState",
    "RefundIssued",
    "RetryPolicy",
    "RuleHarness",
    "RuleLoadError",
    "RulePack",
    "RunResult",
    "Schedule",
    "ScheduleError",
    "SendWindow",
    "SignatureError",
    "SqlStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TemplateError",
    "TemplateLimitError",
    "TemplateSet",
    "TemporaryFailure",
    "TermsNotAllowed",
    "UnknownGrade",
    "UnknownObject",
    "UnsupportedForDurable",
    "ValidationError",
    "WindowError",
    "WorkerFailed",
    "WrittenOff",
    "__version__",
    "adapter_from_url",
    "build_context",
    "contract_view",
    "default_pack_path",
    "dump_book",
    "falling_due",
    "forecast",
    "forecasts",
    "high_risk",
    "import_files",
    "ledger_feedback",
    "load_pack",
    "open_store",
    "parse_event",
    "project_view",
    "register_adapter",
    "review_event",
]
