"""Messages: what the decisions say, put into words for the people they reach.

Notices group decisions into messages (:func:`group_notices`, honouring the pack's
``settings.group_by``); :func:`resolve_address` says who a role is on a channel, with the
contact's preferences; the :class:`Composer` renders each notice with the pack's templates
and queues it in the outbox, in the transaction that records the decisions. Templates are
Jinja2 in a sandbox (:class:`TemplateSet`, see ``docs/templates.md``), fed by
:func:`build_context`, printing money and dates in the reader's locale.

Delivery is the outbox's (:mod:`arflow.outbox`); :func:`ledger_feedback` records what a
delivery learnt about a contact. The template machinery (Jinja2, Babel) is imported on
first use of one of its names, so the composer costs nothing until a message is rendered.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import TemplateError as TemplateError
from ..errors import TemplateLimitError as TemplateLimitError
from ._addresses import channel_chain as channel_chain
from ._addresses import person as person
from ._addresses import reachable_contact as reachable_contact
from ._addresses import resolve_address as resolve_address
from ._addresses import resolve_addresses as resolve_addresses
from ._composer import NO_COPIES as NO_COPIES
from ._composer import Composer as Composer
from ._context import build_context as build_context
from ._context import sample_context as sample_context
from ._feedback import ledger_feedback as ledger_feedback
from ._feedback import ledger_tasks as ledger_tasks
from ._grouping import DEFAULT_GROUP_BY as DEFAULT_GROUP_BY
from ._grouping import REQUIRED_GROUP_BY as REQUIRED_GROUP_BY
from ._grouping import group_notices as group_notices

if TYPE_CHECKING:
    from ._check import check as check
    from ._limits import MAX_CHARS as MAX_CHARS
    from ._limits import MAX_DEPTH as MAX_DEPTH
    from ._limits import MAX_LIPSUM_WORDS as MAX_LIPSUM_WORDS
    from ._limits import MAX_OUTPUT as MAX_OUTPUT
    from ._limits import MAX_RANGE as MAX_RANGE
    from ._limits import MAX_SOURCE as MAX_SOURCE
    from ._limits import MAX_STEPS as MAX_STEPS
    from ._limits import MAX_TEXT as MAX_TEXT
    from ._locale import FALLBACK_LOCALE as FALLBACK_LOCALE
    from ._locale import _currency_text as _currency_text
    from ._locale import normalize_locale as normalize_locale
    from ._set import Rendered as Rendered
    from ._set import TemplateSet as TemplateSet

#: names whose modules import Jinja2 or Babel, by the module that defines them
_LAZY = {
    "check": "_check",
    "FALLBACK_LOCALE": "_locale",
    "normalize_locale": "_locale",
    "_currency_text": "_locale",
    "Rendered": "_set",
    "TemplateSet": "_set",
    **dict.fromkeys(
        (
            "MAX_CHARS",
            "MAX_DEPTH",
            "MAX_LIPSUM_WORDS",
            "MAX_OUTPUT",
            "MAX_RANGE",
            "MAX_SOURCE",
            "MAX_STEPS",
            "MAX_TEXT",
        ),
        "_limits",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # found once, then an ordinary attribute
    return value


__all__ = [
    "DEFAULT_GROUP_BY",
    "FALLBACK_LOCALE",
    "MAX_CHARS",
    "MAX_DEPTH",
    "MAX_LIPSUM_WORDS",
    "MAX_OUTPUT",
    "MAX_RANGE",
    "MAX_SOURCE",
    "MAX_STEPS",
    "MAX_TEXT",
    "NO_COPIES",
    "REQUIRED_GROUP_BY",
    "Composer",
    "Rendered",
    "TemplateError",
    "TemplateLimitError",
    "TemplateSet",
    "build_context",
    "channel_chain",
    "check",
    "group_notices",
    "ledger_feedback",
    "ledger_tasks",
    "normalize_locale",
    "person",
    "reachable_contact",
    "resolve_address",
    "resolve_addresses",
    "sample_context",
]
