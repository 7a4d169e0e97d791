"""Who a message reaches: the one resolver from a role (or a person named by a role) to an
address on a channel, with the contact's preferences respected.

``customer`` is the customer's first contact that can still be reached on the channel: a
contact who unsubscribed gets no e-mail or SMS, a bounced or invalid e-mail address and an
invalid phone number are not used again (``ContactFeedback`` marks them). An SMS goes to
the phone, an e-mail to the e-mail address; a task about the customer goes to the
customer's salesperson. ``salesperson`` and ``sales_manager`` are the customer's own; any
other role is the pack's ``roles``.

People: any of these values may be a person's id (``P-007``: the person's address on the
channel) or ``role:NAME`` (the active holders of that role in the directory). With a
:class:`Directory` (the composer always has one), :func:`reach` turns each value into
addresses, and a value that is neither a known person, a role with holders, nor an address
for the channel (the bare name ``li.wei`` for an e-mail) is reported with the reason, so
the message fails for good rather than reaching an SMTP server as ``to li.wei``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..domain import ROLE_HOLDERS, Contact, Customer, Person, check_email, check_phone

#: channels a contact can unsubscribe from
_SUBSCRIBED = frozenset({"email", "sms"})


def reachable_contact(contacts: Sequence[Contact], channel: str) -> Contact | None:
    """The first contact that can still be reached on ``channel`` (None: none can)."""
    for c in contacts:
        if c.unsubscribed and channel in _SUBSCRIBED:
            continue
        if channel == "email" and c.email and not c.email_invalid:
            return c
        if channel == "sms" and c.phone and not c.phone_invalid:
            return c
        if channel == "task":
            return c
    return None


#: the contact's ``preferred_channel`` values a message can go out on by itself (``phone``
#: and ``letter`` are for people to act on: they leave the rule's order as it is)
_PREFERABLE = frozenset({"email", "sms"})


def channel_chain(
    first: str, fallback: Iterable[str], to: Iterable[str], customer: Customer | None
) -> list[str]:
    """The channels a message tries, in order: the action's own (``first``), then its
    ``fallback`` ones. A message to the customer (``customer`` in ``to``) on e-mail or SMS
    tries the customer's first contact's ``preferred_channel`` first (``email`` or ``sms``),
    then the others in the rule's order: a contact who prefers SMS gets the SMS, and the
    e-mail only when no SMS can reach them. A contact with no preference (None, the
    default) gets the rule's order."""
    chain = [first, *(c for c in fallback if c != first)]
    if customer is None or not customer.contacts or "customer" not in to:
        return chain
    if first not in _PREFERABLE:
        return chain
    preferred = customer.contacts[0].preferred_channel
    if preferred is None or preferred not in _PREFERABLE or preferred == chain[0]:
        return chain
    return [preferred, *(c for c in chain if c != preferred)]


def person(customer: Customer, role: str) -> str | None:
    """The customer's own person in ``role`` (``salesperson``, ``sales_manager``), if any."""
    if role == "salesperson":
        return customer.salesperson
    if role == "sales_manager":
        return customer.sales_manager
    return None


def resolve_address(
    customer: Customer,
    role: str,
    channel: str,
    *,
    roles: Mapping[str, str] | None = None,
    recipients: Mapping[str, str | None] | None = None,
) -> str | None:
    """The address that reaches ``role`` of ``customer`` on ``channel`` (``email``, ``sms``,
    ``task``, ``webhook``), or None when no one can be reached there.

    ``roles`` is the pack's roles (name to address). ``recipients`` are addresses a
    decision already resolved (by role): they win for every role but ``customer``, whose
    contact is looked up again, so a contact marked unreachable since is skipped.
    """
    if role == "customer":
        contact = reachable_contact(customer.contacts, channel)
        if contact is None:
            return None
        if channel == "task":
            return customer.salesperson
        return contact.phone if channel == "sms" else contact.email
    if recipients is not None:
        got = recipients.get(role)
        if got is not None:
            return got
    return person(customer, role) or (roles or {}).get(role)


def resolve_addresses(
    customer: Customer,
    names: Iterable[str],
    channel: str,
    *,
    roles: Mapping[str, str] | None = None,
    recipients: Mapping[str, str | None] | None = None,
) -> tuple[str, ...]:
    """The addresses of ``names`` (roles) on ``channel``, in order, each once; roles that
    reach no one on the channel are left out (see :func:`resolve_address`)."""
    out: list[str] = []
    for name in names:
        addr = resolve_address(customer, name, channel, roles=roles, recipients=recipients)
        if addr and addr not in out:
            out.append(addr)
    return tuple(out)


# -- people -----------------------------------------------------------------------------------

_CHANNEL_WORDS = {"email": "an e-mail address", "sms": "a phone number"}


class Directory:
    """The people of the book as the resolver reads them: by id (``get``, read through the
    transaction, which sees its own writes) and all of them for role holders (``everyone``,
    read once, when a ``role:`` value first needs it)."""

    def __init__(
        self,
        get: Callable[[str], Person | None],
        everyone: Callable[[], Iterable[Person]] | None = None,
    ) -> None:
        self._get = get
        self._everyone = everyone
        self._all: list[Person] | None = None

    @classmethod
    def of(cls, people: Iterable[Person]) -> Directory:
        """A directory of the people given (tests, lint, a host without a store)."""
        by_id = {p.id: p for p in people}
        return cls(by_id.get, lambda: by_id.values())

    def person(self, person_id: str) -> Person | None:
        return self._get(person_id)

    def holders(self, role: str) -> list[Person]:
        """The active people holding ``role``, by id."""
        if self._all is None:
            self._all = sorted(self._everyone() if self._everyone else (), key=lambda p: p.id)
        return [p for p in self._all if p.active and role in p.roles]


@dataclass(frozen=True)
class Reached:
    """One recipient of a message on a channel: its address and, when it is a person of the
    directory, the person (whose locale the message may use); or, when it cannot be reached,
    why (``problem``)."""

    address: str | None
    person: Person | None = None
    problem: str | None = None


def _is_address(value: str, channel: str) -> bool:
    """Whether ``value`` can be used as it is on ``channel``: an e-mail address for
    ``email``, a phone number for ``sms``; a task or webhook takes any name."""
    check = {"email": check_email, "sms": check_phone}.get(channel)
    if check is None:
        return True
    try:
        check(value)
    except ValueError:
        return False
    return True


def reach(value: str, channel: str, directory: Directory) -> list[Reached]:
    """Who ``value`` (a person id, ``role:NAME``, or an address) is on ``channel``: one
    :class:`Reached` per person or address, or one carrying the reason it reaches no one."""
    if value.startswith(ROLE_HOLDERS):
        role = value[len(ROLE_HOLDERS) :]
        holders = directory.holders(role)
        if not holders:
            return [Reached(None, problem=f"no active person holds the role {role!r}")]
        found = [Reached(a, p) for p in holders if (a := p.address(channel)) is not None]
        if not found:
            names = ", ".join(p.id for p in holders)
            return [
                Reached(None, problem=f"no holder of {role!r} ({names}) has a {channel} address")
            ]
        return found
    p = directory.person(value)
    if p is not None:
        if not p.active:
            return [Reached(None, p, f"person {p.id} ({p.name}) has left")]
        address = p.address(channel)
        if address is None:
            return [Reached(None, p, f"person {p.id} ({p.name}) has no {channel} address")]
        return [Reached(address, p)]
    if _is_address(value, channel):
        return [Reached(value)]
    what = _CHANNEL_WORDS.get(channel, f"a {channel} address")
    return [Reached(None, problem=f"{value!r} is neither a known person nor {what}")]


def resolve_people(
    customer: Customer,
    names: Iterable[str],
    channel: str,
    directory: Directory,
    *,
    roles: Mapping[str, str] | None = None,
    recipients: Mapping[str, str | None] | None = None,
) -> list[Reached]:
    """:func:`resolve_addresses` through the people ``directory``: each role's value becomes
    the addresses it reaches on ``channel``, each once, in order; a value that reaches no one
    is kept as a :class:`Reached` with its ``problem`` (naming the role and the customer).
    A role with no value at all (nobody behind it) is left out, as before."""
    out: list[Reached] = []
    seen: set[str] = set()
    for name in names:
        value = resolve_address(customer, name, channel, roles=roles, recipients=recipients)
        if not value:
            continue
        own = name == "customer" and channel != "task"  # the contact's checked address
        got = [Reached(value)] if own else reach(value, channel, directory)
        for r in got:
            if r.problem is not None:
                out.append(
                    Reached(None, r.person, f"{name} of customer {customer.id}: {r.problem}")
                )
            elif r.address is not None and r.address not in seen:
                seen.add(r.address)
                out.append(r)
    return out
