"""Who a message reaches: the one resolver from a role (or a person named by a role) to an
address on a channel, with the contact's preferences respected.

``customer`` is the customer's first contact that can still be reached on the channel: a
contact who unsubscribed gets no e-mail or SMS, a bounced or invalid e-mail address and an
invalid phone number are not used again (``ContactFeedback`` marks them). An SMS goes to
the phone, an e-mail to the e-mail address; a task about the customer goes to the
customer's salesperson. ``salesperson`` and ``sales_manager`` are the customer's own; any
other role is the pack's ``roles``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ..domain import Contact, Customer

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
