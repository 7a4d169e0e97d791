"""Loading a rule pack: YAML files checked by the schema, with file:line for every error.

YAML is read with the safe loader (no tags that build Python objects) and composed into
nodes first, so every key and value keeps the line it was written on (:mod:`._yaml`). Then:

1. the schema (:mod:`arflow.rules.schema`) checks shape and types, one section and one rule
   at a time, so a mistake in one rule does not hide the problems of the others
   (:mod:`._validate`);
2. every condition is parsed and type-checked against the facts of its subject;
3. every offset or recurrence is parsed; every role and template is looked up;
4. ids must be unique, levels must not go down, grades must be listed from the top
   (2 to 4 section by section, :mod:`._compile`);
5. every approval tier a lock or a setting names is a tier of the pack, whichever file
   defines it (:data:`._compile.CROSS_CHECKS`).

All problems of all files are collected, in file and line order, and raised together as
:class:`RuleLoadError`, so a rule author fixes a pack in one pass. Nothing in a rule file
is executed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from .. import calendar as cal
from ..errors import Problem as Problem
from ..errors import RuleLoadError as RuleLoadError
from ._compile import CROSS_CHECKS, PACK_SECTIONS, RULE_SECTIONS, FileContext
from ._pack import CompiledLadder as CompiledLadder
from ._pack import CompiledRule as CompiledRule
from ._pack import CompiledStep as CompiledStep
from ._pack import RulePack as RulePack
from ._pack import Source as Source
from ._validate import _validate
from ._yaml import MAX_ALIASES as MAX_ALIASES
from ._yaml import MAX_DEPTH as MAX_DEPTH
from ._yaml import MAX_DIGITS as MAX_DIGITS
from ._yaml import MAX_FILE_BYTES as MAX_FILE_BYTES
from ._yaml import MAX_TEXT as MAX_TEXT
from ._yaml import MAX_VALUES as MAX_VALUES
from ._yaml import _read
from .schema import RuleFile

log = logging.getLogger("arflow.rules")

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_FILE_BYTES",
    "MAX_TEXT",
    "MAX_VALUES",
    "CompiledLadder",
    "CompiledRule",
    "CompiledStep",
    "Problem",
    "RuleLoadError",
    "RulePack",
    "Source",
    "load_pack",
]


def _files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        else:
            out.append(p)
    return out


def _templates(dirs: Iterable[Path]) -> frozenset[str]:
    """Template names found in ``templates/`` folders: ``NAME.LOCALE.EXT`` gives NAME."""
    names: set[str] = set()
    for d in dirs:
        if d.is_dir():
            names.update(p.name.split(".", 1)[0] for p in d.iterdir() if p.is_file())
    return frozenset(names)


def load_pack(
    paths: str | Path | Iterable[str | Path],
    *,
    templates: Iterable[str] | None = None,
) -> RulePack:
    """Load, check and compile the rule files at ``paths`` (files or folders) as one pack.

    Templates are looked up in a ``templates/`` folder beside the files, or in the names
    given. Raises :class:`RuleLoadError` listing every problem found.
    """
    path_list = [paths] if isinstance(paths, str | Path) else list(paths)
    files = _files(path_list)
    if not files:
        where = str(path_list[0]) if path_list else "?"
        raise RuleLoadError([Problem(where, 1, None, "no rule files (*.yaml) found")])
    dirs = {f.parent / "templates" for f in files}
    pack = RulePack(
        name="",
        files=[str(f) for f in files],
        templates=frozenset(templates) if templates is not None else _templates(dirs),
        template_dirs=tuple(sorted(d for d in dirs if d.is_dir())),
    )
    problems: list[Problem] = []
    seen_ids: dict[tuple[str, str], str] = {}
    contexts: list[tuple[FileContext, RuleFile]] = []
    for f in files:
        got = _read(f, problems)
        if got is None:
            continue
        data, lines = got
        spec, positions = _validate(str(f), data, lines, problems)
        contexts.append((FileContext(pack, str(f), lines, positions, problems, seen_ids), spec))
    for ctx, spec in contexts:
        for _section, merge in PACK_SECTIONS:
            merge(ctx, spec)
    if pack.calendar is None:
        pack.calendar = cal.BusinessCalendar()
    roles = pack.all_roles()
    for ctx, spec in contexts:
        ctx.roles = roles
        for _section, compile_ in RULE_SECTIONS:
            compile_(ctx, spec)
    for ctx, spec in contexts:
        for _check, cross in CROSS_CHECKS:
            cross(ctx, spec)
    if problems:
        log.warning("rule pack at %s refused: %d problem(s)", path_list[0], len(problems))
        raise RuleLoadError(problems)
    pack.name = pack.name or Path(files[0]).parent.name
    log.debug("rule pack %s loaded from %d file(s)", pack.name, len(files))
    return pack
