"""The durable-rules matcher: the same condition trees, matched by a Rete.

Single-subject conditions are normally compiled to Python predicates (:func:`expr.compile_`).
:class:`DurableMatcher` translates the same trees to durable-rules' JSON rule form so that a
differential test can hold the two matchers to identical decisions, and :class:`PatternMatcher`
uses durable-rules where a Rete earns its place: patterns that join several facts of one
customer over time (a promise with no payment by its date, repeated late payments).

durable-rules 2.0.28 is unmaintained and has sharp edges; this wrapper is the only place that
touches it and guards against each one (``docs/matchers.md`` has the list and the evidence):

* one :class:`engine.Host` per matcher, with its timer threads switched off: no rule or fact is
  shared with another matcher, nothing runs in the background, time is a fact (``as_of``);
* every fact gets an id from the wrapper's own counter, never derived from a user id; durable
  keys facts by a 32-bit FNV-1a hash of the id, so the counter skips any number whose hash
  collides with a fact that is still asserted;
* facts are asserted (never posted, so every matching rule fires) and gone after each
  evaluation, in sessions from a fixed pool: at most ``max_sessions`` per ruleset ever exist.
  Single-subject facts are retracted; a pattern session, whose joined facts durable cannot
  retract safely, is deleted whole, and only after it has run an action (deleting a session
  that never has crashes the process);
* join tests end with one that always holds: durable reads past the end of a join test
  sequence whose last test is false, and crashes sooner or later;
* rules are split into shards small enough for durable's per-fact limits (65 matching rules
  raise, 512 sibling tests hang), conditions are flattened to conjunctions (durable refuses
  nested ``$or``/``$and`` past a small depth);
* values are encoded as integers durable compares exactly (see :class:`_Operand`);
* durable is never asked to deduplicate: every evaluation starts from an empty session.

Neither matcher is thread-safe: drive each one from one thread (a concurrent or re-entrant call
raises :class:`RuntimeError`).
"""

from __future__ import annotations

from ...errors import DurableError as DurableError
from ...errors import UnsupportedForDurable as UnsupportedForDurable
from ..patterns import Pattern as Pattern
from ._host import MAX_SESSIONS as MAX_SESSIONS
from ._host import TERMS_PER_RULE as TERMS_PER_RULE
from ._host import TERMS_PER_SHARD as TERMS_PER_SHARD
from ._host import TESTS_PER_SHARD as TESTS_PER_SHARD
from ._host import _Ids as _Ids
from ._host import _QuietHost as _QuietHost
from ._host import fnv1a32 as fnv1a32
from ._matcher import DurableMatcher as DurableMatcher
from ._matcher import RuleInput as RuleInput
from ._patterns import MAX_LATE_COUNT as MAX_LATE_COUNT
from ._patterns import LatePayments as LatePayments
from ._patterns import PatternMatcher as PatternMatcher
from ._patterns import Payment as Payment
from ._patterns import Promise as Promise
from ._patterns import UnpaidPromise as UnpaidPromise

__all__ = [
    "DurableError",
    "DurableMatcher",
    "LatePayments",
    "PatternMatcher",
    "Payment",
    "Promise",
    "UnpaidPromise",
    "UnsupportedForDurable",
    "fnv1a32",
]
