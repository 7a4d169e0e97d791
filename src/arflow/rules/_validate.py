"""Checking a rule file's data against the schema, one section and one rule at a time, so
a mistake in one rule does not hide the problems of the others."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pydantic

from ..errors import Problem
from ._yaml import Path_, _Lines, _rule_id
from .schema import RuleFile

#: The sections that are lists of rules (the schema's fields with a list default).
_LIST_SECTIONS = tuple(name for name, f in RuleFile.model_fields.items() if f.default == ())


def _message(err: Any) -> tuple[Path_, str]:
    """Where a pydantic error points and what to tell a rule author."""
    loc = tuple(
        p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal")))
    )
    msg: str = err["msg"].removeprefix("Value error, ")
    kind = err["type"]
    if kind == "extra_forbidden" and loc:
        return loc, f"unknown field {loc[-1]!r}"
    if kind == "missing" and loc:
        return loc[:-1], f"missing field {loc[-1]!r}"
    if kind in ("tuple_type", "list_type"):
        msg = "should be a list"
    given = err.get("input")
    if kind == "int_type" and isinstance(given, bool):
        msg = f"should be a whole number, not {str(given).lower()} (true/false)"
    elif kind in ("int_type", "int_parsing") and isinstance(given, Decimal):
        msg = f"should be a whole number, not {given}"
    elif kind == "bool_type":
        msg = f"should be true or false, not {str(given)[:40]!r}"
    return loc, msg


def _without_unknown_fields(
    key: str, index: int | None, part: Any, exc: pydantic.ValidationError
) -> Any | None:
    """``part`` without the unknown fields that made it invalid, if that is all that was
    wrong with it (a typo such as ``min_amount`` must not hide the rest of the rule)."""
    if any(e["type"] != "extra_forbidden" for e in exc.errors()):
        return None
    fixed = copy.deepcopy(part)
    for e in exc.errors():
        loc = list(e["loc"][1:] if index is None else e["loc"][2:])
        if not loc:
            return None  # the section itself is unknown: nothing to keep
        node: Any = fixed
        for p in loc[:-1]:
            node = node[p]
        if isinstance(node, dict):
            node.pop(loc[-1], None)
    try:
        RuleFile.model_validate({key: [fixed] if index is not None else fixed})
    except pydantic.ValidationError:
        return None
    return fixed


def _validate(
    file: str, data: dict[str, Any], lines: _Lines, problems: list[Problem]
) -> tuple[RuleFile, dict[str, list[int]]]:
    """The file's valid parts as a RuleFile; every invalid section or rule is a problem.

    Validating rule by rule (not the file as a whole) keeps one mistake from hiding the
    rest: the other rules are still checked for conditions, roles and templates."""
    everything = {
        k: list(range(len(v)))
        for k, v in data.items()
        if k in _LIST_SECTIONS and isinstance(v, list)
    }
    try:
        return RuleFile.model_validate(data), everything
    except pydantic.ValidationError:
        pass
    good: dict[str, Any] = {}
    positions: dict[str, list[int]] = {}
    for key, value in data.items():
        items = (
            list(enumerate(value)) if key in _LIST_SECTIONS and isinstance(value, list) else None
        )
        for index, part in items if items is not None else [(None, value)]:
            try:
                RuleFile.model_validate({key: [part] if index is not None else part})
            except pydantic.ValidationError as exc:
                pruned = _without_unknown_fields(key, index, part, exc)
                seen: set[tuple[Path_, str]] = set()
                errs = exc.errors()
                for err in errs:
                    loc, msg = _message(err)
                    if index is not None and len(loc) > 1 and loc[1] == 0:
                        loc = (loc[0], index, *loc[2:])
                    if lines.was_refused(loc):
                        continue  # its value was refused, and said so, while reading
                    deeper = any(
                        len(e["loc"]) > len(err["loc"])
                        and tuple(e["loc"][: len(err["loc"])]) == tuple(err["loc"])
                        for e in errs
                    )
                    if deeper and "at least 1 item" in msg:
                        continue  # a list emptied by its own bad items: noise
                    if (loc, msg) in seen:
                        continue
                    seen.add((loc, msg))
                    problems.append(Problem(file, lines.line(loc), _rule_id(data, loc), msg))
                if pruned is None:
                    continue
                part = pruned  # reported above; the rest of the rule is still checked
            if index is None:
                good[key] = part
            else:
                good.setdefault(key, []).append(part)
                positions.setdefault(key, []).append(index)
    return RuleFile.model_validate(good), positions
