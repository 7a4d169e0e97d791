"""The host's Alembic beside arflow's tables: a filter for autogenerate that leaves
arflow's tables, and everything on them, to arflow (docs/storage.md#migrations-side-by-side).
"""

from __future__ import annotations

from typing import Any

from ._schema import SCHEMA, metadata

#: arflow's tables by name: every table of :data:`metadata`, and ``arflow_schema``, the
#: record of arflow's own schema steps.
TABLE_NAMES = frozenset([*(t.name for t in metadata.tables.values()), SCHEMA.name])


def alembic_include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's ``include_object`` hook: False for arflow's tables found in the database
    and for what is on them (indexes, columns, constraints), so that autogenerate proposes
    nothing about them; True for everything else. A table of the host's own models is
    compared as usual even under one of arflow's names (in another schema, say).

    In the host's ``env.py``: ``context.configure(..., include_object=alembic_include_object)``.
    """
    if not reflected or compare_to is not None:
        return True  # the host's models name it: the host's own
    # an index, a column or a constraint: by the table it is on
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return table not in TABLE_NAMES
