"""Explanations: the ``why`` of a decision (its rule, conditions and the facts they read)
and the recorded explanation behind a key."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from ..errors import ArflowError
from ..rules.expr import Condition
from ..store.base import Store


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return format(v.normalize(), "f") if v == v.to_integral() else str(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    return v


def _jsonable_deep(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: _jsonable_deep(x) for k, x in v.items()}
    return _jsonable(v)


def _why(
    rule: str,
    facts: Mapping[str, Any],
    conditions: Sequence[Condition | None],
    extra: Mapping[str, Any],
    always: Iterable[str] = (),
    shown: dict[tuple[str, ...], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The explanation of a decision. ``shown``: the facts already shown by the facts
    they name, for decisions made from the same ``facts`` (a receivable's steps): they
    then share one dict instead of converting the same values again; it is never
    changed once made."""
    texts, used = _why_shape(tuple(conditions), tuple(always))
    if shown is None:
        shown_facts = {k: _jsonable(facts.get(k)) for k in used}
    else:
        found = shown.get(used)
        if found is None:
            found = shown[used] = {k: _jsonable(facts.get(k)) for k in used}
        shown_facts = found
    return {
        "rule": rule,
        **{k: _jsonable(v) for k, v in extra.items()},
        "conditions": list(texts),
        "facts": shown_facts,
    }


#: ``_why_shape`` by the identities of the conditions: a condition's hash walks its tree
_WHY_SHAPES: dict[tuple[Any, ...], tuple[Any, ...]] = {}


def _why_shape(
    conditions: tuple[Condition | None, ...], always: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The condition texts of a rule and the facts its explanation shows (those its
    conditions read, and ``always``), sorted: the same for every decision of the rule."""
    key = (*map(id, conditions), always)
    found = _WHY_SHAPES.get(key)
    if found is not None and all(a is b for a, b in zip(found[0], conditions, strict=True)):
        return found[1], found[2]  # (the same objects: an id is not reused while they live)
    used: set[str] = set(always)
    texts = []
    for c in conditions:
        if c is not None:
            used |= c.facts
            texts.append(c.text)
    if len(_WHY_SHAPES) >= 4096:
        _WHY_SHAPES.clear()
    _WHY_SHAPES[key] = (conditions, tuple(texts), tuple(sorted(used)))
    return tuple(texts), tuple(sorted(used))


def explain(store: Store, key: str) -> dict[str, Any]:
    """The recorded decision behind ``key``: rule, step, status, reason and facts."""
    rec = store.decision(key)
    if rec is None:
        raise ArflowError(f"no decision with key {key!r}")
    body: dict[str, Any] = json.loads(rec.body)
    return body
