"""What a delivery learnt about a contact, recorded in the book: the bridge from the
dispatcher's :class:`~arflow.outbox.DeliveryFeedback` to an audited ``ContactFeedback``
event, so the outbox needs to know nothing of the ledger."""

from __future__ import annotations

import hashlib
from typing import Protocol

from ..events import ContactFeedback
from ..outbox import DeliveryFeedback, FeedbackHandler


class _Applies(Protocol):
    """What records an event: a ``Ledger`` (or a batch of one)."""

    def apply(self, event: ContactFeedback, /) -> object: ...


def ledger_feedback(ledger: _Applies) -> FeedbackHandler:
    """The ``on_feedback`` of a :class:`~arflow.outbox.Dispatcher` that marks the contact
    through ``ledger`` (``email_invalid``, ``phone_invalid``, ``unsubscribed``), audited as
    done by ``arflow-dispatcher``. The event id follows from the message and the address,
    so the same feedback reported twice is recorded once."""

    def record(fb: DeliveryFeedback) -> None:
        digest = hashlib.sha256(f"{fb.key}|{fb.address}".encode()).hexdigest()[:24]
        ledger.apply(
            ContactFeedback(
                event_id=f"feedback:{digest}",
                occurred_at=fb.at,
                actor="arflow-dispatcher",
                reason=fb.reason,
                customer_id=fb.customer_id,
                address=fb.address,
                channel=fb.channel,
                feedback=fb.feedback,
            )
        )

    return record
