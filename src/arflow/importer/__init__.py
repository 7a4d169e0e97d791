"""Importing an ERP export: customers, contracts, invoices and payments from CSV or JSON.

Each row becomes one event whose id comes from its kind and natural key
(``import:invoice:INV-1``), so importing the same file again changes nothing. All the files
of one call are checked and applied in one transaction, customers first and payments last:
one bad row anywhere rejects the whole import with :class:`~arflow.errors.ImportRejected`,
which lists every problem as ``(file, row, column, reason)``. Rows are read, turned into
events and applied one at a time, so memory does not grow with the size of the files.

The columns, formats and rules are documented in ``docs/import.md``.

The package's parts, each importing only the ones listed before it: ``_schema`` (the kinds
of file and their columns), ``_run`` (one import's state), ``_cells`` (reading one cell),
``_kinds`` and ``_contracts`` (what each kind of record becomes), ``_formats`` (CSV, JSON
Lines, JSON), ``_stream`` (the events of a plan of files), ``_reader`` (the reader process)
and ``_pipeline`` (:func:`import_files`). Tests that change ``READER_PROCESS_BYTES`` change
it in ``_pipeline``, which reads it.
"""

from __future__ import annotations

from ._cells import parse_amount
from ._pipeline import READER_PROCESS_BYTES, ImportReport, import_files
from ._reader import ReaderFailed
from ._schema import COLUMNS, KINDS

__all__ = [
    "COLUMNS",
    "KINDS",
    "READER_PROCESS_BYTES",
    "ImportReport",
    "ReaderFailed",
    "import_files",
    "parse_amount",
]
