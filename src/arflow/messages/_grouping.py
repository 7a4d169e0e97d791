"""Notices: the message actions of one transaction's decisions merged into one message per
customer (one e-mail listing every overdue invoice instead of one e-mail per invoice).

How far decisions merge is the pack's ``settings.group_by``: ``customer``, ``level`` and
``currency``. A notice is always for one customer and in one currency (money is never
summed across currencies), so both are required; ``level`` may be left out, to merge the
reminders of different ladder steps into one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from ..decisions import Decision, Notice
from ..errors import ValidationError
from ..rules.schema import Action

#: what a notice is grouped by unless the pack says otherwise: today's notices
DEFAULT_GROUP_BY: tuple[str, ...] = ("customer", "level", "currency")
#: what every grouping must keep: a notice goes to one customer and is in one currency
REQUIRED_GROUP_BY = frozenset({"customer", "currency"})
#: the action types whose dunning decisions are merged into notices
_GROUPED_TYPES = frozenset({"email", "sms", "task", "notify", "handover", "wecom", "dingtalk"})


def group_notices(
    decisions: Iterable[Decision], group_by: Sequence[str] = DEFAULT_GROUP_BY
) -> list[Notice]:
    """Merge the message actions of planned dunning decisions per customer, action type,
    template, recipients, level and currency into notices (tasks likewise per owner); every
    other action is a notice of its own.

    With ``level`` left out of ``group_by``, decisions of different levels (sharing the
    action type, template and recipients) merge into one notice, which carries the
    highest of their levels and the action of the first decision at that level. The
    default gives the notices, and the keys, arflow has always given. Raises
    :class:`~arflow.errors.ValidationError` for a ``group_by`` without ``customer`` or
    ``currency``.
    """
    by = frozenset(group_by)
    missing = REQUIRED_GROUP_BY - by
    unknown = by - {"customer", "level", "currency"}
    if missing or unknown:
        raise ValidationError(
            f"group_by {list(group_by)!r}: a notice is for one customer in one currency"
            + (f" (missing {', '.join(sorted(missing))})" if missing else "")
            + (f" (unknown {', '.join(sorted(unknown))})" if unknown else "")
        )
    by_level = "level" in by
    groups: dict[tuple[Any, ...], list[tuple[Decision, Action]]] = defaultdict(list)
    singles: list[Notice] = []
    for d in decisions:
        if d.status != "planned":
            continue
        for i, a in enumerate(d.actions):
            if a.type in _GROUPED_TYPES and d.kind == "dunning" and d.why.get("group", True):
                key = (
                    d.customer_id,
                    a.type,
                    a.template,
                    tuple(a.to),
                    tuple(a.cc),
                    d.level if by_level else None,
                    d.currency,
                )
                groups[key].append((d, a))
            else:
                singles.append(
                    Notice.model_construct(  # from validated parts: no need to check again
                        key=f"{d.key}#{i}",
                        customer_id=d.customer_id,
                        action=a,
                        level=d.level,
                        currency=d.currency,
                        decision_keys=(d.key,),
                        subject_ids=(d.subject_id,),
                    )
                )
    out: list[Notice] = []
    for (cust, atype, template, to, _cc, _level, cur), items in sorted(
        groups.items(), key=lambda kv: str(kv[0])
    ):
        level, action = _highest(items)
        keys = tuple(sorted({d.key for d, _a in items}))
        as_of = items[0][0].as_of
        out.append(
            Notice.model_construct(
                # the decisions' keys are in it: a second batch released from a review on
                # the same day is a second notice, not a repeat of the first
                key=(
                    f"notice:{cust}:{atype}:{template}:{'+'.join(to)}:{level}:{cur}:{as_of}:"
                    + hashlib.sha256("|".join(keys).encode()).hexdigest()[:12]
                ),
                customer_id=cust,
                action=action,
                level=level,
                currency=cur,
                decision_keys=keys,
                subject_ids=tuple(sorted({d.subject_id for d, _a in items})),
            )
        )
    return out + singles


def _highest(items: Sequence[tuple[Decision, Action]]) -> tuple[int | None, Action]:
    """The highest level among a group's decisions (None below any number) and the action
    of the first decision at that level: a group of one level gives its first action."""
    level, action = items[0][0].level, items[0][1]
    for d, a in items[1:]:
        if d.level is not None and (level is None or d.level > level):
            level, action = d.level, a
    return level, action
