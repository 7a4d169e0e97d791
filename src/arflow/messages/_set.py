"""The template set: a pack's ``templates/`` folder, loaded, looked up by locale, compiled
once and rendered inside the sandbox's budget."""

from __future__ import annotations

import html as _html
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel import Locale
from jinja2 import (
    FunctionLoader,
    Template,
    TemplateSyntaxError,
)
from jinja2.exceptions import (
    TemplateNotFound,
)
from jinja2.runtime import Context

from ..errors import TemplateError, TemplateLimitError
from ._limits import (
    _BUDGET,
    MAX_OUTPUT,
    MAX_SOURCE,
    _Budget,
    _Exceeded,
    _StaticLimit,
)
from ._locale import (
    FALLBACK_LOCALE,
    _format_locale,
    _language,
    normalize_locale,
)
from ._sandbox import _Sandbox, sandbox

_SUFFIX = ".j2"


@dataclass(frozen=True)
class Rendered:
    """One rendered message. ``subject`` and ``html`` are None for a body-only template
    (an SMS); ``locale`` is the locale of the template file that was used."""

    subject: str | None
    text: str
    html: str | None
    locale: str


# -- the template set ------------------------------------------------------------------------------


class TemplateSet:
    """The templates of one folder, compiled on first use and cached."""

    def __init__(self, folder: Path, files: Mapping[tuple[str, str], Path]) -> None:
        self.folder = folder
        self._files = dict(files)
        # Jinja names: the canonical NAME.LOCALE.j2 and the file's own name (for includes).
        self._by_jinja_name: dict[str, Path] = {}
        for (name, locale), path in sorted(self._files.items()):
            self._by_jinja_name.setdefault(_jinja_name(name, locale), path)
            self._by_jinja_name.setdefault(path.name, path)
        self._text_env = self._environment(autoescape=False)
        self._html_env = self._environment(autoescape=True)
        #: ``pick`` by (name, locale) and compiled templates by (autoescape, name, locale):
        #: a run renders thousands of messages from a handful of templates
        self._picked: dict[tuple[str, str], str] = {}
        self._compiled: dict[tuple[bool, str, str], Template] = {}
        #: the globals of each compiled template as one dict (they are a chain of maps)
        self._globals: dict[Template, dict[str, Any]] = {}

    @classmethod
    def load(cls, folder: str | Path) -> TemplateSet:
        """Every ``NAME.LOCALE.j2`` in ``folder`` (a pack's ``templates/``); sources are
        read when first rendered. Files without a locale in their name are not templates."""
        root = Path(folder)
        files: dict[tuple[str, str], Path] = {}
        if root.is_dir():
            for p in sorted(root.iterdir()):
                if not p.is_file() or not p.name.endswith(_SUFFIX):
                    continue
                name, sep, locale = p.name[: -len(_SUFFIX)].partition(".")
                if not name or not sep or not locale:
                    continue
                files.setdefault((name, normalize_locale(locale)), p)
        return cls(root, files)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for name, _locale in self._files)

    def locales(self, name: str) -> tuple[str, ...]:
        return tuple(sorted(loc for n, loc in self._files if n == name))

    def pick(self, name: str, locale: str) -> str:
        """The template locale used for a reader of ``locale``: the exact one, else the
        language (``zh``), else another locale of that language (``zh_CN`` for ``zh_TW``),
        else ``en`` (or another English), else the first available."""
        have = self.locales(name)
        if not have:
            raise TemplateError(name, None, f"not found in {self.folder}")
        wanted = normalize_locale(locale) or FALLBACK_LOCALE
        if wanted in have:
            return wanted
        for lang in (_language(wanted), FALLBACK_LOCALE):
            if lang in have:
                return lang
            same = [loc for loc in have if _language(loc) == lang]
            if same:
                return same[0]
        return have[0]

    def render(self, name: str, locale: str | None, context: Mapping[str, Any]) -> Rendered:
        """Render ``name`` for a reader of ``locale`` (None: the context's contact's
        locale, else ``en``). Raises :class:`TemplateError` on any problem."""
        if locale is None:
            contact = context.get("contact")
            got = contact.get("locale") if isinstance(contact, Mapping) else None
            locale = got if isinstance(got, str) and got else FALLBACK_LOCALE
        wanted = normalize_locale(locale) or FALLBACK_LOCALE
        chosen = self._picked.get((name, wanted))
        if chosen is None:
            chosen = self._picked[(name, wanted)] = self.pick(name, wanted)
        return self._render(name, chosen, _format_locale(wanted, chosen), context)

    # -- internals ---------------------------------------------------------------------------------
    def _environment(self, *, autoescape: bool) -> _Sandbox:
        return sandbox(FunctionLoader(self._source), autoescape=autoescape)

    def _source(self, jinja_name: str) -> tuple[str, str, Callable[[], bool]] | None:
        """Only the folder's own templates: ``{% include '/etc/passwd' %}`` finds nothing."""
        path = self._by_jinja_name.get(jinja_name)
        if path is None:
            return None
        text = path.read_text(encoding="utf-8-sig")
        if len(text) > MAX_SOURCE:
            raise _Exceeded(
                f"{path.name} is {len(text):,} characters long, over the limit of {MAX_SOURCE:,}"
            )
        return text, str(path), lambda: True

    def _template(self, env: _Sandbox, name: str, locale: str) -> Template:
        key = (env.autoescape is True, name, locale)
        found = self._compiled.get(key)
        if found is not None:
            return found
        try:
            found = self._compiled[key] = env.get_template(_jinja_name(name, locale))
            return found
        except _StaticLimit as exc:
            raise TemplateLimitError(
                name, locale, exc.message or "", exc.lineno, self._other(exc.filename, name, locale)
            ) from exc
        except _Exceeded as exc:
            raise TemplateLimitError(name, locale, str(exc)) from exc
        except RecursionError as exc:
            raise TemplateLimitError(name, locale, "nested too deeply to compile") from exc
        except TemplateSyntaxError as exc:
            raise TemplateError(
                name,
                locale,
                f"syntax error: {exc.message}",
                exc.lineno,
                self._other(exc.filename, name, locale),
            ) from exc
        except TemplateNotFound as exc:
            raise TemplateError(name, locale, f"not found: {exc.name}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(name, locale, f"cannot read: {type(exc).__name__}") from exc

    def _other(self, filename: str | None, name: str, locale: str) -> str | None:
        """The file's name when a problem is in an included file, else None."""
        own = self._files.get((name, locale))
        if filename is None or own is None or filename == str(own):
            return None
        return Path(filename).name

    def _blocks(
        self,
        env: _Sandbox,
        tmpl: Template,
        wanted: Sequence[str],
        variables: dict[str, Any],
        name: str,
        locale: str,
    ) -> dict[str, str]:
        """The output of the ``wanted`` blocks. The whole template runs once, so top-level
        ``{% import %}`` and ``{% set %}`` work; what it prints outside blocks is dropped."""
        # Template.new_context, without building a dict of the template's globals (a chain
        # of the environment's and the template's) twice per message
        flat = self._globals.get(tmpl)
        if flat is None:
            flat = self._globals[tmpl] = dict(tmpl.globals)
        ctx = env.context_class(env, {**flat, **variables}, tmpl.name, tmpl.blocks, flat)
        got: dict[str, str] = {}

        budget = _BUDGET.get()

        def capture(block: str, render: Callable[[Context], Iterator[str]]) -> Any:
            def wrapper(c: Context) -> Iterator[str]:
                parts = []
                for part in render(c):  # stopped as soon as the message is too long
                    if budget is not None:
                        budget.output += len(part)
                        if budget.output > MAX_OUTPUT:
                            raise _Exceeded(f"the message is longer than {MAX_OUTPUT:,} characters")
                    parts.append(part)
                out = "".join(parts)
                got.setdefault(block, out)
                yield out

            return wrapper

        for block in wanted:
            ctx.blocks[block][0] = capture(block, ctx.blocks[block][0])
        try:
            for _ in tmpl.root_render_func(ctx):
                pass
        except Exception:
            try:
                env.handle_exception()  # re-raises with template file names and lines
            except Exception as exc:
                raise self._error(exc, name, locale) from exc
        return got

    def _error(self, exc: BaseException, name: str, locale: str) -> TemplateError:
        """The template line from the (rewritten) traceback and Jinja's message: a message
        naming a variable, never the values in the context."""
        files = {str(p) for p in self._files.values()}
        line: int | None = None
        filename: str | None = None
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename in files:
                filename, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
            tb = tb.tb_next
        limit = isinstance(exc, _Exceeded | _StaticLimit | RecursionError)
        if isinstance(exc, _StaticLimit):
            filename, line = exc.filename, exc.lineno
            message = exc.message or ""
        elif isinstance(exc, RecursionError):
            message = "calls or includes nested too deeply (a template including itself?)"
        elif isinstance(exc, TemplateSyntaxError):
            filename, line = exc.filename, exc.lineno
            message = f"syntax error: {exc.message}"
        else:
            message = str(exc)
            if not isinstance(exc, ValueError) and type(exc).__module__ == "builtins":
                message = f"{type(exc).__name__}: {message}"
        if len(message) > 300:
            message = message[:297] + "..."
        kind = TemplateLimitError if limit else TemplateError
        return kind(name, locale, message, line, self._other(filename, name, locale))

    def _render(self, name: str, locale: str, fmt: Locale, context: Mapping[str, Any]) -> Rendered:
        token = _BUDGET.set(_Budget())
        try:
            return self._render_within(name, locale, fmt, context)
        finally:
            _BUDGET.reset(token)

    def _render_within(
        self, name: str, locale: str, fmt: Locale, context: Mapping[str, Any]
    ) -> Rendered:
        variables = dict(context)
        variables["locale"] = str(fmt)
        text_t = self._template(self._text_env, name, locale)
        if "body" not in text_t.blocks:
            raise TemplateError(name, locale, "has no {% block body %}")
        wanted = [b for b in ("subject", "body") if b in text_t.blocks]
        parts = self._blocks(self._text_env, text_t, wanted, variables, name, locale)
        subject = None
        if "subject" in parts:
            subject = " ".join(parts["subject"].split())  # one line: no header injection
        text = parts["body"].strip()
        html = None
        if "html" in text_t.blocks:
            html_t = self._template(self._html_env, name, locale)
            inner = self._blocks(self._html_env, html_t, ["html"], variables, name, locale)
            html = _document(inner["html"].strip(), subject, locale)
        elif subject is not None:
            html = _document(_paragraphs(text), subject, locale)
        return Rendered(subject=subject, text=text, html=html, locale=locale)


def _jinja_name(name: str, locale: str) -> str:
    return f"{name}.{locale}{_SUFFIX}"


def _paragraphs(text: str) -> str:
    """Plain text as HTML: blank lines make paragraphs, line breaks ``<br>``, all escaped."""
    paras = [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    return "\n".join(
        "<p>" + "<br>\n".join(_html.escape(ln) for ln in p.split("\n")) + "</p>" for p in paras
    )


def _document(body: str, subject: str | None, locale: str) -> str:
    title = f"<title>{_html.escape(subject)}</title>" if subject else ""
    lang = _html.escape(locale.replace("_", "-"))
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head><meta charset="utf-8">{title}</head>\n'
        f"<body>\n{body}\n</body>\n</html>\n"
    )
