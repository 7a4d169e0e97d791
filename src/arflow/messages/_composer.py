"""The composer: decided actions become rendered messages, queued in the outbox in the
transaction that records the decisions.

The decisions of one transaction are grouped into notices (:func:`group_notices`, as the
pack's ``settings.group_by`` says: one e-mail per customer listing every invoice), each
notice is addressed (:func:`resolve_addresses`), rendered with the pack's templates in the
reader's locale, and queued under the notice's key. A key already queued is left alone, so
a run repeated, or two runners at once, queue nothing twice. A message that cannot be
rendered is queued as a dead letter carrying the error: nothing decided disappears silently.

Roles resolve through the people directory (:class:`Directory`): a message whose ``to``
reaches no one on any channel of its chain because a value is neither a known person nor an
address (``li.wei`` as an e-mail address) is a dead letter at once, ``unreachable: <why>``,
never handed to an adapter and never retried; recipients of ``cc`` (or some of ``to``) that
cannot be reached are left out and named in the message's ``data["unreachable"]``. A
message to people (not to the customer) is rendered in the first recipient person's locale
when the pack has templates in it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..actions import CHANNEL_OF, Message
from ..decisions import Decision, Notice, task_id_for
from ..domain import AuditRecord, Customer, Person, Receivable
from ..errors import ArflowError, PermanentFailure
from ..lifecycle import LIVE_STATES
from ..outbox import micros
from ..rules.schema import Action
from ..store.base import BookReader, OutboxRecord, Store, StoreTx
from ._addresses import Directory, Reached, channel_chain, resolve_people
from ._context import build_context
from ._grouping import group_notices

if TYPE_CHECKING:
    from ..rules.loader import RulePack
    from ._set import TemplateSet


class Composer:
    """Renders the outbound actions of decisions into messages and queues them."""

    def __init__(
        self, pack: RulePack, templates: TemplateSet | None = None, store: Store | None = None
    ) -> None:
        self.pack = pack
        self._templates = templates
        self.store = store
        self._histories: dict[str, list[AuditRecord]] = {}  # read ahead by ``queue``
        self._people: list[Person] | None = None  # the directory, read once per ``records``
        #: held by :meth:`records`, whose read-ahead above is per call: an engine shared by
        #: threads renders one call at a time here
        self._one_call = threading.RLock()

    @property
    def templates(self) -> TemplateSet | None:
        if self._templates is None and self.pack.template_dirs:
            from ._set import TemplateSet  # Jinja2 is imported when a message is rendered

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
        with self._one_call:
            return self._records_of(book, decisions, at)

    def _records_of(
        self, book: BookReader, decisions: Sequence[Decision], at: datetime
    ) -> list[OutboxRecord]:
        at_ = {d.key: i for i, d in enumerate(decisions)}  # a notice's decisions, in order
        notices = group_notices(decisions, self.pack.settings.group_by)
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
            self._people = None
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
            if message.channel == "task":  # a tracked task: the host reports back by its id
                data = {**message.data, "task_id": task_id_for(notice.key)}
                message = message.model_copy(update={"data": data})
            if any(f.channel == "task" for f in message.fallbacks):
                # a task sent as a fallback is tracked when sent (messages.ledger_tasks)
                fallbacks = tuple(
                    f.model_copy(
                        update={
                            "data": {
                                **f.data,
                                "task_id": task_id_for(f.key),
                                "fallback_of": message.channel,
                            }
                        }
                    )
                    if f.channel == "task"
                    else f
                    for f in message.fallbacks
                )
                message = message.model_copy(update={"fallbacks": fallbacks})
            copy = self.copy(tx, notice, decisions, message)
        except PermanentFailure as exc:
            return [
                OutboxRecord(
                    **base,  # type: ignore[arg-type]
                    body="{}",
                    status="dead",
                    last_error=f"unreachable: {exc}",
                )
            ]
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
        reached = self._reach(tx, customer, a.cc, "email", decisions[0].recipients)
        cc = tuple(r.address for r in reached if r.address and r.address not in message.to)
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
        chain = channel_chain(CHANNEL_OF[a.type], a.fallback, a.to, customer)
        built: list[Message] = []
        missed: list[str] = []  # why recipients cannot be reached, channel by channel
        for i, channel in enumerate(chain):
            to_r = self._reach(tx, customer, a.to, channel, first.recipients)
            cc_r = self._reach(tx, customer, a.cc, channel, first.recipients)
            to = tuple(r.address for r in to_r if r.address)
            cc = tuple(r.address for r in cc_r if r.address)
            problems = [f"{channel}: {r.problem}" for r in (*to_r, *cc_r) if r.problem]
            if channel == "task" and i > 0 and not to:
                to = tuple(x for x in (customer.salesperson,) if x)
            if not to and any(r.problem for r in to_r):
                missed.extend(problems)
                if i + 1 < len(chain) or built:
                    continue  # nobody reachable on this channel: the next one is the message
                raise PermanentFailure("; ".join(dict.fromkeys(missed)))
            if not to and i + 1 < len(chain):
                continue  # no address on this channel: the next one is the message
            key = notice.key if not built else f"{notice.key}~{channel}"
            people = [r.person for r in to_r if r.address and r.person is not None]
            built.append(
                self._render(
                    tx,
                    key,
                    channel,
                    a,
                    customer,
                    notice,
                    decisions,
                    to,
                    cc,
                    as_of,
                    people=people,
                    unreachable=problems,
                )
            )
        if not built:
            raise ArflowError(f"no channel reaches {', '.join(a.to)} of {customer.id}")
        head, *rest = built
        return head.model_copy(update={"fallbacks": tuple(rest)})

    def _reach(
        self,
        book: BookReader,
        customer: Customer,
        roles: Iterable[str],
        channel: str,
        recipients: Mapping[str, str | None],
    ) -> list[Reached]:
        """Who ``roles`` are on ``channel``, through the people directory of ``book``."""
        directory = Directory(lambda pid: book.get("person", pid), self._everyone)
        return resolve_people(
            customer, roles, channel, directory, roles=self.pack.roles, recipients=recipients
        )

    def _everyone(self) -> list[Person]:
        """Everyone in the directory (for ``role:`` values), read once per ``records``."""
        if self._people is None:
            self._people = list(self.store.all("person")) if self.store is not None else []
        return self._people

    def _internal_locale(self, people: Sequence[Person]) -> str:
        """The locale of a message to people: the first person's, when the pack has it;
        else the pack's first locale."""
        locales = self.pack.settings.locales
        if people:
            want = people[0].locale.replace("-", "_").lower()  # zh-CN is zh_CN
            found = next((lc for lc in locales if lc.replace("-", "_").lower() == want), None)
            if found is not None:
                return found
        return locales[0]

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
        *,
        people: Sequence[Person] = (),
        unreachable: Sequence[str] = (),
    ) -> Message:
        receivables: list[Receivable] = [
            r for sid in notice.subject_ids if (r := tx.get("receivable", sid)) is not None
        ]
        first = decisions[0]
        if not receivables:
            receivables = self._items_of(tx, first, customer, as_of)
        extra: dict[str, Any] = {}
        if first.subject_kind == "order":  # an approval, an order alert
            extra["order"] = tx.get("order", first.subject_id)
        if first.subject_kind == "contract":  # an approval of a contract's terms
            extra["contract"] = tx.get("contract", first.subject_id)
        if first.kind == "approval":  # a request to the approvers: what, and why
            extra["approval"] = {
                "rule": first.rule,
                "reason": first.reason,
                "approvers": first.why.get("approvers")
                or first.why.get("approval", {}).get("roles")
                or (),
                **{
                    k: first.why.get(k)
                    for k in (
                        "asked",
                        "allowed",
                        "grade",
                        "asked_days",
                        "allowed_days",
                        "current_limit",
                        "proposed_limit",
                    )
                },
            }
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
            else self._internal_locale(people)
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
            from ..calendar import Offset

            due = Offset.parse(f"due+{a.due_in}").resolve({"due": as_of}, self.pack.calendar)
        data: dict[str, Any] = {"invoices": list(notice.subject_ids)}
        if unreachable:
            data["unreachable"] = list(unreachable)
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
                if rec.refused is None  # what happened to the invoice, not refused attempts
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
        live = tx.find("receivable", customer_id=customer.id, states=LIVE_STATES)
        overdue = [r for r in live if r.due_date < as_of]
        return overdue or live


#: channels whose adapters reach the ``to`` recipients only: a ``cc`` goes as an e-mail copy
NO_COPIES = frozenset({"sms"})
