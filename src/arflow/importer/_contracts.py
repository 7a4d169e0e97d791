"""Contracts: in CSV one row per payment node (consecutive rows of one ``contract_id`` are
one contract), in JSON the nested form of the models; each becomes a ``ContractSigned``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from ..errors import AmountOutOfRange, DateOutOfRange
from ..events import ContractSigned
from ..money import Money
from ._cells import _json_type, _Row, parse_amount
from ._kinds import _build, _flat_column, _report_pydantic
from ._run import _Run

_CONTRACT_COLUMNS = (
    "customer_id",
    "title",
    "signed_on",
    "amount",
    "currency",
    "project_id",
    "project_name",
    "salesperson",
    "occurred_at",
)
_NODE_COLUMNS = (
    "node_label",
    "node_amount",
    "node_percent",
    "due_days",
    "due_end_of_month",
    "due_milestone_id",
    "milestone_name",
    "milestone_planned_date",
)

#: Deepest nesting of a JSON contract record (a contract, its nodes, their due rules...).
_MAX_JSON_DEPTH = 16


# -- contracts (CSV: one row per payment node) --------------------------------------------------
def _contract_groups(
    rows: Iterable[tuple[int, dict[str, Any]]],
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """Consecutive rows with the same ``contract_id``: one contract and its payment nodes."""
    group: list[tuple[int, dict[str, Any]]] = []
    for row, raw in rows:
        rec = {c: v for c, v in raw.items() if v}
        if group and rec.get("contract_id") != group[0][1].get("contract_id"):
            yield group
            group = []
        group.append((row, rec))
    if group:
        yield group


def _contract_rows(
    run: _Run, file_no: int, group: list[tuple[int, dict[str, Any]]]
) -> ContractSigned | None:
    first_row, first = group[0]
    r = _Row(run, file_no, first_row, dict(first))
    cid = r.need("contract_id")
    r.claim("contract", cid, "contract_id")
    # Contract columns: set on the first row, and on later rows either empty or the same.
    for row, rec in group[1:]:
        for col in _CONTRACT_COLUMNS:
            v = rec.get(col)
            if v is None:
                continue
            have = r.rec.get(col)
            if have is None:
                r.rec[col] = v
            elif have != v:
                r.fail(col, f"{v!r} differs from {have!r} on row {first_row}", row)
    customer_id = r.need("customer_id")
    signed = r.date("signed_on", required=True)
    currency = r.currency("currency")
    amount = r.amount("amount", currency)
    at = r.instant("occurred_at")
    project_id = r.text("project_id")
    contract: dict[str, Any] = {
        "id": cid,
        "customer_id": customer_id,
        "title": r.text("title") or "",
        "signed_on": signed,
        "project_id": project_id,
        "salesperson": r.text("salesperson"),
    }
    nodes: list[dict[str, Any]] = []
    node_rows: list[int] = []
    milestones: dict[str, dict[str, Any]] = {}
    milestone_rows: list[int] = []
    for row, rec in group:
        n = _Row(run, file_no, row, rec)
        node_id = n.text("node_id")
        if node_id is None:
            stray = [c for c in _NODE_COLUMNS if rec.get(c) is not None]
            if stray:
                n.fail("node_id", f"required when {', '.join(stray)} is set")
            elif len(group) > 1:
                n.fail("node_id", "every row of a contract with several rows is a payment node")
        else:
            node_amount = n.amount("node_amount", currency, required=False)
            node: dict[str, Any] = {"id": node_id, "label": n.text("node_label") or ""}
            if node_amount is not None and currency is not None:
                node["amount"] = Money(amount=node_amount, currency=currency)
            if (pct := n.percent("node_percent")) is not None:
                node["percent"] = pct
            due: dict[str, Any] = {}
            if (days := n.integer("due_days")) is not None:
                due["days"] = days
            if n.boolean("due_end_of_month"):
                due["end_of_month"] = True
            if (mid := n.text("due_milestone_id")) is not None:
                due["basis"] = "milestone"
                due["milestone_id"] = mid
                declared = {
                    "id": mid,
                    "contract_id": cid,
                    "name": n.text("milestone_name") or "",
                    "planned_date": n.date("milestone_planned_date"),
                }
                before = milestones.get(mid)
                if before is None:
                    milestones[mid] = declared
                    milestone_rows.append(row)
                elif before != declared:
                    n.fail("milestone_name", f"milestone {mid!r} is described differently above")
            else:
                for col in ("milestone_name", "milestone_planned_date"):
                    if rec.get(col) is not None:
                        n.fail(col, "only with due_milestone_id")
            if n.failed_at("node_percent"):
                n.mark("node_amount")  # not "needs one of amount or percent": it had one
            node["due"] = due
            nodes.append(node)
            node_rows.append(row)
        r.absorb(n)
    if signed is None or currency is None or amount is None:
        return None
    contract["amount"] = Money(amount=amount, currency=currency)
    contract["payment_nodes"] = nodes
    payload: dict[str, Any] = {
        "event_id": f"import:contract:{cid}",
        "occurred_at": at or run.midnight(signed),
        "actor": run.actor,
        "contract": contract,
        "milestones": list(milestones.values()),
    }
    if project_id is not None:
        name = r.text("project_name") or ""
        payload["project"] = {"id": project_id, "customer_id": customer_id, "name": name}

    node_cols = {
        "id": "node_id",
        "label": "node_label",
        "amount": "node_amount",
        "percent": "node_percent",
        "due": "due_milestone_id",
    }
    milestone_cols = {"name": "milestone_name", "planned_date": "milestone_planned_date"}

    def column_of(loc: tuple[Any, ...]) -> tuple[int, str]:
        head = loc[:1]
        if head == ("contract",) and len(loc) >= 3 and loc[1] == "payment_nodes":
            row = node_rows[loc[2]]
            if len(loc) == 3:
                return row, "node_amount"
            if loc[3] == "due" and len(loc) > 4:
                sub = {"days": "due_days", "end_of_month": "due_end_of_month"}
                return row, sub.get(str(loc[4]), "due_milestone_id")
            return row, node_cols.get(str(loc[3]), "node_id")
        if head == ("contract",):
            field = str(loc[1]) if len(loc) > 1 else "amount"
            return first_row, {"id": "contract_id"}.get(field, field)
        if head == ("milestones",) and len(loc) >= 2:
            field = str(loc[2]) if len(loc) > 2 else ""
            return milestone_rows[loc[1]], milestone_cols.get(field, "due_milestone_id")
        if head == ("project",):
            return first_row, "project_name" if loc[1:2] == ("name",) else "project_id"
        return first_row, _flat_column(loc, "contract_id")

    return _build(r, ContractSigned, payload, column_of)


# -- contracts (JSON: the nested model form) ------------------------------------------------------
def _contract_json(run: _Run, file_no: int, row: int, value: Any) -> ContractSigned | None:
    r = _Row(run, file_no, row, {})
    if not isinstance(value, dict):
        r.fail("-", f"expected a JSON object, got {_json_type(value)}")
        return None
    if _too_deep(value, _MAX_JSON_DEPTH):
        r.fail("-", f"nested more than {_MAX_JSON_DEPTH} levels deep: not a contract record")
        return None
    contract = dict(value)
    milestones = contract.pop("milestones", [])
    project = contract.pop("project", None)
    at_text = contract.pop("occurred_at", None)
    cid = contract.get("id")
    if isinstance(cid, str) and cid:
        r.claim("contract", cid, "id")
    currency: str | None = None
    money = contract.get("amount")
    if isinstance(money, dict) and isinstance(money.get("currency"), str):
        currency = money["currency"]
    _check_json_money(r, money, currency, "amount")
    nodes = contract.get("payment_nodes")
    if isinstance(nodes, list):
        for i, node in enumerate(nodes):
            if isinstance(node, dict):
                _check_json_money(r, node.get("amount"), currency, f"payment_nodes[{i}].amount")
    if isinstance(milestones, list) and isinstance(cid, str):
        milestones = [{"contract_id": cid, **m} if isinstance(m, dict) else m for m in milestones]
    if isinstance(project, dict) and isinstance(contract.get("customer_id"), str):
        project = {"customer_id": contract["customer_id"], **project}
    at: datetime | None = None
    if at_text is not None:
        at = r.instant_of("occurred_at", at_text)
    elif isinstance(contract.get("signed_on"), str):
        try:
            at = run.midnight(run.parse_date(contract["signed_on"]))
        except ValueError:
            at = None  # pydantic reports signed_on below
    payload = {
        "type": "ContractSigned",
        "event_id": f"import:contract:{cid}",
        "occurred_at": (at or run.now).isoformat(),
        "actor": run.actor,
        "contract": contract,
        "project": project,
        "milestones": milestones,
    }
    try:
        event = ContractSigned.model_validate_json(
            json.dumps(payload, default=_json_default, ensure_ascii=False)
        )
    except PydanticValidationError as exc:
        _report_pydantic(r, exc, lambda loc: (row, _dotted(loc)))
        return None
    except (AmountOutOfRange, DateOutOfRange) as exc:
        r.fail(_path_holding(payload, exc), str(exc))
        return None
    return None if r.bad else event


def _path_holding(payload: dict[str, Any], exc: AmountOutOfRange | DateOutOfRange) -> str:
    """Where in a JSON contract record the value ``exc`` refuses is (``signed_on``,
    ``milestones[0].planned_date``), else ``-``."""
    value = exc.amount if isinstance(exc, AmountOutOfRange) else exc.value
    shown = value.isoformat() if isinstance(value, date | datetime) else str(value)
    todo: list[tuple[tuple[Any, ...], Any]] = [((), payload)]
    while todo:
        loc, v = todo.pop(0)
        if isinstance(v, dict):
            todo.extend(((*loc, k), x) for k, x in v.items())
        elif isinstance(v, list):
            todo.extend(((*loc, i), x) for i, x in enumerate(v))
        elif loc and str(v) == shown:
            return _dotted(loc)
    return "-"


def _check_json_money(r: _Row, money: Any, currency: str | None, column: str) -> None:
    """Apply the importer's amount rules to a nested ``{"amount", "currency"}`` object."""
    if not isinstance(money, dict):
        return
    amount = money.get("amount")
    if isinstance(amount, int | Decimal) and not isinstance(amount, bool):
        amount = str(amount)
    if not isinstance(amount, str):
        return  # pydantic says what is wrong with it
    cur = money.get("currency")
    try:
        money["amount"] = str(parse_amount(amount, cur if isinstance(cur, str) else currency))
    except ValueError as exc:
        r.fail(column, str(exc))


def _dotted(loc: tuple[Any, ...]) -> str:
    parts = list(loc[1:] if loc[:1] == ("contract",) else loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "id"


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` levels deep."""
    level: list[Any] = [value]
    for _ in range(limit + 1):
        inner: list[Any] = []
        for v in level:
            if isinstance(v, dict):
                inner.extend(v.values())
            elif isinstance(v, list):
                inner.extend(v)
        if not inner:
            return False
        level = inner
    return True
