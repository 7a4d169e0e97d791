"""Lint of a pack's templates: each one exists in every locale the pack names, parses,
and renders against the sample context."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from jinja2 import nodes as jinja_nodes

from ..errors import TemplateError
from ._context import sample_context
from ._locale import _format_locale, normalize_locale
from ._set import TemplateSet, _jinja_name

# -- lint -------------------------------------------------------------------------------------------


def check(
    template_set: TemplateSet,
    required_names: Iterable[str],
    *,
    locales: Sequence[str] = ("en", "zh_CN"),
) -> list[str]:
    """Problems with the templates a pack names: each must exist in every one of
    ``locales`` (exactly, not by fallback), parse, and render against the sample context,
    with one currency and with several, in every locale it exists in."""
    out: list[str] = []
    samples = [
        (sample_context(), ""),
        (sample_context(mixed_currencies=True), " (with invoices in several currencies)"),
    ]
    for name in sorted(set(required_names)):
        have = template_set.locales(name)
        if not have:
            out.append(f"template {name}: not found in {template_set.folder}")
            continue
        for loc in locales:
            wanted = normalize_locale(loc)
            if wanted not in have:
                out.append(f"template {name} ({wanted}): missing ({_jinja_name(name, wanted)})")
        for loc in have:
            for ctx, note in samples:
                try:
                    if _extends(template_set, name, loc):
                        raise TemplateError(name, loc, "{% extends %} is not supported")
                    got = template_set._render(name, loc, _format_locale(loc, loc), ctx)
                    if not got.text:
                        raise TemplateError(name, loc, "renders an empty body")
                except TemplateError as exc:
                    out.append(f"{exc}{note}")
                    break  # report the one-currency problem first: it is the one to fix
    return out


def _extends(template_set: TemplateSet, name: str, locale: str) -> bool:
    """Blocks are rendered one by one, so a parent template's blocks would be lost."""
    tmpl = template_set._template(template_set._text_env, name, locale)
    path = template_set._files[(name, locale)]
    tree = template_set._text_env.parse(path.read_text(encoding="utf-8-sig"), tmpl.name)
    return tree.find(jinja_nodes.Extends) is not None
