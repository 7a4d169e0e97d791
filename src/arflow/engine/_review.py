"""Review (``settings.review: true``): the decisions a run holds for a person to look at,
shown whole with their rendered messages, edited, dropped, held by customer and released.

The proposal is the decisions stored with status ``held``. What a reviewer does to it is
kept in the store beside them, with no table of its own:

- an edit of a message (its subject, text or send date) is written into the ``why`` of
  each decision (line) the message carries, under ``review.edits``; the lines of an edited
  message stay one message from then on (a later run's lines for the customer do not merge
  into it), so the edit applies to the message the reviewer saw;
- a dropped line is the decision with status ``dropped``; a released one is the decision
  with status ``planned`` (carried out), like a run's;
- a held customer is the last audit record on ``("proposal", customer id)``.

Every action writes audit records (who, what, before and after) in the transaction that
makes it, and a refused action changes nothing. See ``docs/review.md``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..actions import Message
from ..decisions import Decision
from ..domain import AuditRecord, Customer
from ..errors import (
    DateOutOfRange,
    IllegalTransition,
    NotReviewer,
    UnknownObject,
    ValidationError,
)
from ..ledger import Batch, Ledger
from ..lifecycle import LIVE_STATES
from ..outbox import micros
from ..store.base import BookReader, OutboxRecord, Store
from ._record import ENGINE_ACTOR, _effects, _record
from ._tasks import track_tasks

#: the ``subject_kind`` of the audit records of a customer held or let go in a proposal
PROPOSAL = "proposal"


@dataclass(frozen=True)
class ProposedMessage:
    """One message of a proposal as it would go out if released now."""

    key: str
    channel: str
    to: tuple[str, ...]
    subject: str | None
    text: str
    send_at: datetime
    lines: tuple[str, ...]
    edited: bool = False
    problem: str | None = None  # a message that cannot be rendered or reached: why


@dataclass(frozen=True)
class CustomerProposal:
    """A customer's part of the proposal: its held lines and their messages."""

    customer_id: str
    on_hold: bool
    lines: tuple[Decision, ...]
    messages: tuple[ProposedMessage, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "on_hold": self.on_hold,
            "lines": [
                {
                    "key": d.key,
                    "kind": d.kind,
                    "rule": d.rule,
                    "step": d.step,
                    "subject_id": d.subject_id,
                    "as_of": d.as_of.isoformat(),
                    "reason": d.reason,
                }
                for d in self.lines
            ],
            "messages": [
                {
                    "key": m.key,
                    "channel": m.channel,
                    "to": list(m.to),
                    "subject": m.subject,
                    "text": m.text,
                    "send_at": m.send_at.isoformat(),
                    "lines": list(m.lines),
                    "edited": m.edited,
                    "problem": m.problem,
                }
                for m in self.messages
            ],
        }


def proposal(store: Store) -> list[Decision]:
    """Decisions held for review, oldest first."""
    held = [Decision.model_validate_json(r.body) for r in store.decisions(status="held")]
    return sorted(held, key=lambda d: (d.as_of, d.customer_id, d.key))


# -- who may review ---------------------------------------------------------------------------


def check_reviewer(engine: Any, who: str) -> None:
    """Refuse (:class:`NotReviewer`) ``who`` unless the pack names no review role or ``who``
    is an active person of the directory holding it."""
    role = engine.settings.review_role
    if role is None:
        return
    p = engine.store.get("person", who)
    if p is None:
        raise NotReviewer(who, role, f"{who!r} is not a person of the directory")
    if not p.active:
        raise NotReviewer(who, role, f"{p.id} has left")
    if role not in p.roles:
        raise NotReviewer(who, role, f"{p.id} holds {', '.join(p.roles) or 'no role'}")


# -- the proposal, whole ---------------------------------------------------------------------


def _edits(lines: Iterable[Decision]) -> dict[str, dict[str, Any]]:
    """The message edits the lines carry, by message key."""
    out: dict[str, dict[str, Any]] = {}
    for d in lines:
        for e in d.why.get("review", {}).get("edits", ()):
            out.setdefault(e["message"], e)
    return out


def held_customers(store: Store, customer_ids: Iterable[str]) -> set[str]:
    """The customers whose proposal a reviewer holds (their last proposal audit says so)."""
    trails = store.audit_trails(PROPOSAL, set(customer_ids))
    return {cid for cid, t in trails.items() if t and t[-1].after_state == "on hold"}


def compose(
    engine: Any, book: BookReader, lines: Sequence[Decision], at: datetime
) -> list[tuple[OutboxRecord, tuple[str, ...], dict[str, Any] | None]]:
    """The outbox records ``lines`` give when released together at ``at``: each edited
    message composed from its own lines (those of ``lines``), the rest together, the edits
    applied; with each record the lines it carries and the edit applied (or None)."""
    planned = [d.model_copy(update={"status": "planned"}) for d in lines]
    edits = _edits(planned)
    # each edited message's lines are composed on their own: the message the reviewer saw
    groups: list[tuple[list[Decision], list[dict[str, Any]]]] = []
    taken: set[str] = set()
    for ed in edits.values():
        mine = {d.key for d in planned if d.key in ed["lines"]}
        if not mine:
            continue
        found = next((g for g in groups if mine & {d.key for d in g[0]}), None)
        if found is not None:
            found[1].append(ed)  # another message of the same lines (the call beside a mail)
            continue
        groups.append(([d for d in planned if d.key in mine and d.key not in taken], [ed]))
        taken |= mine
    rest = [d for d in planned if d.key not in taken]
    if rest:
        groups.append((rest, []))
    out: list[tuple[OutboxRecord, tuple[str, ...], dict[str, Any] | None]] = []
    for group, eds in groups:
        if not group:
            continue
        for rec in engine.composer.records(book, group, at):
            carried = _carried(rec, group)
            e = next((x for x in eds if rec.status != "dead" and _matches(rec, x)), None)
            if e is not None:
                rec = _apply(engine, book, rec, e)
            out.append((rec, carried, e))
    return out


def _carried(rec: OutboxRecord, group: Sequence[Decision]) -> tuple[str, ...]:
    if rec.status != "dead":
        keys = tuple(json.loads(rec.body).get("decision_keys", ()))
        if keys:
            return keys
    base = rec.key.split("#", 1)[0]
    found = tuple(d.key for d in group if d.key == base)
    return found or tuple(d.key for d in group)


def _matches(rec: OutboxRecord, e: dict[str, Any]) -> bool:
    """Whether the edit ``e`` is of the message ``rec`` (not its copy or another action)."""
    if rec.key.endswith("~cc"):
        return False
    m = json.loads(rec.body)
    return bool(m.get("action") == e["action"] and m.get("template") == e["template"])


def _apply(engine: Any, book: BookReader, rec: OutboxRecord, e: dict[str, Any]) -> OutboxRecord:
    m = Message.model_validate_json(rec.body)
    update: dict[str, Any] = {"data": {**m.data, "edited_by": e["by"]}}
    if e.get("subject") is not None:
        update["subject"] = e["subject"]
    if e.get("text") is not None:
        update["text"] = e["text"]
        update["html"] = None  # the reviewer wrote text: no stale HTML beside it
    next_at = rec.next_at
    if e.get("send_on") is not None:
        next_at = micros(
            send_instant(engine, book, m.customer_id, date.fromisoformat(e["send_on"]))
        )
    return OutboxRecord(
        key=rec.key,
        channel=rec.channel,
        customer_id=rec.customer_id,
        body=m.model_copy(update=update).model_dump_json(),
        status=rec.status,
        next_at=next_at,
        created_at=rec.created_at,
    )


def send_instant(engine: Any, book: BookReader, customer_id: str, on: date) -> datetime:
    """The first instant of ``on`` (or the first open day after) inside the pack's send
    window, in the customer contact's time zone; midnight UTC with no window."""
    customer: Customer | None = book.get("customer", customer_id)
    window = engine._window
    if window is None or customer is None:
        return datetime(on.year, on.month, on.day, tzinfo=UTC)
    found: datetime = engine._send_times.at(customer, on, window, engine.calendar)
    return found


def view(engine: Any, customer: str | None = None) -> list[CustomerProposal]:
    """The proposal grouped by customer, each with its messages rendered as they would go
    out if released now (edits applied)."""
    held = [d for d in proposal(engine.store) if customer is None or d.customer_id == customer]
    by_customer: dict[str, list[Decision]] = {}
    for d in held:
        by_customer.setdefault(d.customer_id, []).append(d)
    on_hold = held_customers(engine.store, by_customer)
    out: list[CustomerProposal] = []
    for cid in sorted(by_customer):
        lines = by_customer[cid]
        at = _moment(lines)
        msgs = []
        for rec, carried, e in compose(engine, engine.store, lines, at):
            when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=rec.next_at)
            if rec.status == "dead":
                msgs.append(
                    ProposedMessage(
                        rec.key, rec.channel, (), None, "", when, carried, problem=rec.last_error
                    )
                )
                continue
            m = Message.model_validate_json(rec.body)
            msgs.append(
                ProposedMessage(
                    rec.key, m.channel, m.to, m.subject, m.text, when, carried, e is not None
                )
            )
        out.append(CustomerProposal(cid, cid in on_hold, tuple(lines), tuple(msgs)))
    return out


def _moment(lines: Sequence[Decision]) -> datetime:
    d = max(x.as_of for x in lines)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


# -- actions ----------------------------------------------------------------------------------


def _audit(
    batch: Batch,
    kind: str,
    subject: str,
    event_type: str,
    who: str,
    at: datetime,
    before: Any,
    after: Any,
    states: tuple[str | None, str | None] = (None, None),
) -> None:
    batch.tx.add_audit(
        AuditRecord(
            event_id=f"review:{uuid.uuid4().hex}",
            event_type=event_type,
            subject_kind=kind,
            subject_id=subject,
            actor=who,
            occurred_at=at,
            summary=json.dumps({"before": before, "after": after}, ensure_ascii=False),
            before_state=states[0],
            after_state=states[1],
        )
    )


def _line(store: Store, key: str, action: str) -> Decision:
    """The held decision ``key``; :class:`UnknownObject` when there is none,
    :class:`IllegalTransition` when it is no longer held (released, dropped, skipped)."""
    rec = store.decision(key)
    if rec is None:
        raise UnknownObject("decision", key)
    if rec.status != "held":
        raise IllegalTransition("decision", key, rec.status, action)
    return Decision.model_validate_json(rec.body)


def edit(
    engine: Any,
    key: str,
    *,
    by: str,
    at: datetime,
    subject: str | None = None,
    text: str | None = None,
    send_on: date | None = None,
) -> ProposedMessage:
    """Change a held message's subject, text or send date; returns the message as it now
    stands. ``key`` is a message's key (``proposal show``) or a line's whose decision
    carries one message only."""
    check_reviewer(engine, by)
    if subject is None and text is None and send_on is None:
        raise ValidationError(f"edit {key!r}: give a subject, a text or a send date")
    if text is not None and not text.strip():
        raise ValidationError(f"edit {key!r}: the text is empty")
    # read and written in one write transaction: writers are serialised, so the lines
    # cannot be released or dropped between the check and the write
    with engine.ledger.batch() as batch:
        msg, lines = _find_message(engine, key)
        if send_on is not None:
            lo, hi = send_bounds(engine, lines)
            if not lo <= send_on <= hi:
                raise DateOutOfRange(
                    f"edit {msg.key!r}: send date {send_on} is outside {lo} .. {hi} (not before "
                    "the run date, not after the step's next occurrence nor settings.review_days "
                    "after the run date)",
                    send_on,
                )
        raw, old = _record_body(engine, msg, lines)
        body = json.loads(raw)
        new = {
            "message": msg.key,
            "lines": list(msg.lines),
            "action": body.get("action"),
            "template": body.get("template"),
            "subject": subject if subject is not None else (old or {}).get("subject"),
            "text": text if text is not None else (old or {}).get("text"),
            "send_on": send_on.isoformat() if send_on else (old or {}).get("send_on"),
            "by": by,
            "at": at.isoformat(),
        }
        before = {"subject": msg.subject, "text": msg.text, "send_at": msg.send_at.isoformat()}
        edited: list[Decision] = []
        for d in lines:
            review = dict(d.why.get("review", {}))
            # an edit of this message replaces the one before it, even when the message's
            # key changed since (a line of it was dropped)
            edits = [
                e
                for e in review.get("edits", ())
                if e["message"] != msg.key
                and not (old is not None and e["message"] == old["message"])
            ]
            review["edits"] = [*edits, new]
            edited.append(d.model_copy(update={"why": {**d.why, "review": review}}))
        after = _message(engine, msg.key, edited)
        for d in edited:
            batch.tx.add_decision(_record(d))
        _audit(
            batch,
            "message",
            msg.key,
            "ProposalEdited",
            by,
            at,
            before,
            {"subject": after.subject, "text": after.text, "send_at": after.send_at.isoformat()},
        )
    return after


def _message(engine: Any, key: str, lines: Sequence[Decision]) -> ProposedMessage:
    """Message ``key`` of ``lines`` as it would go out (edits applied)."""
    for rec, carried, e in compose(engine, engine.store, lines, _moment(lines)):
        if rec.key == key and rec.status != "dead":
            m = Message.model_validate_json(rec.body)
            when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=rec.next_at)
            return ProposedMessage(
                key, m.channel, m.to, m.subject, m.text, when, carried, e is not None
            )
    raise UnknownObject("message", key)  # pragma: no cover


def _record_body(
    engine: Any, msg: ProposedMessage, lines: Sequence[Decision]
) -> tuple[str, dict[str, Any] | None]:
    """The outbox body of held message ``msg`` and the edit it carries (None: none)."""
    for rec, _c, e in compose(engine, engine.store, lines, _moment(lines)):
        if rec.key == msg.key:
            return rec.body, e
    raise UnknownObject("message", msg.key)  # pragma: no cover


def _find_message(engine: Any, key: str) -> tuple[ProposedMessage, list[Decision]]:
    """The held message ``key`` names (a message key, or a line carrying one message) and
    its lines."""
    rec = engine.store.decision(key)
    if rec is not None and rec.status != "held":
        raise IllegalTransition("decision", key, rec.status, "edit")
    customer = rec.customer_id if rec is not None else None
    for c in view(engine, customer):
        for m in c.messages:
            if m.key == key:
                return _editable(key, m), [d for d in c.lines if d.key in m.lines]
        if rec is not None:
            found = [m for m in c.messages if key in m.lines and not m.key.endswith("~cc")]
            if len(found) == 1:
                m = found[0]
                return _editable(key, m), [d for d in c.lines if d.key in m.lines]
            raise ValidationError(
                f"edit {key!r}: the line carries {len(found)} messages; name one: "
                + ", ".join(m.key for m in found)
            )
    if engine.store.outbox_item(key) is not None:
        raise IllegalTransition("message", key, "released", "edit")
    raise UnknownObject("message", key)


def _editable(key: str, m: ProposedMessage) -> ProposedMessage:
    if m.problem is not None:
        raise ValidationError(f"edit {key!r}: the message cannot be sent ({m.problem})")
    return m


def send_bounds(engine: Any, lines: Sequence[Decision]) -> tuple[date, date]:
    """The dates a held message of ``lines`` may be moved to: from its run date to the
    earliest of ``settings.review_days`` later and the next occurrence of a step of the
    ladder of any of its dunning lines (the next reminder must not overtake this one)."""
    lo = max(d.as_of for d in lines)
    hi = lo + timedelta(engine.settings.review_days)
    ladders = {lad.id: lad for lad in engine.pack.ladders}
    for d in lines:
        lad = ladders.get(d.rule)
        if d.kind != "dunning" or lad is None:
            continue
        r = engine.store.get("receivable", d.subject_id)
        if r is None:
            continue
        anchors = {"due": r.due_date, "issue": r.issue_date}
        for st in lad.steps:
            occ = st.schedule.occurrences(
                anchors, engine.calendar, start=d.occurrence + timedelta(1), end=hi
            )
            if occ:
                hi = min(hi, max(lo, occ[0]))
    return lo, hi


def drop(engine: Any, keys: Iterable[str], *, by: str, at: datetime) -> int:
    """Drop held lines for good; returns how many."""
    check_reviewer(engine, by)
    wanted = list(dict.fromkeys(keys))
    with engine.ledger.batch() as batch:  # checked and written under the writers' lock
        lines = [_line(engine.store, k, "drop") for k in wanted]
        for d in lines:
            reason = f"dropped by {by}"
            batch.tx.add_decision(
                _record(d.model_copy(update={"status": "dropped", "reason": reason}))
            )
            _audit(
                batch,
                "decision",
                d.key,
                "ProposalDropped",
                by,
                at,
                "held",
                "dropped",
                ("held", "dropped"),
            )
    return len(lines)


def hold(engine: Any, customer: str, *, by: str, at: datetime, lift: bool = False) -> int:
    """Hold a customer's lines (``lift``: let them go again): a release of everything
    leaves them held; a release naming their keys still releases them. Returns how many
    lines the customer has held now."""
    check_reviewer(engine, by)
    if engine.store.get("customer", customer) is None:
        raise UnknownObject("customer", customer)
    with engine.ledger.batch() as batch:  # checked and written under the writers' lock
        was = customer in held_customers(engine.store, [customer])
        if was != lift:
            state = "on hold" if was else "open"
            raise IllegalTransition(PROPOSAL, customer, state, "lift" if lift else "hold")
        now = "open" if lift else "on hold"
        then = "on hold" if lift else "open"
        event = "ProposalLifted" if lift else "ProposalHeld"
        _audit(batch, PROPOSAL, customer, event, by, at, then, now, (then, now))
    return sum(1 for d in proposal(engine.store) if d.customer_id == customer)


def release(
    engine: Any,
    keys: Iterable[str] | None = None,
    *,
    drop: Iterable[str] = (),
    hold_customers: Iterable[str] = (),
    at: datetime | None = None,
    actor: str = ENGINE_ACTOR,
) -> dict[str, int]:
    """Release held decisions (all, or ``keys``): they are carried out now, and their
    messages (as edited) queued. ``drop`` removes items for good; customers in
    ``hold_customers``, and customers a reviewer holds, stay held (unless their keys are
    named). A key released before is left alone: releasing twice sends once."""
    check_reviewer(engine, actor)
    ledger: Ledger = engine.ledger
    # read, checked and written under the writers' lock: two releases at once cannot both
    # carry out a line
    with ledger.batch() as batch:
        named = None if keys is None else list(dict.fromkeys(keys))
        dropped, kept = set(drop), set(hold_customers)
        held = proposal(ledger.store)
        by_key = {d.key: d for d in held}
        for k in [*(named or ()), *dropped]:
            if k not in by_key:
                rec = ledger.store.decision(k)
                if rec is None:
                    raise UnknownObject("decision", k)
                if k in dropped or rec.status == "dropped":
                    raise IllegalTransition("decision", k, rec.status, "release")
        wanted = None if named is None else {k for k in named if k in by_key}
        kept |= (
            held_customers(ledger.store, {d.customer_id for d in held}) if wanted is None else set()
        )
        chosen = [
            d
            for d in held
            if d.key not in dropped
            and d.customer_id not in kept
            and (wanted is None or d.key in wanted)
        ]
        chosen_keys = {d.key for d in chosen}
        for e in _edits(chosen).values():
            pinned = {k for k in e["lines"] if k in by_key and k not in dropped}
            if not pinned <= chosen_keys:
                raise ValidationError(
                    f"release: message {e['message']!r} was edited; release its lines together: "
                    + ", ".join(sorted(pinned))
                )
        counts = {"released": 0, "dropped": 0, "held": 0, "skipped": 0}
        released: list[Decision] = []
        for d in held:
            if d.key in dropped:
                batch.tx.add_decision(
                    _record(
                        d.model_copy(update={"status": "dropped", "reason": f"dropped by {actor}"})
                    )
                )
                _audit(
                    batch,
                    "decision",
                    d.key,
                    "ProposalDropped",
                    actor,
                    at or _moment([d]),
                    "held",
                    "dropped",
                    ("held", "dropped"),
                )
                counts["dropped"] += 1
            elif d.key not in chosen_keys:
                counts["held"] += 1
            elif (gone := _gone(batch, d)) is not None:
                batch.tx.add_decision(
                    _record(d.model_copy(update={"status": "skipped", "reason": gone}))
                )
                counts["skipped"] += 1
            else:
                released.append(d.model_copy(update={"status": "planned"}))
                counts["released"] += 1
        if released:
            # rendered before the effects are booked, as in run()
            moment = at or _moment(released)
            records = [out for out, _carried, _e in compose(engine, batch.tx, released, moment)]
            track_tasks(batch, engine.pack, records, released, moment)
        for d in released:
            when = at or _moment([d])
            batch.tx.add_decision(_record(d))
            _effects(batch, d, when)
            _audit(
                batch,
                "decision",
                d.key,
                "ProposalReleased",
                actor,
                when,
                "held",
                "released",
                ("held", "released"),
            )
    return counts


def _gone(batch: Batch, d: Decision) -> str | None:
    """Why a decision held for review can no longer be carried out (None: it can): the
    receivable it is about was paid, credited or written off since."""
    if d.subject_kind != "receivable" or d.kind not in ("dunning", "alert"):
        return None
    r = batch.tx.get("receivable", d.subject_id)
    if r is None or r.state not in LIVE_STATES:
        return (
            f"receivable {d.subject_id} is {'gone' if r is None else r.state} since it was decided"
        )
    return None
