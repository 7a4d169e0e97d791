"""Notice grouping: the message actions of a day's decisions merged per customer into
notices (one e-mail listing every invoice instead of one per invoice)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ..decisions import Decision, Notice
from ..rules.schema import Action


def group_notices(decisions: Iterable[Decision]) -> list[Notice]:
    """Merge the message actions of decisions per customer, action, template, level and
    currency into notices; tasks likewise per owner."""
    groups: dict[tuple[Any, ...], list[tuple[Decision, Action]]] = defaultdict(list)
    singles: list[Notice] = []
    for d in decisions:
        if d.status != "planned":
            continue
        for i, a in enumerate(d.actions):
            if (
                a.type in ("email", "sms", "task", "notify", "handover")
                and d.kind == "dunning"
                and d.why.get("group", True)
            ):
                key = (
                    d.customer_id,
                    a.type,
                    a.template,
                    tuple(a.to),
                    tuple(a.cc),
                    d.level,
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
    for (cust, atype, template, to, _cc, level, cur), items in sorted(
        groups.items(), key=lambda kv: str(kv[0])
    ):
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
                action=items[0][1],
                level=level,
                currency=cur,
                decision_keys=keys,
                subject_ids=tuple(sorted({d.subject_id for d, _a in items})),
            )
        )
    return out + singles
