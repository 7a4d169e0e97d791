"""The rule-file schema: what a YAML file under ``rules/`` may say.

A file holds one or more sections: ``ladders`` (dunning), ``locks`` (order locks),
``alerts`` (risk alerts), ``scoring`` (credit scoring and grade policy), ``milestones``
(milestone to invoice) and ``approvals`` (approval tiers), plus ``roles``, ``calendar``
and ``settings`` that the whole pack shares. The models here check shape and types;
:mod:`arflow.rules.loader` adds the file:line of every error and checks conditions,
offsets, templates and roles against what exists.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

from ..domain import ProcessDefinition
from ..money import Seq, to_decimal
from .patterns import DURABLE_MISSING, durable_available

Id = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.:-]+$")]
#: A credit grade's name, as the pack names its grades (A-D by default, AAA or 1-5 too: a
#: YAML number is taken as its text).
GradeName = Annotated[
    str,
    BeforeValidator(lambda v: str(v) if type(v) is int else v),
    Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9+_-]+$"),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 20,
                    "pattern": r"^[A-Za-z0-9+_-]+$",
                },
                {"type": "integer"},
            ]
        }
    ),
]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


#: The largest number a rule may give (amounts, rates, points): 28 significant digits and
#: below 10**28, so that sums and products of rule numbers with amounts stay exact.
MAX_DIGITS = 28


def _dec(v: Any, info: ValidationInfo | None = None) -> Any:
    what = info.field_name if info is not None and info.field_name else "value"
    if v is None:
        return None
    if isinstance(v, str) and not v.isascii():
        # Decimal reads full-width and other Unicode digits: "１００" would be 100
        raise ValueError(f"{what} {v[:40]!r} is not a number written with 0-9")
    d = to_decimal(v, what)
    if len(d.as_tuple().digits) > MAX_DIGITS or abs(d.adjusted()) > MAX_DIGITS:
        shown = str(v) if len(str(v)) <= 40 else str(v)[:40] + "..."
        raise ValueError(
            f"{what} {shown} is out of range: at most {MAX_DIGITS} significant digits "
            f"and below 1e{MAX_DIGITS}"
        )
    return d


def _plain_text(v: Any, what: str) -> Any:
    """Refuse control characters (line breaks, NUL...) in a value that becomes a header,
    an address or a URL: one line break is enough to add a recipient to a message."""
    if isinstance(v, str):
        for ch in v:
            if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
                raise ValueError(
                    f"{what} {v[:60]!r} holds the control character U+{ord(ch):04X}: "
                    "one line of plain text is needed"
                )
    return v


def _address(v: Any) -> Any:
    """One address per role: no control characters, no list of several."""
    v = _plain_text(v, "address")
    if isinstance(v, str) and any(sep in v for sep in ",;"):
        raise ValueError(f"address {v[:60]!r} holds several addresses: give a role one")
    return v


def _url(v: Any) -> Any:
    """A webhook's URL: http or https to a host, nothing else (no file:, no javascript:)."""
    v = _plain_text(v, "url")
    if not isinstance(v, str):
        return v
    try:
        parts = urlsplit(v)
        host, _port = parts.hostname, parts.port
    except ValueError as exc:
        raise ValueError(f"url {v[:60]!r} is not a URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not host or any(c.isspace() for c in v):
        raise ValueError(f"url {v[:60]!r} must be an http:// or https:// URL with a host")
    return v


def _one_or_many(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


Address = Annotated[str, BeforeValidator(_address)]

#: Who an action goes to. ``customer`` is the customer's contact (by preferred channel);
#: ``salesperson`` and ``sales_manager`` come from the customer; the others from ``roles``.
BUILTIN_ROLES = frozenset({"customer", "salesperson", "sales_manager"})
ACTION_TYPES = (
    "email",
    "sms",
    "task",
    "notify",
    "risk_flag",
    "block_orders",
    "unblock_orders",
    "request_invoice",
    "handover",
    "webhook",
    "charge",
    "wecom",
    "dingtalk",
)


#: action types that go to people and are rendered from a template
_ADDRESSED = ("email", "sms", "task", "notify", "handover", "wecom", "dingtalk")


class Action(_Spec):
    """One thing to do when a step or rule fires."""

    type: Literal[
        "email",
        "sms",
        "task",
        "notify",
        "risk_flag",
        "block_orders",
        "unblock_orders",
        "request_invoice",
        "handover",
        "webhook",
        "charge",
        "wecom",
        "dingtalk",
    ]
    to: Seq[str] = ()
    cc: Seq[str] = ()
    template: str | None = None
    fallback: Seq[Literal["email", "sms", "task", "wecom", "dingtalk"]] = ()
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    due_in: str | None = Field(default=None, description="task due, e.g. 2bd or 3d")
    escalate_after: str | None = Field(
        default=None,
        description=(
            "a task still open this long after its deadline (e.g. 1bd) goes to its owner's "
            "manager; default settings.task_escalation"
        ),
    )
    attach_history: bool = Field(default=False, strict=True)
    level: Literal["low", "medium", "high"] | None = None
    scope: Literal["customer", "contract", "order_type"] = "customer"
    order_type: str | None = None
    reason: str | None = None
    url: str | None = None
    fee: Decimal | None = None
    interest_rate: Decimal | None = Field(default=None, description="annual, e.g. 0.08")
    day_count: Literal["act/365", "act/360", "30/360"] = "act/365"
    interest_from: Literal["due", "last_dunning"] = "due"
    exempt_grades: Seq[GradeName] = Field(
        default=(), description="grades a charge is never booked for"
    )

    _many = field_validator("to", "cc", mode="before")(lambda cls, v: _one_or_many(v))
    _d = field_validator("fee", "interest_rate", mode="before")(lambda cls, v, info: _dec(v, info))
    _u = field_validator("url", mode="before")(lambda cls, v: _url(v))

    @model_validator(mode="after")
    def _needs(self) -> Action:
        t = self.type
        a = "an" if t[0] in "aeiou" else "a"
        if t in _ADDRESSED and not self.to:
            raise ValueError(f"{a} {t} action needs 'to' (a role)")
        if t in _ADDRESSED and not self.template:
            raise ValueError(f"{a} {t} action needs a 'template'")
        if t == "risk_flag" and self.level is None:
            raise ValueError("a risk_flag action needs a 'level' (low, medium, high)")
        if t == "webhook" and not self.url:
            raise ValueError("a webhook action needs a 'url'")
        if t == "charge" and self.fee is None and self.interest_rate is None:
            raise ValueError("a charge action needs a 'fee', an 'interest_rate', or both")
        if self.scope == "order_type" and not self.order_type:
            raise ValueError("scope order_type needs 'order_type'")
        return self


class Step(_Spec):
    """A rung of a dunning ladder: when (an offset or a recurrence), if what, do what."""

    id: Id
    at: str = Field(description="due-7d, due, due+3bd, every 7d from due+1d until due+15d")
    level: int = Field(ge=0, le=99, strict=True)
    when: str | None = None
    min_balance: Decimal | None = None
    group: bool = Field(default=True, strict=True, description="merge into one notice per customer")
    actions: Seq[Action] = Field(min_length=1)

    _d = field_validator("min_balance", mode="before")(lambda cls, v, info: _dec(v, info))


class Ladder(_Spec):
    id: Id
    description: str = ""
    when: str | None = Field(default=None, description="which receivables follow this ladder")
    min_balance: Decimal = Decimal(0)
    exempt_grades: Seq[GradeName] = ()
    steps: Seq[Step] = Field(min_length=1)

    _d = field_validator("min_balance", mode="before")(lambda cls, v, info: _dec(v, info))


class Lock(_Spec):
    """Block new orders while a condition holds; lift it when it stops holding."""

    id: Id
    description: str = ""
    when: str
    scope: Literal["customer", "contract", "order_type"] = "customer"
    order_type: str | None = None
    notify: Seq[str] = ()
    template: str | None = None
    on_order: Literal["reject", "approve"] | None = Field(
        default=None,
        description=(
            "what the lock does to a new order: reject it (OrderRejected with the lock's "
            "description), or send it to approval (the tier named by 'approval', else "
            "settings.over_limit_tier); unset: sent for approval to the customer's "
            "sales_manager, as before this setting existed"
        ),
    )
    approval: Id | None = Field(
        default=None, description="the approval tier an order goes to (on_order: approve)"
    )
    lift_template: str | None = Field(
        default=None,
        description="the notice sent to 'notify' when the lock lifts (none without it)",
    )

    _many = field_validator("notify", mode="before")(lambda cls, v: _one_or_many(v))

    @model_validator(mode="after")
    def _scope(self) -> Lock:
        if self.scope == "order_type" and not self.order_type:
            raise ValueError("scope order_type needs 'order_type'")
        if self.notify and not self.template:
            raise ValueError("'notify' needs a 'template'")
        if self.approval is not None and self.on_order != "approve":
            raise ValueError("'approval' names a tier for on_order: approve only")
        if self.lift_template and not self.notify:
            raise ValueError("'lift_template' needs 'notify' (who is told)")
        return self


class Alert(_Spec):
    """A condition on a receivable, customer or order that calls for attention once."""

    id: Id
    description: str = ""
    subject: Literal["receivable", "customer", "order"] = "receivable"
    when: str
    actions: Seq[Action] = Field(min_length=1)


class PatternRule(_Spec):
    """A pattern over one customer's history (promises, payments, the date), matched by
    ``settings.matcher`` (durable-rules or the built-in matcher): ``unpaid_promise`` (a promise with no payment by its date plus grace) or
    ``late_payments`` (``count`` payments after their due date within ``window_days``)."""

    id: Id
    description: str = ""
    match: Literal["unpaid_promise", "late_payments"]
    when: str | None = Field(default=None, description="a condition on the customer")
    grace_days: int | None = Field(
        default=None,
        ge=0,
        le=60,
        strict=True,
        description="unpaid_promise; default settings.promise_grace_days",
    )
    break_promise: bool = Field(
        default=True, strict=True, description="unpaid_promise: record it broken"
    )
    count: int | None = Field(default=None, ge=1, le=12, strict=True, description="late_payments")
    window_days: int | None = Field(
        default=None, ge=1, le=3660, strict=True, description="late_payments"
    )
    actions: Seq[Action] = ()

    @model_validator(mode="after")
    def _fits_match(self) -> PatternRule:
        if self.match == "unpaid_promise" and (
            self.count is not None or self.window_days is not None
        ):
            raise ValueError("'count' and 'window_days' are for match: late_payments")
        if self.match == "late_payments":
            if self.grace_days is not None:
                raise ValueError("'grace_days' is for match: unpaid_promise")
            if self.count is None or self.window_days is None:
                raise ValueError("match: late_payments needs 'count' and 'window_days'")
            if not self.actions:
                raise ValueError("match: late_payments needs at least one action")
        return self


class Band(_Spec):
    """Points for a numeric fact at or above ``min`` (the first matching band counts)."""

    min: Decimal | None = None
    points: Decimal

    _d = field_validator("min", "points", mode="before")(lambda cls, v, info: _dec(v, info))


class Factor(_Spec):
    fact: str
    weight: Decimal = Decimal(1)
    points: dict[str, Decimal] | None = Field(default=None, description="by text value")
    bands: Seq[Band] | None = None
    missing: Decimal = Field(default=Decimal(0), description="points when the fact is null")

    @field_validator("weight", "missing", mode="before")
    @classmethod
    def _dd(cls, v: Any, info: ValidationInfo) -> Any:
        return _dec(v, info)

    @field_validator("points", mode="before")
    @classmethod
    def _pp(cls, v: Any) -> Any:
        if v is None:
            return None
        if not isinstance(v, dict):
            raise ValueError("'points' should be a mapping of value: points")
        return {str(k): _dec(x) for k, x in v.items()}

    @model_validator(mode="after")
    def _one(self) -> Factor:
        if (self.points is None) == (self.bands is None):
            raise ValueError(f"factor {self.fact!r} needs exactly one of 'points' or 'bands'")
        return self


class GradePolicy(_Spec):
    grade: GradeName
    min_score: Decimal
    credit_limit: Decimal
    payment_terms_days: int = Field(ge=0, le=3650, strict=True)
    prepayment_percent: Decimal = Decimal(0)

    _d = field_validator("min_score", "credit_limit", "prepayment_percent", mode="before")(
        lambda cls, v, info: _dec(v, info)
    )


_EVERY = re.compile(r"^\s*(\d+)\s*(day|week|month|year)s?\s*$")
_AFTER = re.compile(r"^(broken_promise|overdue_(\d+))$")


class Review(_Spec):
    """When a customer's grade is reviewed again: ``every`` (e.g. "3 months", "90 days",
    "1 year") since the last review, and at once ``after`` a broken promise
    (``broken_promise``) or an item crossing N days overdue (``overdue_60``)."""

    every: str | None = None
    after: Seq[str] = ()

    _many = field_validator("after", mode="before")(lambda cls, v: _one_or_many(v))

    @field_validator("every")
    @classmethod
    def _every(cls, v: str | None) -> str | None:
        m = None if v is None else _EVERY.match(v)
        if v is not None and (m is None or int(m.group(1)) < 1):
            raise ValueError(f"every {v!r}: say a count and a unit, e.g. '3 months' or '90 days'")
        return v

    @field_validator("after")
    @classmethod
    def _after(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for a in v:
            if not _AFTER.match(a):
                raise ValueError(f"after {a!r}: known causes are broken_promise and overdue_N")
        return v

    def every_parts(self) -> tuple[int, str] | None:
        """(count, unit) of ``every`` (None: no periodic review)."""
        m = None if self.every is None else _EVERY.match(self.every)
        return None if m is None else (int(m.group(1)), m.group(2))

    def overdue_days(self) -> list[int]:
        """The N of each ``overdue_N`` cause."""
        return [int(m.group(2)) for a in self.after if (m := _AFTER.match(a)) and m.group(2)]


class Scoring(_Spec):
    """Weighted score over customer facts; the grade is the first policy whose min_score
    the score reaches; orders and contracts beyond the grade's policy need approval."""

    currency: str = "CNY"
    factors: Seq[Factor] = Field(min_length=1)
    grades: Seq[GradePolicy] = Field(min_length=1)
    review: Review | None = Field(
        default=None, description="when the engine re-rates customers (none: never by itself)"
    )
    max_auto_raise: Decimal | None = Field(
        default=None,
        ge=0,
        description=(
            "the largest raise of a credit limit a review applies by itself, as a fraction "
            "of the current limit (0.2: 20%); a larger one goes to approval, the limit stays"
        ),
    )
    raise_approvers: Seq[str] = Field(
        default=("finance_manager",), description="the roles that approve a larger raise"
    )
    terms_approvers: Seq[str] = Field(
        default=("finance_manager",),
        description="the roles that approve contract terms longer than the grade allows",
    )

    _mr = field_validator("max_auto_raise", mode="before")(lambda cls, v, info: _dec(v, info))
    _ra = field_validator("raise_approvers", "terms_approvers", mode="before")(
        lambda cls, v: _one_or_many(v)
    )

    @field_validator("grades")
    @classmethod
    def _distinct(cls, v: tuple[GradePolicy, ...]) -> tuple[GradePolicy, ...]:
        seen = [g.grade for g in v]
        twice = sorted({g for g in seen if seen.count(g) > 1})
        if twice:
            raise ValueError(f"grade {twice[0]!r} is defined twice")
        return v

    def grade(self, name: str) -> GradePolicy | None:
        """The policy of grade ``name`` (None: the pack defines no such grade)."""
        return next((g for g in self.grades if g.grade == name), None)


class MilestoneRule(_Spec):
    """When a milestone that a payment node waits for is completed: ask to invoice."""

    id: Id
    description: str = ""
    when: str | None = None
    actions: Seq[Action] = Field(min_length=1)


class ApprovalTier(_Spec):
    """Orders that need approval: the ``description`` is the reason approvers are given.
    A tier without ``when`` catches no order by itself: it is reached by name only (a
    lock's ``approval``, ``settings.over_limit_tier``, ``settings.terms_tier``)."""

    id: Id
    description: str = ""
    when: str | None = None
    approvers: Seq[str] = Field(min_length=1)
    template: str

    _many = field_validator("approvers", mode="before")(lambda cls, v: _one_or_many(v))


class CalendarSpec(_Spec):
    country: str | None = "CN"
    subdivision: str | None = None
    extra_holidays: Seq[str] = ()
    extra_workdays: Seq[str] = ()


class Settings(_Spec):
    company_name: str = Field(default="", description="signs the messages templates render")

    _t = field_validator("company_name", mode="before")(
        lambda cls, v: _plain_text(v, "company_name")
    )
    base_currency: str = "CNY"
    catch_up: Literal["latest", "all", "none"] = Field(
        default="latest",
        description="after downtime: send only the latest due step (default), all, or none",
    )
    promise_grace_days: int = Field(default=3, ge=0, le=60, strict=True)
    matcher: Literal["auto", "builtin", "durable"] = Field(
        default="auto",
        description=(
            "what matches the patterns: durable-rules (the arflow[durable] extra), the "
            "built-in matcher (same decisions, no native code), or auto: durable-rules when "
            "it imports here, else the built-in one"
        ),
    )
    dso_target_days: Decimal | None = Field(
        default=None,
        ge=0,
        le=3650,
        description="the DSO the company aims at: shown beside DSO figures and trends",
    )
    min_balance: Decimal = Field(
        default=Decimal(0),
        ge=0,
        description=(
            "an open item below this is a small balance: no ladder duns it, no receivable "
            "alert fires for it, and the overdue facts a lock reads do not count it"
        ),
    )
    send_window: str | None = "mon-fri 09:00-18:00"
    group_by: Seq[Literal["customer", "level", "currency"]] = Field(
        default=("customer", "level", "currency"),
        description=(
            "what merges decisions into one notice: customer and currency always (a notice "
            "goes to one customer, in one currency); without level, steps of different "
            "levels merge and the notice carries the highest"
        ),
    )
    review: bool = Field(default=False, strict=True)
    task_escalation: str | None = Field(
        default=None,
        description=(
            "a tracked task still open this long after its deadline (e.g. 1bd) is escalated "
            "to its owner's manager (an action's escalate_after wins); unset: never"
        ),
    )
    review_role: Id | None = Field(
        default=None,
        description=(
            "the role whose holders own a run's proposal in review mode: only an active "
            "person of the directory holding it may edit, drop, hold or release it "
            "(docs/review.md); none: anyone may"
        ),
    )
    review_days: int = Field(
        default=7,
        ge=0,
        le=60,
        strict=True,
        description=(
            "how many days after its run date a reviewer may move a held message's send "
            "date at most (the step's next occurrence bounds it too)"
        ),
    )
    locales: Seq[str] = Field(
        default=("en", "zh_CN"), description="every template must exist in these locales"
    )
    # -- orders checked at entry (docs/orders.md) --
    order_ceiling_ratio: Decimal | None = Field(
        default=None,
        ge=1,
        description=(
            "an order that takes exposure above this many times the credit limit is "
            "rejected: no approval can pass it (e.g. 1.5)"
        ),
    )
    over_limit_tier: Id | None = Field(
        default=None,
        description=(
            "the approval tier of an order over the credit limit that no tier caught, and "
            "of a lock with on_order: approve that names none"
        ),
    )
    terms_tier: Id | None = Field(
        default=None,
        description=(
            "the approval tier of a contract or order asking for longer payment terms than "
            "the customer's grade allows (none: such a contract or order is refused)"
        ),
    )
    auto_approve_orders: bool = Field(
        default=False,
        strict=True,
        description="an order within limit, unlocked and caught by no tier is approved at once",
    )
    order_approved: Seq[Action] = Field(
        default=(),
        description="what follows an approved order: tasks to its next owners (finance, warehouse)",
    )

    _d = field_validator("min_balance", "order_ceiling_ratio", mode="before")(
        lambda cls, v, info: _dec(v, info)
    )

    @field_validator("matcher")
    @classmethod
    def _matcher_importable(cls, v: str) -> str:
        if v == "durable" and not durable_available():
            raise ValueError(f"matcher: durable {DURABLE_MISSING}")
        return v

    @model_validator(mode="after")
    def _review_role_needs_review(self) -> Settings:
        if self.review_role is not None and not self.review:
            raise ValueError(
                f"review_role {self.review_role!r} names who reviews a proposal, but review "
                "is false: runs make no proposal (set review: true, or drop review_role)"
            )
        return self

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        missing = [k for k in ("customer", "currency") if k not in v]
        if missing:
            raise ValueError(
                f"group_by must keep {' and '.join(missing)}: a notice is for one customer "
                "in one currency"
            )
        return v


class RuleFile(_Spec):
    """One YAML file. Sections may be split across files of one pack in any way."""

    pack: Id | None = None
    description: str = ""
    roles: dict[str, Address] = Field(default_factory=dict)
    calendar: CalendarSpec | None = None
    settings: Settings | None = None
    ladders: Seq[Ladder] = ()
    locks: Seq[Lock] = ()
    alerts: Seq[Alert] = ()
    scoring: Scoring | None = None
    milestones: Seq[MilestoneRule] = ()
    approvals: Seq[ApprovalTier] = ()
    patterns: Seq[PatternRule] = ()
    #: processes with owners, deadlines and approvals (docs/workflows.md#processes)
    processes: Seq[ProcessDefinition] = ()


# -- the JSON Schema of a rule file, for editors --------------------------------------------------

#: Fields that take one text or a list of texts (their before-validator wraps a lone text
#: into a list); the generated schema says so, so an editor accepts ``to: customer``.
_ONE_OR_MANY: dict[str, tuple[str, ...]] = {
    "Action": ("to", "cc"),
    "Lock": ("notify",),
    "ApprovalTier": ("approvers",),
    "Review": ("after",),
    "Scoring": ("raise_approvers", "terms_approvers"),
}

#: Cross-field rules of the models' validators that JSON Schema can say (``if``/``then``),
#: so an editor flags them too: an addressed action needs ``to`` and ``template``...
_CONDITIONAL: dict[str, list[dict[str, Any]]] = {
    "Action": [
        {
            "if": {"properties": {"type": {"enum": list(_ADDRESSED)}}, "required": ["type"]},
            "then": {"required": ["to", "template"]},
        },
        {
            "if": {"properties": {"type": {"const": "risk_flag"}}, "required": ["type"]},
            "then": {"required": ["level"]},
        },
        {
            "if": {"properties": {"type": {"const": "webhook"}}, "required": ["type"]},
            "then": {"required": ["url"]},
        },
        {
            "if": {"properties": {"scope": {"const": "order_type"}}, "required": ["scope"]},
            "then": {"required": ["order_type"]},
        },
    ],
    "Lock": [
        {
            "if": {"properties": {"scope": {"const": "order_type"}}, "required": ["scope"]},
            "then": {"required": ["order_type"]},
        },
    ],
    "Factor": [{"oneOf": [{"required": ["points"]}, {"required": ["bands"]}]}],
    "PatternRule": [
        {
            "if": {"properties": {"match": {"const": "late_payments"}}, "required": ["match"]},
            "then": {"required": ["count", "window_days", "actions"]},
        },
    ],
}


#: Characters that end one line of plain text (``not`` a match of this anywhere: a regex
#: with ``$`` would let a final line break through in Python, where ``$`` matches before it).
_BREAKS = "[\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]"
#: What the models' before-validators check of a text that JSON Schema can say too: one
#: line of plain text (:func:`_plain_text`), one address per role (:func:`_address`), an
#: http(s) URL with a host and no spaces (:func:`_url`).
_TEXT_RULES: dict[tuple[str, str], dict[str, Any]] = {
    ("Settings", "company_name"): {"not": {"pattern": _BREAKS}},
    ("RuleFile", "roles"): {"not": {"pattern": "[,;]|" + _BREAKS}},
    ("Action", "url"): {
        "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\\s]",
        "not": {"pattern": "\\s|" + _BREAKS},
    },
}


#: A number written as text, as pydantic 2.13 and earlier said it in JSON Schema (2.14 leaves
#: the pattern out): digits, one point, a sign; no exponent, no letters.
_DECIMAL_TEXT = "^(?!^[-+.]*$)[+-]?0*\\d*\\.?\\d*$"


class _Generator(GenerateJsonSchema):
    """pydantic's generator, with a ``Decimal`` given as text held to :data:`_DECIMAL_TEXT`
    whatever pydantic's version, so the schema refuses ``min_balance: abc`` everywhere."""

    def decimal_schema(self, schema: Any) -> JsonSchemaValue:
        got = super().decimal_schema(schema)
        for alt in got.get("anyOf", []):
            if alt.get("type") == "string" and "pattern" not in alt:
                alt["pattern"] = _DECIMAL_TEXT
        return got


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one rule file, generated from :class:`RuleFile`.

    It says what the pydantic models say about shape and types, for editors
    (yaml-language-server) to validate and complete rule files as they are typed; the
    loader still checks what a schema cannot (conditions, offsets, roles, templates, ids).
    The result is the same on every call, so it can be committed beside a pack."""
    schema = RuleFile.model_json_schema(mode="validation", schema_generator=_Generator)
    defs: dict[str, Any] = schema.get("$defs", {})
    for model, fields in _ONE_OR_MANY.items():
        props = defs[model]["properties"]
        for name in fields:
            many = props[name]
            one = dict(many["items"])
            keep = {k: many.pop(k) for k in ("title", "description", "default") if k in many}
            props[name] = {**keep, "anyOf": [one, many]}
    for model, rules in _CONDITIONAL.items():
        defs[model]["allOf"] = rules
    for (model, name), rule in _TEXT_RULES.items():
        prop = (schema if model == "RuleFile" else defs[model])["properties"][name]
        if "additionalProperties" in prop:  # roles: a mapping of role to address
            prop["additionalProperties"].update(rule)
        else:
            for text in [*prop.get("anyOf", []), prop]:
                if text.get("type") == "string":
                    text.update(rule)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "arflow rule file",
    }
