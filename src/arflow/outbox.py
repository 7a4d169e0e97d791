"""The outbox: decided actions become rendered messages in the transaction that records the
decisions, and a :class:`Dispatcher` delivers them through adapters, exactly once in effect.

Writing (:class:`Composer`, used by ``Engine.run``, ``Engine.release`` and ``Engine.handle``):
the decisions of one transaction are grouped into notices (one e-mail per customer listing
every invoice), each notice is rendered with the pack's templates in the reader's locale, and
the message is queued under the notice's key. A key already queued is left alone, so a run
repeated, or two runners at once, queue nothing twice. A message that cannot be rendered is
queued as a dead letter carrying the error: nothing decided disappears silently.

Delivering (:class:`Dispatcher`): claim due messages (several dispatchers may run at once:
PostgreSQL hands each message to one of them with ``FOR UPDATE SKIP LOCKED``), deliver each
through the adapter for its channel, record the outcome. A temporary failure is retried with
exponential backoff and jitter until ``max_attempts``; then, or at once on a permanent
failure, the message is a dead letter (``arflow outbox dead``, ``arflow outbox retry``) and
its next fallback channel, pre-rendered at decision time, is queued instead. A bounce, an
invalid number or an unsubscribe is recorded on the contact (``ContactFeedback``, audited),
so the next step does not use that channel. A dispatcher that dies mid-batch leaves its
claims to expire (``lease``); another dispatcher (or it, restarted) takes them over.

Every claim carries a token of its own. Just before a message is sent its claim is renewed
for a whole lease (and the rest of the batch with it, every third of a lease), and only
while it still holds the token; while the adapter hands it over, a heartbeat thread renews
it every third of a lease; an outcome is recorded only under the token too. So a batch, or
one slow hand-over, may take far longer than the lease, and a message whose claim was taken
over is neither sent nor settled by the dispatcher that lost it.

The guarantee: at-least-once delivery to the adapter, with the same idempotency key on every
attempt. A message is repeated only when a dispatcher dies after the receiver accepted it and
before the outbox recorded that, or when its heartbeat cannot reach the store for a whole
lease during a hand-over; the repeat carries the same key (``Message-ID``, task id,
``Idempotency-Key``) so the receiver can drop it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .actions import (
    CHANNEL_OF,
    Adapter,
    DeliveryError,
    Message,
    PermanentFailure,
    TemporaryFailure,
    redact_urls,
)
from .domain import AuditRecord, Contact, Customer, Receivable
from .errors import ArflowError, StoreError
from .events import ContactFeedback
from .rules.schema import Action
from .store.base import BookReader, OutboxRecord, Settle, Store, StoreTx

if TYPE_CHECKING:
    from .engine import Decision, Notice
    from .ledger import Ledger
    from .rules.loader import RulePack
    from .templates import TemplateSet

log = logging.getLogger("arflow.outbox")


def micros(at: datetime) -> int:
    """An aware instant as UTC microseconds since the epoch (how the outbox stores time)."""
    if at.tzinfo is None:
        raise ArflowError(f"instant {at!r} has no time zone")
    delta = at.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def instant(us: int | None) -> datetime | None:
    if us is None:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


# -- composing messages from decisions ---------------------------------------------------------


class Composer:
    """Renders the outbound actions of decisions into messages and queues them."""

    def __init__(
        self, pack: RulePack, templates: TemplateSet | None = None, store: Store | None = None
    ) -> None:
        self.pack = pack
        self._templates = templates
        self.store = store
        self._histories: dict[str, list[AuditRecord]] = {}  # read ahead by ``queue``

    @property
    def templates(self) -> TemplateSet | None:
        if self._templates is None and self.pack.template_dirs:
            from .templates import TemplateSet

            self._templates = TemplateSet.load(self.pack.template_dirs[0])
        return self._templates

    def queue(self, tx: StoreTx, decisions: Sequence[Decision], at: datetime) -> int:
        """Queue a message for every outbound action of ``decisions``; returns how many."""
        records = self.records(tx, decisions, at)
        for rec in records:
            tx.add_outbox(rec)
        return len(records)

    def records(
        self, book: BookReader, decisions: Sequence[Decision], at: datetime
    ) -> list[OutboxRecord]:
        """The outbox records of ``decisions``: a message for every outbound action, rendered
        from the book as ``book`` reads it (a transaction, or a store). The engine renders
        them before it books the decisions' own effects: a message shows the book as the
        rules saw it when they decided."""
        from .engine import group_notices

        at_ = {d.key: i for i, d in enumerate(decisions)}  # a notice's decisions, in order
        notices = group_notices(decisions)
        # the histories the notices attach, read in a few queries rather than one each
        wanted = {sid for nt in notices if nt.action.attach_history for sid in nt.subject_ids}
        self._histories = (
            self.store.audit_trails("receivable", wanted) if wanted and self.store else {}
        )
        out: list[OutboxRecord] = []
        try:
            for notice in notices:
                if notice.action.type not in CHANNEL_OF:
                    continue
                mine = [decisions[i] for i in sorted(at_[k] for k in notice.decision_keys)]
                out.extend(self._records(book, notice, mine, at))
        finally:
            self._histories = {}  # a later compose() reads the trail as it is then
        return out

    def _history(self, receivable_id: str) -> list[AuditRecord]:
        if receivable_id in self._histories:
            return self._histories[receivable_id]
        return self.store.audit_trail("receivable", receivable_id) if self.store else []

    def _records(
        self, tx: BookReader, notice: Notice, decisions: list[Decision], at: datetime
    ) -> list[OutboxRecord]:
        """The notice's message, and the e-mail copy of its ``cc`` when its channel cannot
        carry one (:meth:`copy`); a dead letter when it cannot be rendered."""
        send_at = max((d.send_at for d in decisions if d.send_at is not None), default=at)
        base = dict(
            key=notice.key,
            channel=CHANNEL_OF[notice.action.type],
            customer_id=notice.customer_id,
            created_at=micros(at),
            next_at=micros(max(send_at, at)),
        )
        try:
            message = self.compose(tx, notice, decisions)
            copy = self.copy(tx, notice, decisions, message)
        except ArflowError as exc:
            return [
                OutboxRecord(
                    **base,  # type: ignore[arg-type]
                    body="{}",
                    status="dead",
                    last_error=f"could not be rendered: {exc}",
                )
            ]
        out = [
            OutboxRecord(
                **{**base, "channel": message.channel},  # type: ignore[arg-type]
                body=message.model_dump_json(),
            )
        ]
        if copy is not None:
            # the channel does not carry the cc: the copy does
            out[0] = replace(out[0], body=message.model_copy(update={"cc": ()}).model_dump_json())
            out.append(
                OutboxRecord(
                    **{**base, "key": copy.key, "channel": copy.channel},  # type: ignore[arg-type]
                    body=copy.model_dump_json(),
                )
            )
        return out

    def copy(
        self, tx: BookReader, notice: Notice, decisions: list[Decision], message: Message
    ) -> Message | None:
        """The copy for the action's ``cc`` when ``message`` goes out on a channel that
        cannot carry one (an SMS reaches the numbers in ``to`` only): an e-mail to the ``cc``
        recipients (internal people are reached by e-mail, never by a phone number the book
        does not hold) with the same text, queued beside the message under ``<key>~cc``.
        None when there is nothing to copy."""
        a = notice.action
        if message.channel not in NO_COPIES or not a.cc:
            return None
        customer: Customer | None = tx.get("customer", notice.customer_id)
        if customer is None:
            return None
        cc = self._addresses(customer, a.cc, "email", decisions[0].recipients)
        cc = tuple(x for x in cc if x not in message.to)
        if not cc:
            return None
        sent_to = ", ".join(message.to)
        return Message(
            key=f"{message.key}~cc",
            channel="email",
            action="email",
            customer_id=message.customer_id,
            to=cc,
            subject=message.subject or f"[{message.channel.upper()} copy] {customer.name}",
            text=f"{message.channel.upper()} to {customer.name} ({sent_to}):\n\n{message.text}",
            locale=message.locale,
            priority=message.priority,
            template=message.template,
            rule=message.rule,
            decision_keys=message.decision_keys,
            subject_ids=message.subject_ids,
            data={**message.data, "copy_of": {"channel": message.channel, "to": list(message.to)}},
        )

    def compose(self, tx: BookReader, notice: Notice, decisions: list[Decision]) -> Message:
        """The message for ``notice``, with its fallbacks; raises on a rendering error."""
        a = notice.action
        customer: Customer | None = tx.get("customer", notice.customer_id)
        if customer is None:
            raise ArflowError(f"unknown customer {notice.customer_id!r}")
        first = decisions[0]
        as_of = first.as_of
        chain = [CHANNEL_OF[a.type], *(c for c in a.fallback if c != CHANNEL_OF[a.type])]
        built: list[Message] = []
        for i, channel in enumerate(chain):
            to = self._addresses(customer, a.to, channel, first.recipients)
            cc = self._addresses(customer, a.cc, channel, first.recipients)
            if channel == "task" and i > 0 and not to:
                to = tuple(x for x in (customer.salesperson,) if x)
            if not to and i + 1 < len(chain):
                continue  # no address on this channel: the next one is the message
            key = notice.key if not built else f"{notice.key}~{channel}"
            built.append(
                self._render(tx, key, channel, a, customer, notice, decisions, to, cc, as_of)
            )
        if not built:
            raise ArflowError(f"no channel reaches {', '.join(a.to)} of {customer.id}")
        head, *rest = built
        return head.model_copy(update={"fallbacks": tuple(rest)})

    def _addresses(
        self,
        customer: Customer,
        roles: Iterable[str],
        channel: str,
        recipients: Mapping[str, str | None],
    ) -> tuple[str, ...]:
        out: list[str] = []
        for role in roles:
            if role == "customer":
                contact = _reachable(customer.contacts, channel)
                addr = None
                if contact is not None:
                    addr = contact.phone if channel == "sms" else contact.email
                    if channel == "task":
                        addr = customer.salesperson
            else:
                addr = recipients.get(role)
                if addr is None:
                    addr = self.pack.roles.get(role) or _person(customer, role)
            if addr and addr not in out:
                out.append(addr)
        return tuple(out)

    def _render(
        self,
        tx: BookReader,
        key: str,
        channel: str,
        a: Action,
        customer: Customer,
        notice: Notice,
        decisions: list[Decision],
        to: tuple[str, ...],
        cc: tuple[str, ...],
        as_of: date,
    ) -> Message:
        from .templates import build_context

        receivables: list[Receivable] = [
            r for sid in notice.subject_ids if (r := tx.get("receivable", sid)) is not None
        ]
        first = decisions[0]
        if not receivables:
            receivables = self._items_of(tx, first, customer, as_of)
        extra: dict[str, Any] = {}
        if first.kind == "approval":
            extra["order"] = tx.get("order", first.subject_id)
        if first.kind == "milestone":
            contract = tx.get("contract", first.subject_id)
            extra["contract"] = contract
            if contract is not None:
                node_id = first.why.get("payment_node")
                extra["node"] = next((n for n in contract.payment_nodes if n.id == node_id), None)
            extra["milestone"] = tx.get("milestone", str(first.why.get("milestone")))
        ratio = first.why.get("facts", {}).get("customer.exposure_ratio")
        if ratio is not None:
            extra["exposure_ratio"] = Decimal(str(ratio))
        contact = customer.contacts[0] if customer.contacts else None
        ctx = build_context(
            customer,
            receivables,
            as_of=as_of,
            company_name=self.pack.settings.company_name or "",
            contact=contact,
            **{k: v for k, v in extra.items() if v is not None},
        )
        customer_facing = "customer" in a.to
        locale = (
            contact.locale
            if customer_facing and contact is not None
            else self.pack.settings.locales[0]
        )
        subject = text = html = None
        used_locale = None
        template = a.template
        if channel != CHANNEL_OF[a.type] and template is not None:
            variant = f"{template}_{channel}"
            template = variant if variant in self.pack.templates else template
        if template is not None:
            ts = self.templates
            if ts is None:
                raise ArflowError(f"template {template!r}: the pack has no templates folder")
            got = ts.render(template, locale, ctx)
            subject, text, html, used_locale = got.subject, got.text, got.html, got.locale
            if channel == "sms":
                subject, html = None, None
        due = None
        if a.due_in:
            from .calendar import Offset

            due = Offset.parse(f"due+{a.due_in}").resolve({"due": as_of}, self.pack.calendar)
        data: dict[str, Any] = {"invoices": list(notice.subject_ids)}
        if a.attach_history:
            data["history"] = [
                {
                    "subject": f"{rec.subject_kind}:{rec.subject_id}",
                    "at": rec.occurred_at.isoformat(),
                    "actor": rec.actor,
                    "event": rec.event_type,
                    "reason": rec.reason,
                }
                for sid in notice.subject_ids
                for rec in self._history(sid)
            ]
        return Message(
            key=key,
            channel=channel,
            action=a.type if channel == CHANNEL_OF[a.type] else channel,
            customer_id=customer.id,
            to=to,
            cc=cc,
            subject=subject,
            text=text or "",
            html=html,
            locale=used_locale,
            priority=a.priority,
            due=due,
            url=a.url,
            template=template,
            rule=first.rule,
            decision_keys=notice.decision_keys,
            subject_ids=notice.subject_ids,
            data=data,
        )

    def _items_of(
        self, tx: BookReader, d: Decision, customer: Customer, as_of: date
    ) -> list[Receivable]:
        """The invoices a message about a customer or a promise lists: the promise's items;
        for a customer its overdue items, else all its open ones."""
        if d.subject_kind == "promise":
            promise = tx.get("promise", d.subject_id)
            ids = promise.receivable_ids if promise is not None else ()
            return [r for rid in ids if (r := tx.get("receivable", rid)) is not None]
        if d.subject_kind != "customer":
            return []
        from .ledger import LIVE_STATES

        live = tx.find("receivable", customer_id=customer.id, states=LIVE_STATES)
        overdue = [r for r in live if r.due_date < as_of]
        return overdue or live


#: channels whose adapters reach the ``to`` recipients only: a ``cc`` goes as an e-mail copy
NO_COPIES = frozenset({"sms"})


def _reachable(contacts: Sequence[Contact], channel: str) -> Contact | None:
    """The first contact that can still be reached on ``channel``."""
    for c in contacts:
        if c.unsubscribed and channel in ("email", "sms"):
            continue
        if channel == "email" and c.email and not c.email_invalid:
            return c
        if channel == "sms" and c.phone and not c.phone_invalid:
            return c
        if channel == "task":
            return c
    return None


def _person(customer: Customer, role: str) -> str | None:
    if role == "salesperson":
        return customer.salesperson
    if role == "sales_manager":
        return customer.sales_manager
    return None


# -- delivering -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits ``base * 2**(n-1)``, at most ``cap``,
    less a random part of up to ``jitter`` of it (so dispatchers retrying together spread)."""

    max_attempts: int = 8
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=6)
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random) -> timedelta:
        # in float seconds, the exponent bounded: ``base * 2**n`` as a timedelta overflows
        # long before the attempts of a generous ``max_attempts`` run out
        doubled = self.base.total_seconds() * 2.0 ** min(max(0, attempt - 1), 200)
        raw = min(self.cap.total_seconds(), doubled)
        factor = 1 - self.jitter * rng.random()
        return timedelta(seconds=raw * factor)


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    fallbacks: int = 0
    lost: int = 0  # claims another dispatcher took over before they were sent
    errors: list[str] = field(default_factory=list)

    def add(self, other: DispatchStats) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead
        self.fallbacks += other.fallbacks
        self.lost += other.lost
        self.errors.extend(other.errors)


class _Bucket:
    """A token bucket: at most ``rate`` deliveries per second on one channel."""

    def __init__(self, rate: float, sleep: Callable[[float], None]) -> None:
        self.rate = rate
        self.sleep = sleep
        self.next_free = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        with self.lock:
            now = time.monotonic()
            wait = self.next_free - now
            self.next_free = max(now, self.next_free) + 1.0 / self.rate
        if wait > 0:
            self.sleep(wait)


def system_clock() -> datetime:
    """The dispatcher's clock: the edge where arflow reads the wall clock."""
    return datetime.now(UTC)


class Dispatcher:
    """Delivers queued messages through adapters; safe to run several at once."""

    def __init__(
        self,
        store: Store,
        adapters: Mapping[str, Adapter] | Adapter,
        *,
        ledger: Ledger | None = None,
        worker: str | None = None,
        batch: int = 50,
        lease: timedelta = timedelta(minutes=5),
        retry: RetryPolicy | None = None,
        rate_limits: Mapping[str, float] | None = None,
        channels: Iterable[str] | None = None,
        clock: Callable[[], datetime] = system_clock,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_sent: Callable[[OutboxRecord, Message], None] | None = None,
    ) -> None:
        self.store = store
        self.adapters: dict[str, Adapter] = (
            dict(adapters)
            if isinstance(adapters, Mapping)
            else dict.fromkeys(("email", "sms", "task", "webhook"), adapters)
        )
        if ledger is None:
            from .ledger import Ledger

            ledger = Ledger(store)
        self.ledger = ledger
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.batch = batch
        self.lease = lease
        self.retry = retry or RetryPolicy()
        self.channels = None if channels is None else list(channels)
        self.clock = clock
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.on_sent = on_sent
        self._buckets = {ch: _Bucket(r, sleep) for ch, r in (rate_limits or {}).items() if r > 0}
        self._renewed = 0  # when the current batch's claims were last renewed together
        self._held: set[str] = set()  # the keys of the batch held then

    @property
    def lease_us(self) -> int:
        """The lease in the outbox's unit, microseconds."""
        return int(self.lease.total_seconds() * 1_000_000)

    def run_once(self) -> DispatchStats:
        """Claim one batch of due messages and deliver them, each only while its claim holds."""
        stats = DispatchStats()
        now = self._now()
        claimed = self.store.outbox_claim(
            self.worker, now, self.batch, self.lease_us, self.channels
        )
        stats.claimed = len(claimed)
        unfenced = [r.key for r in claimed if not r.claim]
        if unfenced:  # a store of one's own that does not keep the protocol
            raise StoreError(
                f"{type(self.store).__name__}.outbox_claim gave {unfenced[0]!r} no claim token: "
                "without one no send can be fenced"
            )
        self._renewed, self._held = now, {r.key for r in claimed}
        if not claimed:
            return stats
        heartbeat = _Heartbeat(self)
        try:
            for i, rec in enumerate(claimed):
                self._one(rec, stats, functools.partial(_keys_after, claimed, i), heartbeat)
        finally:
            heartbeat.stop()
        return stats

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        idle_exit: bool = True,
        poll: float = 1.0,
        max_batches: int | None = None,
    ) -> DispatchStats:
        """Deliver batch after batch; with ``idle_exit`` stop when nothing is due."""
        total = DispatchStats()
        batches = 0
        while stop is None or not stop.is_set():
            got = self.run_once()
            total.add(got)
            batches += 1
            if max_batches is not None and batches >= max_batches:
                break
            if got.claimed == 0:
                if idle_exit:
                    break
                if stop is not None:
                    stop.wait(poll)
                else:
                    self.sleep(poll)
        return total

    def _hold(self, rec: OutboxRecord, rest: Callable[[], list[str]]) -> bool:
        """Whether the claim on ``rec`` still holds, just before it is sent. Within a third
        of a lease of the batch's last renewal, where ``rec`` was held, it does (it was
        claimed or renewed then for a whole lease, and no one may take it over before that
        lease ends), and the store is not asked; after that, ``rec`` and the rest of the batch (the keys ``rest``
        lists) are renewed for a whole lease from here, so a batch longer than the lease
        keeps its tail, and the answer is whether ``rec`` was still held."""
        now = self._now()
        if now - self._renewed < self.lease_us // 3 and rec.key in self._held:
            return True
        self._renewed = now
        self._held = self.store.outbox_renew([rec.key, *rest()], str(rec.claim), now, self.lease_us)
        return rec.key in self._held

    def _one(
        self,
        rec: OutboxRecord,
        stats: DispatchStats,
        rest: Callable[[], list[str]],
        heartbeat: _Heartbeat,
    ) -> None:
        try:
            message = Message.model_validate_json(rec.body)
        except ValueError as exc:
            self._settle(rec, Settle("dead", self._now(), error=f"unreadable message: {exc}"))
            stats.dead += 1
            return
        adapter = self.adapters.get(message.channel)
        if adapter is None:
            self._dead(rec, message, f"no adapter for channel {message.channel!r}", stats)
            return
        bucket = self._buckets.get(message.channel)
        if bucket is not None:
            bucket.take()
        if not self._hold(rec, rest):
            # the lease ran out and another dispatcher took the message over: it is theirs
            stats.lost += 1
            log.warning("outbox %s: claim lost to another dispatcher, not sent", rec.key)
            return
        try:
            with heartbeat.beating(rec):
                receipt = adapter.deliver(message)
        except DeliveryError as exc:
            error = _scrubbed(adapter, str(exc))
            if exc.feedback is not None:
                self._feedback(rec, message, exc, error)
            if isinstance(exc, PermanentFailure) or not exc.temporary:
                self._dead(rec, message, error, stats)
            else:
                self._again(rec, message, error, stats)
            return
        except Exception as exc:  # an adapter's bug or an unexpected error: retry it
            self._again(rec, message, _scrubbed(adapter, f"{type(exc).__name__}: {exc}"), stats)
            return
        self._settle(rec, Settle("sent", self._now(), receipt=receipt))
        stats.sent += 1
        if self.on_sent is not None:
            self.on_sent(rec, message)

    def _now(self) -> int:
        return micros(self.clock())

    def _again(self, rec: OutboxRecord, message: Message, error: str, stats: DispatchStats) -> None:
        if rec.attempts >= self.retry.max_attempts:
            self._dead(rec, message, f"gave up after {rec.attempts} attempts: {error}", stats)
            return
        now = self._now()
        wait = self.retry.delay(rec.attempts, self.rng)
        self._settle(
            rec, Settle("pending", now, next_at=now + int(wait.total_seconds() * 1e6), error=error)
        )
        stats.retried += 1
        log.info("retry %s in %s: %s", rec.key, wait, error)

    def _dead(self, rec: OutboxRecord, message: Message, error: str, stats: DispatchStats) -> None:
        follow = None
        if message.fallbacks:
            nxt, *rest = message.fallbacks
            nxt = nxt.model_copy(update={"fallbacks": tuple(rest)})
            now = self._now()
            follow = OutboxRecord(
                key=nxt.key,
                channel=nxt.channel,
                customer_id=nxt.customer_id,
                body=nxt.model_dump_json(),
                created_at=now,
                next_at=now,
            )
            stats.fallbacks += 1
        self._settle(rec, Settle("dead", self._now(), error=error, follow_up=follow))
        stats.dead += 1
        stats.errors.append(f"{rec.key}: {error}")
        log.warning("dead letter %s: %s", rec.key, error)

    def _settle(self, rec: OutboxRecord, change: Settle) -> None:
        if not self.store.outbox_settle(rec.key, replace(change, claim=str(rec.claim))):
            log.warning(
                "outbox %s: claim lost to another dispatcher, outcome not recorded", rec.key
            )

    def _feedback(
        self, rec: OutboxRecord, message: Message, exc: DeliveryError, error: str
    ) -> None:
        """Record a bounce, an invalid number or an unsubscribe on the contact (audited)."""
        address = exc.address or (message.to[0] if message.to else None)
        if address is None or exc.feedback is None:
            return
        digest = hashlib.sha256(f"{rec.key}|{address}".encode()).hexdigest()[:24]
        try:
            self.ledger.apply(
                ContactFeedback(
                    event_id=f"feedback:{digest}",
                    occurred_at=self.clock(),
                    actor="arflow-dispatcher",
                    reason=f"{message.channel} to {address}: {error}",
                    customer_id=message.customer_id,
                    address=address,
                    channel="sms" if message.channel == "sms" else "email",
                    feedback=exc.feedback,
                )
            )
        except ArflowError as err:  # the contact changed since: nothing to mark
            log.info("feedback for %s not recorded: %s", address, err)


class _Heartbeat:
    """Keeps the claim on the message being handed over alive while the adapter takes its
    time: a thread renews it every third of a lease until the hand-over returns, so even
    a delivery longer than the lease is not taken over (and repeated) by another
    dispatcher. Started with the first hand-over of a batch, stopped with the batch."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._current: tuple[str, str] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def beating(self, rec: OutboxRecord) -> Iterator[None]:
        """Renew ``rec``'s claim for as long as the block runs."""
        with self._lock:
            self._current = (rec.key, str(rec.claim))
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="arflow-outbox-heartbeat", daemon=True
            )
            self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._current = None

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        d = self._dispatcher
        interval = max(d.lease.total_seconds() / 3, 0.001)
        while not self._stopping.wait(interval):
            with self._lock:
                current = self._current
            if current is None:
                continue
            key, claim = current
            try:
                held = d.store.outbox_renew([key], claim, d._now(), d.lease_us)
            except Exception as exc:  # the store is unreachable: the lease may run out
                log.warning("outbox %s: the claim could not be renewed: %s", key, exc)
                continue
            if key not in held:
                log.warning("outbox %s: claim lost while it was being handed over", key)


def _keys_after(records: Sequence[OutboxRecord], i: int) -> list[str]:
    """The keys of ``records`` after the ``i``-th: the rest of a batch."""
    return [r.key for r in records[i + 1 :]]


def _scrubbed(adapter: Adapter, text: str) -> str:
    """``text`` as the adapter's ``scrub`` leaves it (without the secrets the adapter
    holds), and every URL in it redacted, before the outbox stores it or a log line shows
    it."""
    scrub = getattr(adapter, "scrub", None)
    return redact_urls(str(scrub(text)) if callable(scrub) else text)


def deliver_all(
    store: Store,
    adapters: Mapping[str, Adapter] | Adapter,
    **options: Any,
) -> DispatchStats:
    """Deliver everything due now, then return (a one-shot dispatcher)."""
    return Dispatcher(store, adapters, **options).run()


def adapters_from_urls(urls: Mapping[str, str]) -> dict[str, Adapter]:
    """``{"email": "smtp://...", "sms": "sms+https://..."}`` to adapters, by channel."""
    from .actions import adapter_from_url

    return {channel: adapter_from_url(url) for channel, url in urls.items()}


__all__ = [
    "Composer",
    "DispatchStats",
    "Dispatcher",
    "RetryPolicy",
    "TemporaryFailure",
    "adapters_from_urls",
    "deliver_all",
    "instant",
    "micros",
]
