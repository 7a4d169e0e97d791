"""Where the figures' sums come from: one question (:class:`Query`), two answers.

Every figure of :mod:`arflow.analytics` is arithmetic over a few sums of the receivable
movement journal (``MOVEMENT_COLUMNS``): the movements up to a date (or within a period),
of some kinds, filtered and grouped by dimensions, and split by one more key (the due
date, the business date, whether the movement came after the due date). :class:`SqlSource`
asks the database for those sums with one ``GROUP BY`` over indexed columns;
:class:`PySource` computes them in Python from ``Store.movements()`` and is the reference
the SQL is tested against (and what the memory store uses).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from itertools import product
from operator import itemgetter
from typing import Any, Literal, Protocol

from ..errors import UnknownDimension, ValidationError
from ..store import Store
from ..store.base import MOVEMENT_COLUMNS, customer_dim
from ._results import DIMENSIONS

#: Dimensions read from the movement itself (the receivable's), by column.
MOVEMENT_DIMS = {
    "customer": "customer_id",
    "salesperson": "salesperson",
    "region": "region",
    "currency": "currency",
    "product_line": "product_line",
    "project": "project_id",
    "contract": "contract_id",
}
#: Dimensions read from the customer dimension, by column.
CUSTOMER_DIMS = {"sales_manager": "sales_manager", "team": "team", "grade": "grade"}
#: Dimensions that filter but do not group (none since ``tag`` groups too).
FILTER_ONLY: tuple[str, ...] = ()
#: The group of a customer without tags when grouping by ``tag`` (a missing value, as for
#: every other dimension).
NO_TAG = None

Split = Literal["due", "on", "late", "band"] | None
Key = date | int | None
#: ((currency, group values), split key) -> (amount in minor units, open count)
Sums = dict[tuple[str, tuple[str | None, ...], Key], tuple[int, int]]


@dataclass(frozen=True)
class Query:
    """Movements with ``on_from <= on_date <= on_to`` (``on_from`` None: from the start),
    of ``kinds`` (None: all), matching ``where`` (dimension -> values; None among them
    matches a missing value), summed per currency, ``by`` and ``split``."""

    on_to: date
    on_from: date | None = None
    kinds: tuple[str, ...] | None = None
    by: tuple[str, ...] = ()
    where: tuple[tuple[str, tuple[str | None, ...]], ...] = ()
    split: Split = None
    #: ``split="band"``: the age bands' upper ends in days past due on ``on_to``; the key
    #: is 0 (not yet due), i (up to ``bands[i - 1]`` days) or ``len(bands) + 1`` (beyond)
    bands: tuple[int, ...] = ()


def band_of(days: int, bands: tuple[int, ...]) -> int:
    """The age band of ``days`` past due (see ``Query.bands``)."""
    if days <= 0:
        return 0
    for i, high in enumerate(bands, start=1):
        if days <= high:
            return i
    return len(bands) + 1


def check_dims(by: Iterable[str], where: Mapping[str, Any] | None, what: str) -> None:
    """Refuse a dimension not in ``DIMENSIONS`` (and grouping by a filter-only one)."""
    for d in by:
        if d not in DIMENSIONS or d in FILTER_ONLY:
            known = [x for x in DIMENSIONS if x not in FILTER_ONLY]
            raise UnknownDimension(d, known, f"by= of {what}")
    for d in where or {}:
        if d not in DIMENSIONS:
            raise UnknownDimension(d, DIMENSIONS, f"where= of {what}")


def where_values(where: Mapping[str, Any] | None) -> tuple[tuple[str, tuple[str | None, ...]], ...]:
    """``where`` as the hashable form ``Query`` takes: a value, or several."""
    out = []
    for d, v in sorted((where or {}).items()):
        many = isinstance(v, Iterable) and not isinstance(v, str)
        values = tuple(v) if many else (v,)
        bad = [x for x in values if x is not None and not isinstance(x, str)]
        if bad or not values:
            raise ValidationError(
                f"where={{{d!r}: {v!r}}}: give a value (text or None) or several, not "
                f"{type(bad[0]).__name__ if bad else 'none at all'}"
            )
        out.append((d, values))
    return tuple(out)


class Source(Protocol):
    def sums(self, q: Query) -> Sums: ...
    def sums_many(self, qs: Sequence[Query]) -> list[Sums]: ...
    def customer_labels(self) -> dict[str, str]: ...
    def grades(self) -> list[tuple[str | None, int]]: ...
    def first_day(self) -> date | None: ...


class PySource:
    """The sums computed in Python from the journal: the reference for :class:`SqlSource`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _dims(self) -> dict[str, tuple[Any, ...]]:
        return {c.id: customer_dim(c) for c in self._store.all("customer")}

    def sums(self, q: Query) -> Sums:
        cols = {n: i for i, n in enumerate(MOVEMENT_COLUMNS)}
        dim_cols = {
            "grade": 2,
            "salesperson": 3,
            "sales_manager": 4,
            "team": 5,
            "region": 6,
            "tags": 7,
        }
        dims = self._dims()
        # a customer's tags, each once, from the customer itself (not the dimension's text)
        tags_of = {c.id: tuple(dict.fromkeys(c.tags)) for c in self._store.all("customer")}

        def value(m: tuple[Any, ...], d: str) -> Any:
            if d in MOVEMENT_DIMS:
                return m[cols[MOVEMENT_DIMS[d]]]
            row = dims.get(m[1])
            return None if row is None else row[dim_cols[d]]

        out: dict[tuple[str, tuple[str | None, ...], Key], list[int]] = {}
        for m in self._store.movements():
            on = m[4]
            if on > q.on_to or (q.on_from is not None and on < q.on_from):
                continue
            if q.kinds is not None and m[3] not in q.kinds:
                continue
            ok = True
            for d, values in q.where:
                if d == "tag":
                    tags = tags_of.get(m[1], ())
                    ok = any(v in tags if v is not None else not tags for v in values)
                else:
                    ok = value(m, d) in values
                if not ok:
                    break
            if not ok:
                continue
            key: Key = None
            if q.split == "due":
                key = m[8]
            elif q.split == "on":
                key = on
            elif q.split == "late":
                key = 1 if on > m[8] else 0
            elif q.split == "band":
                key = band_of((q.on_to - m[8]).days, q.bands)
            # by tag, a movement counts in the group of each of its customer's tags
            choices = [
                (tags_of.get(m[1]) or (NO_TAG,)) if d == "tag" else (value(m, d),) for d in q.by
            ]
            for group in product(*choices):
                acc = out.setdefault((m[2], group, key), [0, 0])
                acc[0] += m[5]
                acc[1] += m[6]
        return {k: (a, n) for k, (a, n) in out.items()}

    def sums_many(self, qs: Sequence[Query]) -> list[Sums]:
        """``sums`` of each query (the reference: one at a time)."""
        return [self.sums(q) for q in qs]

    def customer_labels(self) -> dict[str, str]:
        return {c.id: c.name for c in self._store.all("customer")}

    def grades(self) -> list[tuple[str | None, int]]:
        counts: dict[str | None, int] = {}
        for row in self._dims().values():
            counts[row[2]] = counts.get(row[2], 0) + 1
        return sorted(counts.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))

    def first_day(self) -> date | None:
        return min((m[4] for m in self._store.movements()), default=None)


class SqlSource:
    """The sums as one ``GROUP BY`` in the database (SQLAlchemy Core)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def sums(self, q: Query) -> Sums:
        return self.sums_many([q])[0]

    def sums_many(self, qs: Sequence[Query]) -> list[Sums]:
        """Each query's sums. Queries that differ only in their period (``on_from``,
        ``on_to``) are asked together as one ``GROUP BY`` (one scan of the journal): each
        movement is summed in the elementary date interval between the periods' bounds it
        falls in, and each query adds up the intervals within its period.

        A query grouped by ``tag`` is asked grouped by customer instead (batched with the
        rest) and its sums added up per tag in Python (:func:`_per_tag`): a customer counts
        in the group of each of its tags, one without tags in the ``NO_TAG`` group."""
        if any("tag" in q.by for q in qs):
            asked = [_by_customer(q) for q in qs]
            answers = self.sums_many(asked)
            tags_of = self._tags()
            return [
                _per_tag(s, q, tags_of) if "tag" in q.by else s
                for q, s in zip(qs, answers, strict=True)
            ]
        families: dict[tuple[Any, ...], list[int]] = {}
        rolled: dict[tuple[Any, ...], list[int]] = {}
        plain: list[int] = []  # no split: summed over the keys of a family with one
        for i, q in enumerate(qs):
            band = (q.bands, q.on_to) if q.split == "band" else None
            if q.by and not q.where and q.split in (None, "late", "band") and set(q.by) <= _ROLLED:
                # one family of every split but the bands of different dates
                rolled.setdefault((band,), []).append(i)
            elif q.split is None:
                plain.append(i)
            else:
                families.setdefault((q.by, q.where, q.kinds, q.split, band), []).append(i)
        for i in plain:
            q = qs[i]
            like = [f for f in families if f[:3] == (q.by, q.where, q.kinds)]
            families.setdefault(
                like[0] if like else (q.by, q.where, q.kinds, None, None), []
            ).append(i)
        if len(rolled) > 1 and (None,) in rolled:  # the no-band family joins a band one
            joined = rolled.pop((None,))
            rolled[next(iter(rolled))] += joined
        out: list[Sums] = [{} for _q in qs]
        for members in families.values():
            for i, got in zip(members, self._family([qs[i] for i in members]), strict=True):
                out[i] = got
        dims = self._customer_dims() if rolled else {}
        for members in rolled.values():
            if len(members) == 1:
                out[members[0]] = self._family([qs[members[0]]])[0]
                continue
            for i, got in zip(members, self._rolled([qs[i] for i in members], dims), strict=True):
                out[i] = got
        return out

    def _tags(self) -> dict[str, tuple[str, ...]]:
        """Each customer's tags, each once, from the customer dimension's ``|a|b|``."""
        import sqlalchemy as sa

        from ..store.sql import CUSTOMER_DIM

        c = CUSTOMER_DIM.c
        with self._engine.connect() as conn:
            return {
                cid: tuple(dict.fromkeys(t for t in (tags or "").split("|") if t))
                for cid, tags in conn.execute(sa.select(c.id, c.tags).where(c.tags != ""))
            }

    def _customer_dims(self) -> dict[str, tuple[str | None, ...]]:
        import sqlalchemy as sa

        from ..store.sql import CUSTOMER_DIM

        c = CUSTOMER_DIM.c
        with self._engine.connect() as conn:
            return {
                row[0]: tuple(row[1:])
                for row in conn.execute(sa.select(c.id, *(c[x] for x in CUSTOMER_DIMS.values())))
            }

    def _rolled(self, qs: list[Query], dims: dict[str, tuple[str | None, ...]]) -> list[Sums]:
        """Grouped queries of one split (by the customer's and the receivable's
        dimensions, no filter) in one scan: the movements summed per customer, receivable
        dimension, kind, split key and date interval (what the customer index holds in its
        order), then added up per query in Python (a customer's own dimensions looked up
        in ``dims``)."""
        import sqlalchemy as sa

        from ..store.sql import MOVEMENTS

        m = MOVEMENTS.c
        ends, spans, conds, interval = _intervals(qs, m.on_date)
        if all(x.kinds is not None for x in qs):
            conds.append(m.kind.in_(sorted({k for x in qs for k in x.kinds or ()})))
        banded = next((x for x in qs if x.split == "band"), None)
        late = any(x.split == "late" for x in qs)
        band_key = sa.literal(0) if banded is None else _split_key(banded, m)
        late_key = _split_key(Query(on_to=ends[-1], split="late"), m) if late else sa.literal(0)
        own = ("salesperson", "region", "product_line")
        stmt = (
            sa.select(
                m.customer_id,
                m.currency,
                *(m[d] for d in own),
                m.kind,
                band_key.label("b"),
                late_key.label("k"),
                interval.label("j"),
                sa.func.sum(m.amount),
                sa.func.sum(m.open_delta),
            )
            .where(*conds)
            .group_by(
                m.customer_id,
                m.currency,
                *(m[d] for d in own),
                m.kind,
                *([] if banded is None else [band_key]),
                *([late_key] if late else []),
                *([] if len(ends) == 1 else [interval]),
            )
        )
        # a row as a flat tuple: the customer, the receivable's dimensions, the customer's,
        # then the band and lateness keys and None (no split); each query picks its own
        at = {d: i for i, d in enumerate(("customer", "salesperson", "region", "product_line"))}
        at.update({d: 4 + i for i, d in enumerate(CUSTOMER_DIMS)})
        split_at = {"band": len(at), "late": len(at) + 1, None: len(at) + 2}
        none = (None,) * len(CUSTOMER_DIMS)
        acc: list[dict[tuple[str, tuple[str | None, ...], Key], list[int]]] = [{} for _x in qs]
        specs = [
            (low, high, x.kinds, _picker(tuple(at[d] for d in x.by)), split_at[x.split], got)
            for x, (low, high), got in zip(qs, spans, acc, strict=True)
        ]
        with self._engine.connect() as conn:
            for cid, cur, sp, region, line, kind, b, k, j, amount, count in conn.execute(stmt):
                flat = (cid, sp, region, line, *dims.get(cid, none), int(b), int(k), None)
                j = int(j)
                amount, count = int(amount), int(count)
                for low, high, kinds, pick, split, got in specs:
                    if low < j <= high and (kinds is None or kind in kinds):
                        whole = (cur, pick(flat), flat[split])
                        sums = got.get(whole)
                        if sums is None:
                            got[whole] = [amount, count]
                        else:
                            sums[0] += amount
                            sums[1] += count
        return [{k: (a, n) for k, (a, n) in got.items()} for got in acc]

    def _family(self, qs: list[Query]) -> list[Sums]:
        import sqlalchemy as sa

        from ..store.sql import CUSTOMER_DIM, MOVEMENTS

        # the family's by, where, kinds and split (a member without a split sums its keys)
        q = next((x for x in qs if x.split is not None), qs[0])
        m, c = MOVEMENTS.c, CUSTOMER_DIM.c
        joined = any(d in CUSTOMER_DIMS for d in q.by) or any(
            d in CUSTOMER_DIMS or d == "tag" for d, _v in q.where
        )

        def column(d: str) -> Any:
            if d in MOVEMENT_DIMS:
                return m[MOVEMENT_DIMS[d]]
            return c[CUSTOMER_DIMS[d]]

        ends, spans, conds, interval = _intervals(qs, m.on_date)
        if q.kinds is not None:
            conds.append(m.kind.in_(q.kinds) if len(q.kinds) > 1 else m.kind == q.kinds[0])
        for d, values in q.where:
            if d == "tag":
                tagged = [c.tags.contains(f"|{v}|") for v in values if v is not None]
                if None in values:  # no tags (or no customer row)
                    tagged.append(sa.or_(c.tags.is_(None), c.tags == ""))
                conds.append(sa.or_(*tagged))
                continue
            col = column(d)
            present = [v for v in values if v is not None]
            parts = []
            if present:
                parts.append(col.in_(present))
            if len(present) < len(values):
                parts.append(col.is_(None))
            conds.append(sa.or_(*parts))
        key = _split_key(q, m)
        groups = [column(d) for d in q.by]
        source: Any = MOVEMENTS
        if joined:
            source = MOVEMENTS.outerjoin(CUSTOMER_DIM, CUSTOMER_DIM.c.id == m.customer_id)
        stmt = (
            sa.select(
                m.currency,
                *groups,
                key.label("k"),
                interval.label("j"),
                sa.func.sum(m.amount),
                sa.func.sum(m.open_delta),
            )
            .select_from(source)
            .where(*conds)
            .group_by(
                m.currency,
                *groups,
                *([] if q.split is None else [key]),
                *([] if len(ends) == 1 else [interval]),
            )
        )
        acc: list[dict[tuple[str, tuple[str | None, ...], Key], list[int]]] = [{} for _x in qs]
        n = len(groups)
        with self._engine.connect() as conn:
            for row in conn.execute(stmt):
                k = None if q.split is None else row[n + 1]
                if isinstance(k, str):  # SQLite gives dates of a CASE-less key as text
                    k = date.fromisoformat(k)
                j = int(row[n + 2])
                whole = (row[0], tuple(row[1 : n + 1]), k)
                bare = (row[0], whole[1], None)
                amount, count = int(row[n + 3]), int(row[n + 4])
                for x, (low, high), got in zip(qs, spans, acc, strict=True):
                    if low < j <= high:
                        sums = got.setdefault(whole if x.split is not None else bare, [0, 0])
                        sums[0] += amount
                        sums[1] += count
        return [{k: (a, n) for k, (a, n) in got.items()} for got in acc]

    def customer_labels(self) -> dict[str, str]:
        import sqlalchemy as sa

        from ..store.sql import CUSTOMER_DIM

        with self._engine.connect() as conn:
            return {
                i: n for i, n in conn.execute(sa.select(CUSTOMER_DIM.c.id, CUSTOMER_DIM.c.name))
            }

    def grades(self) -> list[tuple[str | None, int]]:
        import sqlalchemy as sa

        from ..store.sql import CUSTOMER_DIM

        g = CUSTOMER_DIM.c.grade
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(g, sa.func.count()).group_by(g)).all()
        return sorted(((a, int(b)) for a, b in rows), key=lambda kv: (kv[0] is None, kv[0] or ""))

    def first_day(self) -> date | None:
        import sqlalchemy as sa

        from ..store.sql import MOVEMENTS

        with self._engine.connect() as conn:
            got = conn.execute(sa.select(sa.func.min(MOVEMENTS.c.on_date))).scalar()
        if isinstance(got, str):
            return date.fromisoformat(got)
        return got  # type: ignore[no-any-return]


def _by_customer(q: Query) -> Query:
    """``q`` grouped by customer where it groups by tag (see :func:`_per_tag`)."""
    if "tag" not in q.by:
        return q
    return replace(q, by=tuple("customer" if d == "tag" else d for d in q.by))


def _per_tag(sums: Sums, q: Query, tags_of: Mapping[str, tuple[str, ...]]) -> Sums:
    """The sums of ``q`` (grouped by tag) from those of ``_by_customer(q)``: each customer's
    sums added to the group of each of its tags (``NO_TAG`` without tags)."""
    at = [i for i, d in enumerate(q.by) if d == "tag"]
    out: dict[tuple[str, tuple[str | None, ...], Key], list[int]] = {}
    for (cur, group, k), (amount, count) in sums.items():
        cid = group[at[0]]
        for tag in tags_of.get(cid or "") or (NO_TAG,):
            g = tuple(tag if i in at else v for i, v in enumerate(group))
            acc = out.setdefault((cur, g, k), [0, 0])
            acc[0] += amount
            acc[1] += count
    return {k: (a, n) for k, (a, n) in out.items()}


def _picker(at: tuple[int, ...]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function giving the values at ``at`` of a tuple, as a tuple."""
    if len(at) == 1:
        (i,) = at
        return lambda row: (row[i],)
    get = itemgetter(*at)
    return lambda row: get(row)


#: Dimensions a grouped sum can be rolled up to from the sums per customer and receivable
#: dimension (``SqlSource._rolled``).
_ROLLED = {"customer", "salesperson", "region", "product_line", *CUSTOMER_DIMS}


def _intervals(
    qs: list[Query], on_date: Any
) -> tuple[list[date], list[tuple[int, int]], list[Any], Any]:
    """The date intervals of queries that differ in their periods: the intervals' upper
    ends (every period's last day and the day before its first), each query's intervals
    (``low < j <= high``), the conditions every movement summed meets, and the interval
    of a movement (a SQL expression)."""
    import sqlalchemy as sa

    def before(d: date | None) -> date | None:
        return None if d is None or d == date.min else d - timedelta(days=1)

    ends = sorted({x.on_to for x in qs} | {b for x in qs if (b := before(x.on_from))})
    spans = [
        (-1 if (b := before(x.on_from)) is None else ends.index(b), ends.index(x.on_to)) for x in qs
    ]
    conds: list[Any] = [on_date <= ends[-1]]
    if all(x.on_from is not None for x in qs):
        conds.append(on_date >= min(x.on_from for x in qs if x.on_from is not None))
    interval: Any = sa.literal(0)
    if len(ends) > 1:
        interval = sa.case(
            *((on_date <= e, j) for j, e in enumerate(ends[:-1])), else_=len(ends) - 1
        )
    return ends, spans, conds, interval


def _split_key(q: Query, m: Any) -> Any:
    """The SQL expression of ``q``'s split key over the journal's columns ``m``."""
    import sqlalchemy as sa

    if q.split == "due":
        return m.due_date
    if q.split == "on":
        return m.on_date
    if q.split == "late":
        return sa.case((m.on_date > m.due_date, 1), else_=0)
    if q.split == "band":
        return sa.case(
            (m.due_date >= q.on_to, 0),
            *(
                (m.due_date >= q.on_to - timedelta(days=high), i)
                for i, high in enumerate(q.bands, start=1)
            ),
            else_=len(q.bands) + 1,
        )
    return sa.literal(0)


def source_of(store: Store, *, reference: bool = False) -> Source:
    """The SQL source for a SQL store, else (or with ``reference``) the Python one."""
    engine = getattr(store, "engine", None)
    if engine is not None and not reference:
        return SqlSource(engine)
    return PySource(store)
