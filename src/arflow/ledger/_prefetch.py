"""Reading ahead for ``Ledger.apply_all``: the ids a chunk of events will look up first, so
that a store that can (``prefetch``) fetches them in a few queries."""

from __future__ import annotations

from collections.abc import Callable

from ..events import (
    BaseEvent,
    ContractSigned,
    CustomerRegistered,
    Event,
    InvoiceIssued,
    PaymentReceived,
)
from ..rows import PlainInvoice


def reads(event: BaseEvent, ids: dict[str, list[str]]) -> None:
    """Add the ids (by kind) of the objects the handler of ``event`` will look up first."""
    if isinstance(event, InvoiceIssued):
        ids["receivable"].append(event.number)
        ids["customer"].append(event.customer_id)
        if event.contract_id is not None:
            ids["contract"].append(event.contract_id)
        if event.order_id is not None:
            ids["order"].append(event.order_id)
    elif isinstance(event, CustomerRegistered):
        ids["customer"].append(event.customer.id)
    elif isinstance(event, PaymentReceived):
        ids["payment"].append(event.payment_id)
        ids["customer"].append(event.customer_id)
        ids["receivable"].extend(a.receivable_id for a in event.allocations or ())
    elif isinstance(event, ContractSigned):
        ids["contract"].append(event.contract.id)
        ids["customer"].append(event.contract.customer_id)


def prefetch(
    fetch: Callable[..., None], chunk: list[Event | PlainInvoice], *, credits: bool = False
) -> None:
    """Hand ``fetch`` (the store's ``prefetch``) the event ids and object ids ``chunk`` needs;
    with ``credits``, also the payments and credit notes of the customers its plain invoices
    are for (whether they have credit to apply decides the invoice's path)."""
    event_ids: list[str] = []
    ids: dict[str, list[str]] = {
        "receivable": [],
        "customer": [],
        "contract": [],
        "order": [],
        "payment": [],
    }
    numbers, customers = ids["receivable"], ids["customer"]
    #: customers of the chunk's invoices: whether they have credit to apply decides the
    #: invoice's path (a payment's customer needs none of that read)
    invoiced: list[str] = []
    for event in chunk:
        if type(event) is PlainInvoice or (
            type(event) is InvoiceIssued and event.contract_id is None and event.order_id is None
        ):
            event_ids.append(event.event_id)
            numbers.append(event.number)
            customers.append(event.customer_id)
            invoiced.append(event.customer_id)
        elif isinstance(event, BaseEvent):
            event_ids.append(event.event_id)
            reads(event, ids)
            if isinstance(event, InvoiceIssued):
                invoiced.append(event.customer_id)
    wanted = {kind: found for kind, found in ids.items() if found}
    if credits and invoiced:
        cids = sorted(set(invoiced))
        fetch(event_ids, wanted, {"payment": cids, "credit_note": cids})
    else:
        fetch(event_ids, wanted)
