"""The file formats: CSV (a header row naming the columns), JSON Lines and a JSON list read
chunk by chunk, each with its limits; records come out as (row, value), problems go to
the run.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from ._cells import _json_type, _Row, _short
from ._run import _Run
from ._schema import COLUMNS

_CHUNK = 1 << 16
_MAX_JSON_RECORD = 1 << 24
#: Longest JSON integer read (digits); a longer one is refused, not converted.
_MAX_JSON_INT = 40


def _lines(run: _Run, name: str, fh: Any) -> Iterator[str]:
    """The file's lines as text; a line that is not UTF-8 is reported (once per file) and
    read with replacement characters, so the rest of the file is still checked."""
    reported = False
    for n, raw in enumerate(fh, 1):
        try:
            line: str = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not reported:
                run.problem(
                    name,
                    n,
                    "-",
                    f"not UTF-8 text (byte {exc.start + 1} of the line): save the export as "
                    "UTF-8 ('CSV UTF-8' in Excel), not GBK or ANSI",
                )
                reported = True
            line = raw.decode("utf-8", errors="replace")
        if n == 1:
            line = line.removeprefix("\ufeff")
        yield line


def _csv_records(
    run: _Run, name: str, path: Path, kind: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    required, optional = COLUMNS[kind]
    known = {*required, *optional}
    with path.open("rb") as fh:
        reader = csv.reader(_lines(run, name, fh), strict=True)
        try:
            header = next(reader, None)
            if header is None:
                run.problem(name, 1, "-", "the file is empty: the first row must name the columns")
                return
            cols = [h.strip().lower() for h in header]
            for i, col in enumerate(cols):
                if col and col not in known:
                    run.problem(name, 1, col, f"unknown column for {kind}")
                elif col and col in cols[:i]:
                    run.problem(name, 1, col, "the column appears twice")
            missing = [c for c in required if c not in cols]
            for col in missing:
                run.problem(name, 1, col, "required column is missing")
            if missing:
                return
            width = len(cols)
            unnamed = [i for i, c in enumerate(cols) if not c]
            last = reader.line_num
            for fields in reader:
                row = last + 1
                last = reader.line_num
                if not fields or not "".join(fields).strip():
                    continue  # a blank line, or one of only commas
                if len(fields) != width:
                    hint = (
                        " (a ',' inside a value that is not quoted?)" if len(fields) > width else ""
                    )
                    run.problem(
                        name, row, "-", f"{len(fields)} fields, the header has {width}{hint}"
                    )
                    continue
                if unnamed and any(fields[i].strip() for i in unnamed):
                    run.problem(name, row, "-", "a value in a column without a name")
                    continue
                yield row, dict(zip(cols, map(str.strip, fields), strict=True))
        except csv.Error as exc:
            run.problem(name, reader.line_num, "-", f"CSV syntax: {exc}")


def _jsonl_records(run: _Run, name: str, path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as fh:
        for row, line in enumerate(_lines(run, name, fh), 1):
            if not line.strip():
                continue
            try:
                value = _DECODER.decode(line)
            except json.JSONDecodeError as exc:
                run.problem(name, row, "-", f"invalid JSON: {exc.msg} (column {exc.colno})")
            except _JsonLimit as exc:
                run.problem(name, row, "-", str(exc))
            except RecursionError:
                run.problem(name, row, "-", _TOO_DEEP)
            else:
                yield row, value


class _JsonLimit(Exception):
    """A JSON value beyond what the importer reads (an integer of thousands of digits)."""


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_JSON_INT:
        raise _JsonLimit(
            f"a JSON number of {len(text.lstrip('-'))} digits: at most {_MAX_JSON_INT} are read"
        )
    return int(text)


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal, parse_int=_json_int)
_TOO_DEEP = "invalid JSON: nested too deep (lists or objects inside each other)"


class _JsonSyntax(Exception):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def _json_list(fh: TextIO) -> Iterator[tuple[int, Any]]:
    """The items of a top-level JSON list, read chunk by chunk: memory holds one record,
    not the file. Raises ``_JsonSyntax`` with the record index where the JSON is broken."""
    decoder = _DECODER
    ws = re.compile(r"[ \t\n\r]*")
    buf, pos, eof = "", 0, False

    def more() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        # Read as much again as is pending: a record cut short is decoded again after each
        # read, and doubling keeps that linear in its size (a long unterminated record was
        # decoded once per 64 KiB: seconds per megabyte).
        chunk = fh.read(min(max(_CHUNK, len(buf) - pos), _MAX_JSON_RECORD))
        if not chunk:
            eof = True
            return False
        buf, pos = buf[pos:] + chunk, 0
        return True

    def peek() -> str:
        nonlocal pos
        while True:
            m = ws.match(buf, pos)
            pos = m.end() if m else pos
            if pos < len(buf):
                return buf[pos]
            if not more():
                return ""

    if peek() != "[":
        raise _JsonSyntax(0, "expected a JSON list of objects: [{...}, {...}]")
    pos += 1
    index = 0
    if peek() == "]":
        pos += 1
    else:
        while True:
            index += 1
            peek()
            while True:
                try:
                    value, end = decoder.raw_decode(buf, pos)
                except json.JSONDecodeError as exc:
                    if len(buf) - pos < _MAX_JSON_RECORD and more():
                        continue  # the record goes on in the next chunk
                    raise _JsonSyntax(index, f"invalid JSON: {exc.msg}") from None
                except _JsonLimit as exc:
                    raise _JsonSyntax(index, str(exc)) from None
                except RecursionError:
                    raise _JsonSyntax(index, _TOO_DEEP) from None
                if end == len(buf) and more():
                    continue  # a number may go on in the next chunk
                break
            pos = end
            yield index, value
            c = peek()
            pos += 1
            if c == "]":
                break
            if c != ",":
                raise _JsonSyntax(index, "invalid JSON: expected ',' or ']' after the record")
            if peek() == "]":
                raise _JsonSyntax(index, "invalid JSON: a ',' before the closing ']'")
    if peek():
        raise _JsonSyntax(index, "invalid JSON: more data after the closing ']'")


def _json_records(run: _Run, name: str, path: Path) -> Iterator[tuple[int, Any]]:
    index = 0
    try:
        with path.open(encoding="utf-8-sig") as fh:
            for index, value in _json_list(fh):
                yield index, value
    except _JsonSyntax as exc:
        run.problem(name, exc.index, "-", str(exc))
    except UnicodeDecodeError:
        run.problem(name, index + 1, "-", "not UTF-8 text: save the export as UTF-8")


_LIST_COLUMNS = frozenset({"tags", "allocate_to", "roles"})
_BOOL_COLUMNS = frozenset({"active"})


def _flat(r: _Row, kind: str, value: dict[Any, Any]) -> None:
    """Fill ``r.rec`` from a JSON record of a flat kind the way a CSV row gives it: text
    stripped, numbers as their exact text. Unknown keys and values of other JSON types are
    reported here, so that the column readers can count on text."""
    required, optional = COLUMNS[kind]
    rec = r.rec
    for key, v in value.items():
        if key not in required and key not in optional:
            shown = key if key and key.isprintable() and len(key) <= 40 else repr(_short(key))
            r.fail(shown, f"unknown column for {kind}")
        elif isinstance(v, str):
            rec[key] = v.strip()
        elif isinstance(v, int | Decimal) and not isinstance(v, bool):
            rec[key] = str(v)
        elif isinstance(v, bool) and key in _BOOL_COLUMNS:
            rec[key] = "true" if v else "false"
        elif isinstance(v, list) and key in _LIST_COLUMNS:
            rec[key] = v
        elif v is not None:
            r.fail(
                key,
                f"expected text{' or a list' if key in _LIST_COLUMNS else ''}, got {_json_type(v)}",
            )
