"""What an import reads: the kinds of file, in the order they are applied, their columns,
and the file formats (see ``docs/import.md``).
"""

from __future__ import annotations

#: The kinds of file, in the order they are applied (each may refer to the ones before).
KINDS = ("people", "customers", "contracts", "invoices", "payments")

#: The address columns of a person: one per channel (see :class:`arflow.Person`).
PERSON_CHANNELS = ("email", "phone", "wecom", "dingtalk")

#: Per kind: (required columns, optional columns). JSON records use the same names, except
#: contracts in JSON, which use the nested form of the models (see docs/import.md).
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "people": (
        ("id", "name"),
        (
            "roles",
            "manager",
            *PERSON_CHANNELS,
            "locale",
            "timezone",
            "active",
            "occurred_at",
        ),
    ),
    "customers": (
        ("id", "name"),
        (
            "region",
            "salesperson",
            "sales_manager",
            "contact_name",
            "contact_email",
            "contact_phone",
            "preferred_channel",
            "locale",
            "timezone",
            "grade",
            "credit_limit",
            "currency",
            "payment_terms_days",
            "prepayment_percent",
            "tags",
            "occurred_at",
        ),
    ),
    "contracts": (
        ("contract_id", "customer_id", "signed_on", "amount", "currency"),
        (
            "title",
            "project_id",
            "project_name",
            "salesperson",
            "node_id",
            "node_label",
            "node_amount",
            "node_percent",
            "due_days",
            "due_end_of_month",
            "due_milestone_id",
            "milestone_name",
            "milestone_planned_date",
            "occurred_at",
        ),
    ),
    "invoices": (
        ("number", "customer_id", "issue_date", "amount", "currency"),
        (
            "due_date",
            "contract_id",
            "payment_node_id",
            "order_id",
            "salesperson",
            "region",
            "product_line",
            "tags",
            "occurred_at",
        ),
    ),
    "payments": (
        ("payment_id", "customer_id", "amount", "currency", "received_on"),
        ("reference", "allocate_to", "occurred_at"),
    ),
}

_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl"}
