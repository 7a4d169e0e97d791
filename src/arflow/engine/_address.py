"""Who a decision's actions go to and when they may go out: recipient resolution (one
function, the only place a role becomes an address in the engine) and send-window instants."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..actions import CHANNEL_OF
from ..domain import Customer
from ..messages import channel_chain, resolve_address
from ..rules.schema import Action


def _recipients(
    customer: Customer, actions: Iterable[Action], roles: Mapping[str, str]
) -> dict[str, str | None]:
    """The address of every role the actions name, on each action's channel, decided by
    the one resolver the messages use (:func:`arflow.messages.resolve_address`): a
    contact who unsubscribed or whose address bounced is not recorded as the recipient.
    The channel is the first the message tries (:func:`arflow.messages.channel_chain`:
    a customer contact's preferred channel first)."""
    out: dict[str, str | None] = {}
    for a in actions:
        channel = channel_chain(CHANNEL_OF.get(a.type, "email"), a.fallback, a.to, customer)[0]
        for role in (*a.to, *a.cc):
            out[role] = resolve_address(customer, role, channel, roles=roles)
    return out


class SendTimes:
    """The first instant of a day inside the send window, in the time zone of a customer's
    contact, remembered by (time zone, day): thousands of decisions share a few of them."""

    def __init__(self) -> None:
        self._by_zone: dict[tuple[str, date], datetime] = {}
        self._basis: tuple[Any, Any] = (None, None)

    def at(
        self,
        customer: Customer,
        as_of: date,
        window: Any,
        calendar: Any,
        *,
        tz: str | None = None,
    ) -> datetime | None:
        """When a message to ``customer`` decided on ``as_of`` may go out under ``window``
        (None: no window): a reminder is not sent at 3 a.m. the customer's time. ``tz``: the
        recipient's own time zone (a person of the company), else the customer contact's."""
        if window is None:
            return None
        if tz is None:
            tz = customer.contacts[0].timezone if customer.contacts else "UTC"
        basis = self._basis
        if basis[0] is not window or basis[1] is not calendar:
            self._by_zone.clear()  # computed under another window or calendar
            self._basis = (window, calendar)
        found = self._by_zone.get((tz, as_of))
        if found is None:
            start = datetime(as_of.year, as_of.month, as_of.day, tzinfo=ZoneInfo(tz))
            found = window.next_allowed(start, tz, calendar).astimezone(UTC)
            if len(self._by_zone) > 10_000:
                self._by_zone.clear()
            self._by_zone[(tz, as_of)] = found
        return found
