"""The ``arflow`` command. It uses the public API only."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import ArflowError, Dispatcher, Ledger, Money, __version__, errors

DEFAULT_DB = "sqlite:///arflow.db"
#: Commands that create the SQLite file ``--db`` names when it is missing; every other
#: command refuses a missing file (a mistyped path would otherwise be an empty book).
CREATES_BOOK = frozenset({"init", "demo"})
#: A run that would queue more messages than this stops unless ``--yes`` (docs/cli.md).
DEFAULT_MAX_MESSAGES = 1000


CHANNELS = ("email", "sms", "task", "webhook", "wecom", "dingtalk")


def load_config(folder: Any = None) -> dict[str, Any]:
    """The settings of ``arflow.toml`` in ``folder`` (default: the current directory), else
    of the ``[tool.arflow]`` table of its ``pyproject.toml``, else none: ``db`` (a URL or a
    path, relative to that folder) and ``adapters`` (a channel to a URL, an import path
    ``module:Class``, or a table ``{class = "module:Class", ...}`` whose other keys are the
    class's keyword arguments). Raises :class:`~arflow.errors.ValidationError` for a file
    that is not TOML or a key arflow does not know."""
    import tomllib
    from pathlib import Path

    base = Path(folder) if folder is not None else Path.cwd()
    found: dict[str, Any] | None = None
    source = base / "arflow.toml"
    try:
        if source.is_file():
            found = tomllib.loads(source.read_text("utf-8"))
        elif (base / "pyproject.toml").is_file():
            source = base / "pyproject.toml"
            found = tomllib.loads(source.read_text("utf-8")).get("tool", {}).get("arflow")
    except tomllib.TOMLDecodeError as exc:
        raise errors.ValidationError(f"{source}: not valid TOML: {exc}") from None
    if not found:
        return {}
    where = f"{source}" + ("" if source.name == "arflow.toml" else " [tool.arflow]")
    unknown = set(found) - {"db", "adapters", "db_schema"}
    if unknown:
        raise errors.ValidationError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: db, db_schema, adapters)"
        )
    out: dict[str, Any] = {"source": where}
    db = found.get("db")
    if db is not None:
        if not isinstance(db, str) or not db:
            raise errors.ValidationError(f"{where}: db must be a URL or a path")
        out["db"] = db if "://" in db else str(base / Path(db).expanduser())
    db_schema = found.get("db_schema")
    if db_schema is not None:
        if not isinstance(db_schema, str) or not db_schema:
            raise errors.ValidationError(f"{where}: db_schema must be a PostgreSQL schema name")
        out["db_schema"] = db_schema
    adapters = found.get("adapters", {})
    if not isinstance(adapters, dict):
        raise errors.ValidationError(f"{where}: adapters must be a table of channels")
    bad = set(adapters) - set(CHANNELS)
    if bad:
        raise errors.ValidationError(
            f"{where}: adapters: unknown channel(s) {', '.join(sorted(bad))} "
            f"(known: {', '.join(CHANNELS)})"
        )
    out["adapters"] = {k: (v, f"{where}: adapters.{k}") for k, v in adapters.items()}
    return out


def adapter_from_spec(spec: Any, where: str) -> Any:
    """An adapter from a config entry: a URL (:func:`arflow.adapters.adapter_from_url`), an
    import path ``module:Class`` (called with no arguments) or a table ``{class =
    "module:Class", ...}`` (the other keys: keyword arguments)."""
    import importlib

    from .adapters import adapter_from_url

    options: dict[str, Any] = {}
    if isinstance(spec, dict):
        options = {k: v for k, v in spec.items() if k != "class"}
        spec = spec.get("class")
    if not isinstance(spec, str) or not spec:
        raise errors.ValidationError(f"{where}: give a URL, module:Class, or {{class = ...}}")
    if "://" in spec:
        if options:
            raise errors.ValidationError(f"{where}: a URL takes its options in its query")
        return adapter_from_url(spec)
    module, _, name = spec.partition(":")
    if not module or not name:
        raise errors.ValidationError(f"{where}: {spec!r} is neither a URL nor module:Class")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as exc:
        raise errors.ValidationError(f"{where}: cannot import {module!r}: {exc}") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            raise errors.ValidationError(f"{where}: {module!r} has no {name!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise errors.ValidationError(f"{where}: {spec!r} is not a class or a factory")
    try:
        adapter = obj(**options)
    except TypeError as exc:
        raise errors.ValidationError(f"{where}: {spec!r}: {exc}") from None
    if not callable(getattr(adapter, "deliver", None)):
        raise errors.ValidationError(
            f"{where}: {spec!r} made no adapter (it has no deliver(message) method)"
        )
    return adapter


def db_url(value: str | None, *, create: bool = False, schema: str | None = None) -> str:
    """The store URL ``--db`` names: a URL as given, a plain path as SQLite at that path;
    ``None`` reads ``$ARFLOW_DB``, else the config file's ``db`` (:func:`load_config`, with
    its ``db_schema``), else :data:`DEFAULT_DB`. A SQLite file that does not
    exist is refused (:class:`~arflow.errors.ValidationError`) unless ``create``; its folder
    must exist either way. ``schema`` (``--db-schema``): the PostgreSQL schema of arflow's
    tables, added to the URL as its ``arflow_schema`` option."""
    from pathlib import Path

    text = value or os.environ.get("ARFLOW_DB")
    if not text:
        config = load_config()
        text = config.get("db") or DEFAULT_DB
        schema = schema or config.get("db_schema")
    url = text if "://" in text else f"sqlite:///{Path(text).expanduser().absolute()}"
    if schema:
        from urllib.parse import quote

        url += ("&" if "?" in url else "?") + f"arflow_schema={quote(schema, safe='')}"
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :].split("?", 1)[0]
        if path and path != ":memory:":
            file = Path(path)
            if not file.parent.is_dir():
                raise errors.ValidationError(
                    f"--db {text!r}: folder {str(file.parent)!r} does not exist"
                )
            if not create and not file.exists():
                raise errors.ValidationError(
                    f"--db {text!r}: no book at {str(file)!r}; create it with "
                    f"`arflow init --db {path}` (or `arflow demo` for a sample book)"
                )
    return url


@contextmanager
def _progress(text: str, total: int | None = None) -> Iterator[Callable[[], None]]:
    """A progress bar (``total`` steps) or a spinner on standard error while the block runs,
    when standard error is a terminal: a sign of life on a long import, run, simulation or
    report. Yields the function that advances it one step. Standard output is left alone
    (a pipe gets the data only)."""
    if not sys.stderr.isatty():
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))
    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), TextColumn("{task.completed}/{task.total}")]
    bar = Progress(
        *columns,
        TimeElapsedColumn(),
        console=console,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with bar:
        task = bar.add_task(text, total=total)
        yield lambda: bar.advance(task)


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> bool:
    """Print ``rows`` as a rich table when standard output is a terminal (colour unless
    ``$NO_COLOR``); False when it is not, for the caller to print its plain lines."""
    if not sys.stdout.isatty():
        return False
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for h in headers:
        table.add_column(h, overflow="fold")  # a key in full: it is copied into explain
    for r in rows:
        table.add_row(*(str(x) for x in r))
    Console(no_color=bool(os.environ.get("NO_COLOR"))).print(table)
    return True


def _dump(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _money(m: dict[str, Money]) -> str:
    return ", ".join(str(v) for v in m.values()) or "0"


def _print_customer(ledger: Ledger, customer_id: str) -> None:
    c = ledger.customer(customer_id)
    credit = c.credit
    print(f"{c.id}  {c.name}")
    print(
        f"  region {c.region or '-'} · salesperson {c.salesperson or '-'} · grade "
        f"{credit.grade or '-'} · limit {credit.credit_limit or '-'} · terms "
        f"{credit.payment_terms_days}d"
    )
    items = ledger.open_items(c.id)
    for r in items:
        extra = f" (disputed {r.disputed_amount})" if r.disputed_amount else ""
        print(
            f"    {r.id:<12} issued {r.issue_date} due {r.due_date}  {r.state:<15}"
            f" open {r.open_balance}{extra}"
        )
    if not items:
        print("    no open items")
    avail = ledger.credit_available(c.id)
    print(
        f"  balance {_money(ledger.balance(c.id))} · exposure {_money(ledger.exposure(c.id))}"
        f" · credit available {avail if avail is not None else '-'}"
        f" · unapplied credit {_money(ledger.unapplied_credit(c.id))}"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """Play the sample book's days up to ``--as-of`` and tell the story (``arflow.demo``)."""
    from . import demo

    return demo.command(args)


def cmd_init(args: argparse.Namespace) -> int:
    """Create the book ``--db`` names (its tables); an existing book is left as it is."""
    ledger = Ledger(args.db)
    events = ledger.store.event_count()
    if args.json:
        _dump({"db": ledger.store.url, "events": events})
    else:
        print(f"book at {ledger.store.url}: ready ({events} event(s) in it)")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """arflow's own tables in the database ``--db`` names: ``upgrade`` them to this
    arflow's schema version, print their ``version``, or ``check`` that it is this
    arflow's (exit code 5 when not)."""
    from urllib.parse import parse_qs, urlsplit

    from .store.sql import SCHEMA_VERSION, SqlStore, schema_version, upgrade

    if args.db.startswith("memory:"):
        raise errors.ValidationError("arflow db: a memory:// book has no tables to upgrade")
    schema = (parse_qs(urlsplit(args.db).query).get("arflow_schema") or [None])[0]
    where = "" if schema is None else f" in schema {schema!r}"
    if args.action == "upgrade":
        before, after = upgrade(args.db)
        if args.json:
            _dump({"before": before, "after": after, "schema": schema})
        elif before == after:
            print(f"arflow's tables{where}: already at version {after}")
        else:
            print(f"arflow's tables{where}: upgraded from version {before} to version {after}")
        return 0
    if args.action == "check":
        SqlStore(args.db, upgrade=False).close()  # refuses another version, saying which
        print(f"arflow's tables{where}: version {SCHEMA_VERSION}, this arflow's")
        return 0
    found = schema_version(args.db)
    state = (
        "current"
        if found == SCHEMA_VERSION
        else "none"
        if found == 0
        else "older"
        if found < SCHEMA_VERSION
        else "newer"
    )
    if args.json:
        _dump({"database": found, "arflow": SCHEMA_VERSION, "schema": schema, "state": state})
        return 0
    what = {
        "current": "current",
        "none": "no arflow tables: run `arflow db upgrade` (or `arflow init`)",
        "older": "older: run `arflow db upgrade`",
        "newer": "newer than this arflow: upgrade arflow",
    }[state]
    print(f"database{where}: version {found}, arflow: version {SCHEMA_VERSION} ({what})")
    return 0


def cmd_decisions(args: argparse.Namespace) -> int:
    """The decision ledger, oldest run first: by customer, status or run date."""
    store = Ledger(args.db).store
    rows = [
        r
        for r in store.decisions(as_of=args.as_of, status=args.status)
        if args.customer is None or r.customer_id == args.customer
    ]
    if args.json:
        _dump([json.loads(r.body) | {"status": r.status} for r in rows])
        return 0
    shown = [(r.as_of, r.status, r.kind, r.customer_id, r.key) for r in rows]
    if _table(f"{len(rows)} decision(s)", ["as of", "status", "kind", "customer", "key"], shown):
        return 0
    print(f"{len(rows)} decision(s)")
    for r in rows:
        print(f"  {r.as_of} {r.status:<8} {r.kind:<9} {r.customer_id:<10} {r.key}")
    return 0


def _end_of(day: date) -> Any:
    from datetime import UTC, datetime

    return datetime(day.year, day.month, day.day, 23, 59, tzinfo=UTC)


def cmd_dispatch(args: argparse.Namespace) -> int:
    """Deliver what the outbox holds through the adapters named by URL."""
    from .adapters import adapter_from_url
    from .messages import ledger_feedback, ledger_tasks
    from .outbox import RetryPolicy

    adapters = {}
    configured = load_config().get("adapters", {})
    for channel in CHANNELS:
        url = getattr(args, channel)
        if url:
            adapters[channel] = adapter_from_url(url)
        elif channel in configured:
            adapters[channel] = adapter_from_spec(*configured[channel])
    if not adapters:
        raise errors.ValidationError(
            "name at least one adapter: --email smtp://..., --sms, --task, --webhook, "
            "--wecom, --dingtalk, or [adapters] in arflow.toml (docs/cli.md)"
        )
    ledger = Ledger(args.db)
    limits = {}
    for item in args.rate or ():
        channel, _, per_s = item.partition("=")
        try:
            limits[channel] = float(per_s)
        except ValueError:
            raise errors.ValidationError(
                f"--rate {item!r}: write CHANNEL=PER_SECOND, e.g. sms=5"
            ) from None
    shared = None
    if args.rate_redis:
        from .adapters.ratelimit import RedisRateLimiter

        if not limits:
            raise errors.ValidationError(
                "--rate-redis shares the limits of --rate among dispatchers: give --rate too, "
                "e.g. --rate sms=5"
            )
        shared, limits = RedisRateLimiter(args.rate_redis, limits), {}
    dispatcher = Dispatcher(
        ledger.store,
        adapters,
        on_feedback=ledger_feedback(ledger),
        on_sent=ledger_tasks(ledger),
        batch=args.batch,
        lease=timedelta(seconds=args.lease),
        retry=RetryPolicy(max_attempts=args.max_attempts),
        rate_limits=limits,
        rate_limiter=shared,
        channels=list(adapters),
    )
    try:
        stats = dispatcher.run(idle_exit=not args.forever, poll=args.poll)
    finally:
        if shared is not None:
            shared.close()
        for adapter in adapters.values():
            close = getattr(adapter, "close", None)
            if callable(close):
                close()
    if args.json:
        from dataclasses import asdict

        _dump(asdict(stats))
        return 0
    lost = f", {stats.lost} left to another dispatcher" if stats.lost else ""
    print(f"dispatch: {stats.sent} sent, {stats.retried} to retry, {stats.dead} dead{lost}")
    for e in stats.errors:
        print(f"  dead: {e}")
    return 0


def cmd_outbox(args: argparse.Namespace) -> int:
    """List, inspect and retry the outbox."""
    from .actions import redact_urls
    from .outbox import instant, micros

    store = Ledger(args.db).store
    if args.action == "retry":
        from datetime import UTC, datetime

        keys = None if args.all else args.keys
        if keys is not None and not keys:
            raise ArflowError("name the keys to retry, or --all for every dead letter")
        n = store.outbox_retry(keys, micros(datetime.now(UTC)))
        print(f"{n} dead letter(s) queued again")
        return 0
    if args.action == "show":
        if len(args.keys) != 1:
            raise errors.ValidationError("outbox show: name one message key")
        row = store.outbox_item(args.keys[0])
        if row is None:
            raise errors.UnknownObject("message", args.keys[0])
        body = json.loads(row.body)
        if args.json:
            _dump(_outbox_json(row) | {"message": body})
            return 0
        print(f"{row.key}  {row.status} · {row.channel} · {row.attempts} attempt(s)")
        print(f"  to: {', '.join(body.get('to') or []) or '-'}")
        if body.get("cc"):
            print(f"  cc: {', '.join(body['cc'])}")
        if body.get("subject"):
            print(f"  subject: {body['subject']}")
        print(f"  decisions: {', '.join(body.get('decision_keys') or []) or '-'}")
        if row.last_error:
            print(f"  last error: {redact_urls(row.last_error)}")
        for line in (body.get("text") or "").splitlines():
            print(f"  | {line}")
        return 0
    counts = store.outbox_counts()
    status = "dead" if args.action == "dead" else args.status
    rows = store.outbox(status=status, limit=args.limit)
    if args.json:
        _dump({"counts": counts, "messages": [_outbox_json(r) for r in rows]})
        return 0
    print(" · ".join(f"{k} {v}" for k, v in counts.items()))
    for r in rows:
        when = instant(r.sent_at if r.status == "sent" else r.next_at)
        print(f"  {r.status:<8} {r.channel:<7} {r.attempts:>2}x {when:%Y-%m-%d %H:%M} {r.key}")
        if r.last_error and (r.status != "sent" or args.verbose):
            print(f"           {redact_urls(r.last_error)}")
    return 0


def _iso(when: Any) -> str | None:
    return None if when is None else str(when.isoformat())


def _outbox_json(r: Any) -> dict[str, Any]:
    from .actions import redact_urls
    from .outbox import instant

    return {
        "key": r.key,
        "channel": r.channel,
        "customer_id": r.customer_id,
        "status": r.status,
        "attempts": r.attempts,
        "next_at": _iso(instant(r.next_at)),
        "sent_at": _iso(instant(r.sent_at)),
        "last_error": redact_urls(r.last_error) if r.last_error else None,
    }


def cmd_show(args: argparse.Namespace) -> int:
    ledger = Ledger(args.db)
    if args.json:
        obj = (
            ledger.customer(args.id) if args.kind == "customer" else ledger.get(args.kind, args.id)
        )
        out: dict[str, Any] = {"object": obj.model_dump(mode="json")}
        if args.kind == "customer":
            out["balance"] = {k: str(v) for k, v in ledger.balance(args.id).items()}
            out["exposure"] = {k: str(v) for k, v in ledger.exposure(args.id).items()}
            out["open_items"] = [r.id for r in ledger.open_items(args.id)]
        if args.audit or args.kind != "customer":
            out["audit"] = [
                a.model_dump(mode="json") for a in ledger.audit_trail(args.kind, args.id)
            ]
        _dump(out)
        return 0
    if args.kind == "customer":
        _print_customer(ledger, args.id)
    else:
        obj = ledger.get(args.kind, args.id)
        print(obj.model_dump_json(indent=2))
    if args.audit or args.kind != "customer":
        print("\naudit trail:")
        for a in ledger.audit_trail(args.kind, args.id):
            bal = f" balance {a.before_balance} -> {a.after_balance}" if a.after_balance else ""
            print(
                f"  {a.occurred_at:%Y-%m-%d %H:%M} {a.actor:<12} {a.event_type:<18}"
                f" {a.before_state or '-'} -> {a.after_state or '-'}{bal}  {a.summary}"
                + (f" [refused: {a.refused}]" if a.refused else "")
            )
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    """The inbox of a person or role, or a task completed or cancelled by ``--as``."""
    from datetime import UTC, datetime

    from .events import TaskCancelled, TaskCompleted

    engine = _engine(args)
    if args.action == "list":
        if not args.who:
            raise errors.ValidationError("tasks: name whose inbox with --for PERSON|ROLE")
        as_of = args.as_of or date.today()
        items = engine.tasks_for(args.who, as_of)
        if args.json:
            _dump(
                [
                    {
                        "task": it.task.model_dump(mode="json"),
                        "waiting_days": it.waiting_days,
                        "if_nothing": it.if_nothing,
                    }
                    for it in items
                ]
            )
            return 0
        print(f"{len(items)} task(s) waiting for {args.who} as of {as_of}")
        for it in items:
            t = it.task
            print(
                f"  {t.id}  {t.kind:<15} {t.status:<8} {t.subject_kind} {t.subject_id}"
                f" · customer {t.customer_id} · owner {t.owner}"
            )
            print(
                f"      since {t.created_on} ({it.waiting_days}d) · deadline "
                f"{t.deadline or '-'} · if nothing is done: {it.if_nothing}"
            )
        return 0
    if not args.task_id:
        raise errors.ValidationError(f"tasks {args.action}: name the task id")
    if not args.actor:
        raise errors.ValidationError(f"tasks {args.action}: say who you are with --as PERSON")
    on = args.as_of or date.today()
    meta: dict[str, Any] = {
        "occurred_at": datetime.now(UTC),
        "actor": args.actor,
        "reason": args.reason,
        "task_id": args.task_id,
    }
    if args.action == "done":
        event: Any = TaskCompleted(completed_on=on, outcome=args.outcome, note=args.note, **meta)
    else:
        event = TaskCancelled(cancelled_on=on, **meta)
    engine.handle(event)
    print(f"task {args.task_id}: {args.action}" + (f" ({args.outcome})" if args.outcome else ""))
    return 0


def cmd_where(args: argparse.Namespace) -> int:
    """Where an invoice, order, invoice request or contract is in order to cash."""
    from .ledger import where

    ledger = Ledger(args.db)
    found = where(ledger.store, args.kind, args.id, args.as_of or date.today())
    if args.json:
        print(json.dumps(_where_json(found), ensure_ascii=False, indent=2))
    else:
        print(found.describe())
    return 0


def _where_json(w: Any) -> dict[str, Any]:
    return {
        "kind": w.kind,
        "id": w.id,
        "stage": w.stage,
        "since": w.since.isoformat() if w.since else None,
        "owner": w.owner,
        "waiting": list(w.waiting),
        "subject": {"kind": w.subject_kind, "id": w.subject_id},
        "done": w.done,
        "parts": [_where_json(p) for p in w.parts],
    }


def _engine(args: argparse.Namespace, ledger: Ledger | None = None) -> Any:
    from .engine import Engine
    from .rules import default_pack_path

    rules = args.rules or [str(default_pack_path())]
    return Engine(ledger or Ledger(args.db), rules, workers=getattr(args, "workers", 1))


#: Failures listed one by one before the rest are counted.
_FAILURES_SHOWN = 20


def _print_decisions(plan: Any, *, verbose: int = 0) -> None:
    """A plan's decisions: counted by status, kind and rule by default (a large day is a
    few lines, not one per decision); ``-v`` lists each one, ``-vv`` adds its key and the
    skipped decisions with why. Failures are always listed (the first 20, then a count)."""
    if verbose:
        for d in plan.decisions:
            acts = ", ".join(
                f"{a.type}{'→' + '+'.join(a.to) if a.to else ''}"
                f"{'(' + a.template + ')' if a.template else ''}"
                for a in d.actions
            )
            rule = d.rule + (f"/{d.step}" if d.step else "")
            print(f"  {d.status:<8} {d.kind:<9} {rule:<26} {d.subject_id:<12} {acts}")
            if verbose > 1:
                print(f"           key {d.key}")
        for d in plan.skipped if verbose > 1 else []:
            rule = d.rule + (f"/{d.step}" if d.step else "")
            print(f"  skipped  {d.kind:<9} {rule:<26} {d.subject_id:<12} {d.reason}")
    else:
        counts: dict[tuple[str, str, str], int] = {}
        for d in plan.decisions:
            key = (str(d.status), str(d.kind), d.rule + (f"/{d.step}" if d.step else ""))
            counts[key] = counts.get(key, 0) + 1
        for (status, kind, rule), n in sorted(counts.items()):
            print(f"  {n:>7,} {status:<8} {kind:<9} {rule}")
        if plan.decisions or plan.skipped:
            print("  (-v lists each decision, -vv adds its key and the skipped ones)")
    failures = plan.failures if verbose else plan.failures[:_FAILURES_SHOWN]
    for f in failures:
        print(f"  FAILED   {f.subject_kind} {f.subject_id}: {f.error}")
    if len(plan.failures) > len(failures):
        print(f"  ... and {len(plan.failures) - len(failures)} more failure(s) (-v lists all)")


def cmd_plan(args: argparse.Namespace) -> int:
    engine = _engine(args)
    plan = engine.plan(args.as_of, first_run=args.first_run)
    if args.json:
        out = {
            "as_of": args.as_of.isoformat(),
            "since": plan.since.isoformat() if plan.since else None,
            "decisions": [d.model_dump(mode="json") for d in plan.decisions],
            "skipped": [d.model_dump(mode="json") for d in plan.skipped],
            "notices": [n.model_dump(mode="json") for n in plan.notices],
            "failures": [f.__dict__ for f in plan.failures],
        }
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    print(
        f"plan for {args.as_of} ({len(plan.decisions)} decision(s), "
        f"{len(plan.skipped)} skipped, {len(plan.notices)} notice(s)):"
    )
    _print_decisions(plan, verbose=args.verbose)
    return 0


def _messages_in(plan: Any) -> int:
    """The messages recording ``plan`` would queue (held decisions queue none)."""
    from .actions import CHANNEL_OF

    return sum(1 for n in plan.notices if n.action.type in CHANNEL_OF)


def _celery_options(args: argparse.Namespace) -> None:
    """--shards, --queue and --timeout need --celery; --celery runs in Celery's workers."""
    if args.celery is None:
        if args.shards is not None or args.queue is not None:
            raise click.UsageError("--shards and --queue go with --celery BROKER_URL")
    elif args.workers != 1:
        raise click.UsageError("--workers and --celery do not go together")


def cmd_worker(args: argparse.Namespace) -> int:
    """``arflow worker``: a Celery worker that runs shards of days (docs/distributed.md)."""
    from .engine import distributed

    queue = args.queue or distributed.DEFAULT_QUEUE
    app = distributed.celery_app(args.celery, store=args.db, rules=args.rules, queue=queue)
    argv = ["worker", "-Q", queue, "-l", "info"]
    if args.concurrency:
        argv += ["--concurrency", str(args.concurrency)]
    app.worker_main(argv)
    return 0


def _run_on_celery(args: argparse.Namespace, engine: Any) -> int:
    from .engine import distributed

    queue = args.queue or distributed.DEFAULT_QUEUE
    app = distributed.celery_app(args.celery, queue=queue)
    shards = args.shards or 8
    with _progress(f"running {args.as_of} in {shards} shards on Celery"):
        done = distributed.run_on_celery(
            engine,
            args.as_of,
            app=app,
            shards=shards,
            first_run=args.first_run,
            queue=queue,
            timeout=args.timeout,
        )
    result = done.result
    if args.json:
        _dump(
            {
                "as_of": args.as_of.isoformat(),
                "run_id": done.run_id,
                "shards": done.shards,
                "joined": done.joined,
                "recorded": result.recorded,
                "skipped": result.skipped,
                "failed": len(result.failures),
                "failures": [f.__dict__ for f in result.failures],
            }
        )
        return 1 if result.failures else 0
    how = "recorded meanwhile by another coordinator" if done.joined else f"{shards} shards"
    print(
        f"run {args.as_of} ({how}): {result.recorded} recorded, {result.skipped} skipped, "
        f"{len(result.failures)} failed"
    )
    for f in result.failures:
        print(f"  FAILED   {f.subject_kind} {f.subject_id}: {f.error}")
    return 1 if result.failures else 0


def cmd_run(args: argparse.Namespace) -> int:
    engine = _engine(args)
    if not args.yes:
        with _progress(f"planning {args.as_of}: counting the messages"):
            n = _messages_in(engine.plan(args.as_of, first_run=args.first_run))
        if n > args.max_messages:
            raise errors.ValidationError(
                f"run {args.as_of} would queue {n} messages, more than --max-messages "
                f"{args.max_messages} (a first run or a catch-up?): look at them with "
                f"`arflow plan --as-of {args.as_of}`, then run again with --yes, or hold "
                "them for review (settings.review: true, docs/review.md)"
            )
    if getattr(args, "celery", None):
        return _run_on_celery(args, engine)
    with _progress(f"running {args.as_of}"):
        result = engine.run(args.as_of, first_run=args.first_run)
    if args.json:
        _dump(
            {
                "as_of": args.as_of.isoformat(),
                "recorded": result.recorded,
                "skipped": result.skipped,
                "failed": len(result.failures),
                "messages": _messages_in(result.plan),
                "decisions": [d.model_dump(mode="json") for d in result.plan.decisions],
                "failures": [f.__dict__ for f in result.failures],
            }
        )
        return 1 if result.failures else 0
    print(
        f"run {args.as_of}: {result.recorded} recorded, {result.skipped} skipped, "
        f"{len(result.failures)} failed"
    )
    if result.plan.slices > 1:  # too many to keep: they are in the decision ledger
        print(f"  planned and recorded in {result.plan.slices} slices of the customers")
    _print_decisions(result.plan, verbose=args.verbose)
    return 1 if result.failures else 0


def cmd_explain(args: argparse.Namespace) -> int:
    engine = _engine(args)
    row = engine.store.outbox_item(args.key)
    if row is not None and engine.store.decision(args.key) is None:
        body = json.loads(row.body)
        _dump(
            {
                "message": _outbox_json(row)
                | {k: body.get(k) for k in ("to", "subject", "template", "rule")},
                "decisions": [engine.explain(k) for k in body.get("decision_keys") or []],
            }
        )
        return 0
    try:
        why = engine.explain(args.key)
    except ArflowError:
        raise errors.UnknownObject("decision or message", args.key) from None
    print(json.dumps(why, ensure_ascii=False, indent=2))
    return 0


def cmd_proposal(args: argparse.Namespace) -> int:
    """A review proposal (``settings.review: true``): show, edit, drop, hold, release."""
    from datetime import UTC, datetime

    engine = _engine(args)
    now = datetime.now(UTC)  # the CLI is the edge: the one place that reads the clock
    if args.action == "show":
        view = engine.proposal_view(args.customer)
        if args.json:
            print(json.dumps([c.as_dict() for c in view], ensure_ascii=False, indent=2))
            return 0
        for c in view:
            print(f"{c.customer_id}{'  (on hold)' if c.on_hold else ''}")
            for d in c.lines:
                rule = d.rule + (f"/{d.step}" if d.step else "")
                print(f"  line {d.key}  {d.kind} {rule} {d.subject_id}")
            for m in c.messages:
                mark = " (edited)" if m.edited else ""
                print(f"  message {m.key}{mark}")
                if m.problem:
                    print(f"    cannot go out: {m.problem}")
                    continue
                print(f"    {m.channel} to {', '.join(m.to)} at {m.send_at.isoformat()}")
                if m.subject:
                    print(f"    subject: {m.subject}")
                for line in m.text.splitlines():
                    print(f"    | {line}")
        if not view:
            print("the proposal is empty: nothing is held for review")
        return 0
    if not args.as_:
        raise errors.ValidationError(f"proposal {args.action}: say who acts: --as PERSON")
    if args.action == "edit":
        if len(args.keys) != 1:
            raise errors.ValidationError("proposal edit: name one message key")
        key = args.keys[0]
        text = None
        if args.text_file:
            with open(args.text_file, encoding="utf-8") as f:
                text = f.read()
        m = engine.edit_message(
            key, by=args.as_, at=now, subject=args.subject, text=text, send_on=args.send_on
        )
        print(f"edited {m.key}: {m.channel} to {', '.join(m.to)} at {m.send_at.isoformat()}")
        return 0
    if args.action == "drop":
        if not args.keys:
            raise errors.ValidationError("proposal drop: name the lines (decision keys)")
        print(f"dropped {engine.drop_lines(args.keys, by=args.as_, at=now)} line(s)")
        return 0
    if args.action == "hold":
        if not args.keys or len(args.keys) != 1:
            raise errors.ValidationError("proposal hold: name one customer")
        n = engine.hold_customer(args.keys[0], by=args.as_, at=now, lift=args.lift)
        print(f"{'let go' if args.lift else 'held'} {args.keys[0]}: {n} line(s) held")
        return 0
    counts = engine.release(args.keys or None, actor=args.as_, at=now)
    print(", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def _hypothetical_events(path: str, date_to: date) -> list[tuple[date, int, Any]]:
    """``simulate --events FILE``: one event a line in the log's JSON form (blank lines and
    lines starting with ``#`` skipped), each with the day it takes effect (its
    ``occurred_at``, in UTC) and its line. A bad line, or an event after ``--to`` (it
    could never take effect), is refused with ``FILE:LINE``."""
    from .events import parse_event

    out: list[tuple[date, int, Any]] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise errors.ValidationError(f"{path}: cannot read the events: {exc.strerror}") from exc
    for n, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            event = parse_event(line)
        except errors.ValidationError as exc:
            raise errors.ValidationError(f"{path}:{n}: {exc}") from exc
        day = event.occurred_at.astimezone(UTC).date()
        if day > date_to:
            raise errors.ValidationError(
                f"{path}:{n}: event {event.event_id} occurs on {day}, after --to {date_to}"
            )
        out.append((day, n, event))
    out.sort(key=lambda x: (x[0], x[1]))
    return out


def cmd_simulate(args: argparse.Namespace) -> int:
    """Day by day on a copy of the whole book (objects, log, audit trail, decision ledger,
    runs, outbox): what the book already decided is not decided again, and the real book
    is not touched. Hypothetical events (``--events FILE``) enter the copy through
    ``Engine.handle`` on their day, before that day's run."""
    from .store import copy_book

    source = Ledger(args.db)
    copy = Ledger(copy_book(source.store))
    engine = _engine(args, copy)
    pending = _hypothetical_events(args.events, args.date_to) if args.events else []
    day = args.date_from
    first = not copy.store.runs()
    days: list[dict[str, Any]] = []
    total = max((args.date_to - args.date_from).days + 1, 0)

    def enter(until: date) -> list[str]:
        entered = []
        while pending and pending[0][0] <= until:
            _day, n, event = pending.pop(0)
            try:
                engine.handle(event)
            except errors.ArflowError as exc:
                raise errors.ValidationError(
                    f"{args.events}:{n}: event {event.event_id} refused: {exc}"
                ) from exc
            entered.append(event.event_id)
        return entered

    with _progress(f"simulating {args.date_from} to {args.date_to}", total) as step:
        while day <= args.date_to:
            entered = enter(day)
            result = engine.run(day, first_run=first)
            first = False
            if args.json:
                days.append(
                    {
                        "as_of": day.isoformat(),
                        "events": entered,
                        "recorded": result.recorded,
                        "failed": len(result.failures),
                        "decisions": [d.model_dump(mode="json") for d in result.plan.decisions],
                    }
                )
            elif result.plan.decisions or result.failures or entered or args.verbose:
                print(f"{day} ({day:%a}): {result.recorded} decision(s)")
                for eid in entered:
                    print(f"  event    {eid}")
                _print_decisions(result.plan, verbose=args.verbose)
            day += timedelta(1)
            step()
    if args.json:
        _dump(days)
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    """``arflow process diagram NAME``: the Mermaid diagram of a declared process;
    ``arflow process show ID``: an instance in the book, its history and its diagram."""
    from .lifecycle import process_mermaid
    from .rules import default_pack_path
    from .rules.loader import load_pack

    if args.action == "show":
        inst = Ledger(args.db).get("process", args.name)
        print(f"process {inst.id} ({inst.process}) on {inst.subject_kind} {inst.subject_id}")
        if inst.is_open:
            role = f" (or a holder of {inst.role})" if inst.role else ""
            print(f"  at step {inst.state} since {inst.step_since}, owner {inst.owner}{role}")
        else:
            print(f"  ended {inst.state} on {inst.step_since}")
        for h in inst.history:
            said = f": {h.comment}" if h.comment else ""
            print(f"  {h.on} {h.step} {h.decision} by {h.by} -> {h.moved_to}{said}")
        sys.stdout.write(process_mermaid(inst.definition))
        return 0
    pack = load_pack(args.rules or [str(default_pack_path())])
    proc = pack.process(args.name)
    if proc is None:
        known = ", ".join(p.id for p in pack.processes) or "none"
        raise errors.UnknownObject("process", f"{args.name} (the pack declares: {known})")
    sys.stdout.write(process_mermaid(proc))
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    from .rules import default_pack_path
    from .rules.lint import lint
    from .rules.loader import RuleLoadError, load_pack

    paths = args.paths or [str(default_pack_path())]
    try:
        pack = load_pack(paths)
    except RuleLoadError as exc:
        if args.json:
            _dump({"errors": [str(p) for p in exc.problems], "warnings": []})
            return 1
        for p in exc.problems:
            print(f"error: {p}")
        return 1
    people = None
    if getattr(args, "db", None):
        people = list(Ledger(args.db).store.all("person"))
    warnings = lint(pack, people)
    if args.json:
        found = _check_templates(pack, paths)
        _dump({"pack": pack.name, "errors": found, "warnings": [str(w) for w in warnings]})
        return 1 if found else 0
    for w in warnings:
        print(f"warning: {w}")
    template_problems = _check_templates(pack, paths)
    for t in template_problems:
        print(f"error: {t}")
    if template_problems:
        return 1
    n_steps = sum(len(x.steps) for x in pack.ladders)
    print(
        f"{pack.name}: {len(pack.ladders)} ladder(s), {n_steps} step(s), "
        f"{len(pack.locks)} lock(s), {len(pack.alerts)} alert(s), "
        f"{len(pack.patterns)} pattern(s): "
        f"{'ok' if not warnings else f'{len(warnings)} warning(s)'}"
    )
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """Print (or write) the JSON Schema of a rule file, for editors (docs/authoring.md)."""
    from pathlib import Path

    from .rules.schema import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if args.out is None:
        print(text, end="")
        return 0
    target = Path(args.out)
    if not target.parent.is_dir():
        raise errors.ValidationError(
            f"--out {args.out!r}: folder {str(target.parent)!r} does not exist"
        )
    if target.is_dir():
        raise errors.ValidationError(f"--out {args.out!r} is a folder, not a file")
    target.write_text(text, encoding="utf-8")
    print(f"the rule-file schema written to {args.out}")
    return 0


def _check_templates(pack: Any, paths: Sequence[str]) -> list[str]:
    """Every template a rule names, in every required locale, renders against a full
    sample context: a misspelled variable fails here, not in a customer's inbox."""
    from pathlib import Path

    from .messages import TemplateSet, check

    folders = {(p if p.is_dir() else p.parent) / "templates" for p in map(Path, paths)}
    out: list[str] = []
    for folder in sorted(folders):
        if folder.is_dir():
            out += check(
                TemplateSet.load(folder), pack.templates, locales=tuple(pack.settings.locales)
            )
    return out


def cmd_import(args: argparse.Namespace) -> int:
    from .importer import import_files

    ledger = Ledger(args.db)
    with _progress(f"importing {len(args.paths)} file(s)"):
        report = import_files(ledger, args.paths)
    if args.json:
        from dataclasses import asdict

        _dump(asdict(report) | {"already_imported": report.already_imported})
        return 0
    print(report)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """The figures as of a date: a table, or JSON, CSV files or one HTML page."""
    from .analytics import build_report
    from .rules import default_pack_path
    from .rules.loader import load_pack

    ledger = Ledger(args.db)
    pack = load_pack(args.rules or [str(default_pack_path())])
    with _progress(f"the figures as of {args.as_of}"):
        report = build_report(ledger.store, args.as_of, pack=pack)
    return emit_report(
        report, json_out=args.json, csv_dir=args.csv, html_file=args.html, locale=args.locale
    )


def emit_report(
    report: Any,
    *,
    json_out: bool = False,
    csv_dir: str | None = None,
    html_file: str | None = None,
    locale: str = "en",
) -> int:
    """Print or write a :class:`~arflow.analytics.Report` as ``arflow report`` does:
    JSON on standard output, CSV files into a folder, one HTML file, or else the table."""
    from pathlib import Path

    from .report import render_html, render_text, report_json, write_csv

    if json_out:
        print(report_json(report))
    elif csv_dir is not None:
        paths = write_csv(report, csv_dir)
        print(f"{len(paths)} CSV file(s) written to {csv_dir}: {', '.join(p.name for p in paths)}")
    elif html_file is not None:
        target = Path(html_file)
        if not target.parent.is_dir():
            raise errors.ValidationError(
                f"--html {html_file!r}: folder {str(target.parent)!r} does not exist"
            )
        if target.is_dir():
            raise errors.ValidationError(f"--html {html_file!r} is a folder, not a file")
        text = render_html(report, locale)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
        print(f"report as of {report.as_of} written to {html_file} (open it in a browser)")
    else:
        print(render_text(report, locale), end="")
    return 0


if TYPE_CHECKING:  # click's ParamType is generic for type checkers since click 8.2
    _DateBase = click.ParamType[date]
    _IntBase = click.ParamType[int]
else:
    _DateBase = _IntBase = click.ParamType


class _DateType(_DateBase):
    name = "date"

    def convert(self, value: Any, param: Any, ctx: Any) -> date:
        if isinstance(value, date):
            return value
        if value == "today":
            return date.today()
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD or today)", param, ctx)


class _PositiveType(_IntBase):
    name = "integer"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            n = value
        else:
            try:
                n = int(value)
            except ValueError:
                self.fail(f"{value!r} is not a whole number", param, ctx)
        if n < 1:
            self.fail(f"{value!r}: at least 1", param, ctx)
        return n


DATE, POSITIVE = _DateType(), _PositiveType()


def _opt(*decls: str, **kw: Any) -> click.Option:
    return click.Option(list(decls), **kw)


def _flag(*decls: str, help: str | None = None) -> click.Option:
    return click.Option(list(decls), is_flag=True, default=False, help=help)


def _arg(name: str, **kw: Any) -> click.Argument:
    return click.Argument([name], **kw)


def _db() -> click.Option:
    return _opt(
        "--db",
        default=None,
        help="the book: a URL (sqlite:///file.db, postgresql+psycopg://..., memory://) or "
        f"a path to a SQLite file (default $ARFLOW_DB, the config file, else {DEFAULT_DB})",
    )


def _db_schema() -> click.Option:
    return _opt(
        "--db-schema",
        default=None,
        metavar="NAME",
        help="PostgreSQL: the schema arflow's tables are in (default: the URL's arflow_schema "
        "option, the config file's db_schema, else the connection's search path)",
    )


def _rules(
    text: str = "rule files or folders (default: the shipped default pack); may repeat",
) -> click.Option:
    return _opt("--rules", multiple=True, help=text)


_VERBOSE = ("-v", "--verbose")
_JSON_HELP = "machine-readable output"


def _engine_params() -> list[click.Parameter]:
    return [
        _db(),
        _rules(),
        _opt(
            *_VERBOSE,
            count=True,
            help="-v: each decision instead of counts; -vv: with keys and skips",
        ),
    ]


def _run_command(func: Any, name: str, params: dict[str, Any], check: Any = None) -> int:
    """Call ``func`` with the options as an argparse-like namespace, and turn an error into
    one line and its exit code (docs/cli.md); ``--debug`` raises it instead."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    args = argparse.Namespace(**params)
    args.command = name
    args.debug = bool((root.params or {}).get("debug") or params.get("debug_here"))
    if hasattr(args, "rules"):
        args.rules = list(args.rules) or None
    if check is not None:
        check(args)
    return _guarded(func, args)


def _make(
    name: str,
    func: Any,
    help: str,
    params: list[click.Parameter],
    check: Any = None,
) -> click.Command:
    def callback(**kw: Any) -> int:
        code = _run_command(func, name, kw, check)
        if code:
            click.get_current_context().exit(code)
        return 0

    if any(p.name == "db" for p in params):
        params = [*params, _db_schema()]
    params = [*params, _flag("--debug", "debug_here", help="raise an error with its traceback")]
    return click.Command(
        name,
        callback=callback,
        params=params,
        help=help,
        short_help=help,
        context_settings=_CONTEXT,
    )


_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_KINDS = [
    "customer",
    "receivable",
    "payment",
    "contract",
    "order",
    "dispute",
    "promise",
    "credit_note",
    "milestone",
    "task",
    "invoice_request",
]


def _one_report_output(args: Any) -> None:
    if sum(bool(x) for x in (args.json, args.csv, args.html)) > 1:
        raise click.UsageError("--json, --csv and --html: choose one")


def build_cli() -> click.Group:
    """The ``arflow`` command (click): every command of docs/cli.md."""
    group = click.Group(
        "arflow",
        help="Accounts receivable from a shell: the commands of docs/cli.md, each a few calls "
        "of the public API.",
        context_settings=_CONTEXT,
        params=[
            _flag("--debug", help="on an error, raise it with its traceback"),
        ],
    )
    group = click.version_option(__version__, prog_name="arflow", message="%(prog)s %(version)s")(
        group
    )

    def json_flag(text: str = _JSON_HELP) -> click.Option:
        return _flag("--json", help=text)

    def as_of_required() -> click.Option:
        return _opt("--as-of", type=DATE, required=True, help="YYYY-MM-DD or today")

    add = group.add_command
    add(
        _make(
            "init",
            cmd_init,
            "create an empty book (the SQLite file --db names)",
            [_db(), json_flag()],
        )
    )
    add(
        _make(
            "demo",
            cmd_demo,
            "play a sample book's days, tell what arflow did, write the HTML report",
            [
                _db(),
                _opt("--as-of", type=DATE, default=date(2026, 11, 23), help="YYYY-MM-DD or today"),
                _opt("--days", type=int, default=None, help="how many days to play (default 60)"),
                _opt("--report-dir", default=None, help="where the HTML report goes"),
                _rules("rule files or folders"),
                _flag(*_VERBOSE, help="show keys and skips"),
            ],
        )
    )
    add(
        _make(
            "show",
            cmd_show,
            "show a customer (balances, open items) or any object",
            [
                _db(),
                _arg("kind", type=click.Choice(_KINDS)),
                _arg("id"),
                _flag("--audit", help="also print the audit trail"),
                json_flag(),
            ],
        )
    )
    add(
        _make(
            "where",
            cmd_where,
            "where an invoice, order or contract is stuck, since when, who owns it",
            [
                _db(),
                _arg(
                    "kind",
                    type=click.Choice(
                        ["invoice", "order", "contract", "invoice_request", "receivable"]
                    ),
                ),
                _arg("id"),
                _opt(
                    "--as-of", type=DATE, default=None, help="YYYY-MM-DD or today (default: today)"
                ),
                json_flag("print the answer as JSON"),
            ],
        )
    )
    first_run = _flag("--first-run", help="count every past step (catch-up policy applies)")
    add(
        _make(
            "plan",
            cmd_plan,
            "what the rules decide for a date (a dry run: nothing recorded)",
            [*_engine_params(), as_of_required(), first_run, json_flag()],
        )
    )
    add(
        _make(
            "run",
            cmd_run,
            "decide and record a date; running it again adds nothing",
            [
                *_engine_params(),
                as_of_required(),
                _flag("--first-run", help="count every past step (catch-up policy applies)"),
                json_flag(),
                _opt(
                    "--max-messages",
                    type=int,
                    default=DEFAULT_MAX_MESSAGES,
                    help="stop, unless --yes, when the run would queue more messages than "
                    f"this (a first run, a catch-up; default {DEFAULT_MAX_MESSAGES})",
                ),
                _flag("--yes", help="queue them however many they are"),
                _opt(
                    "--workers",
                    type=POSITIVE,
                    default=1,
                    help="processes to plan and render in, by slices of the customers (a "
                    "large day on a machine with cores to spare; SQLite file or PostgreSQL only)",
                ),
                _opt(
                    "--celery",
                    metavar="BROKER_URL",
                    default=None,
                    help="run the day on Celery workers (redis://..., amqp://...), in "
                    "--shards tasks over a PostgreSQL book (docs/distributed.md)",
                ),
                _opt(
                    "--shards",
                    type=POSITIVE,
                    default=None,
                    help="with --celery: tasks the day is split into, by customer (default 8)",
                ),
                _opt(
                    "--queue",
                    default=None,
                    help="with --celery: the queue the workers read (default arflow.runs)",
                ),
                _opt(
                    "--timeout",
                    type=POSITIVE,
                    default=3600,
                    help="with --celery: seconds to wait for the shards (default 3600)",
                ),
            ],
            check=_celery_options,
        )
    )
    add(
        _make(
            "worker",
            cmd_worker,
            "a Celery worker for distributed runs (arflow run --celery; docs/distributed.md)",
            [
                _db(),
                _rules(),
                _opt(
                    "--celery",
                    metavar="BROKER_URL",
                    default=None,
                    help="the broker (default $ARFLOW_CELERY_BROKER)",
                ),
                _opt("--queue", default=None, help="the queue to read (default arflow.runs)"),
                _opt(
                    "--concurrency",
                    type=POSITIVE,
                    default=None,
                    help="worker processes (default: one per core)",
                ),
            ],
        )
    )
    add(
        _make(
            "tasks",
            cmd_tasks,
            "an inbox of tracked tasks; complete or cancel one",
            [
                *_engine_params(),
                _arg(
                    "action",
                    required=False,
                    default="list",
                    type=click.Choice(["list", "done", "cancel"]),
                ),
                _arg("task_id", required=False, default=None),
                _opt("--for", "who", help="list: a person id or a role"),
                _opt(
                    "--as-of", type=DATE, default=None, help="YYYY-MM-DD or today (default today)"
                ),
                _opt("--as", "actor", help="done, cancel: who you are (a person id)"),
                _opt(
                    "--outcome",
                    help="done: how it went (a call: reached, no_answer, wrong_contact, ...)",
                ),
                _opt("--note", help="done: a note kept with the outcome"),
                _opt("--reason", help="why (kept in the audit trail)"),
                json_flag("list: machine-readable output"),
            ],
        )
    )
    add(
        _make(
            "explain",
            cmd_explain,
            "why a recorded decision was made, or the decisions behind a message",
            [*_engine_params(), _arg("key"), json_flag("accepted: the answer is JSON anyway")],
        )
    )
    add(
        _make(
            "proposal",
            cmd_proposal,
            "review a held run: show, edit, drop, hold, release (docs/review.md)",
            [
                *_engine_params(),
                _arg("action", type=click.Choice(["show", "edit", "drop", "hold", "release"])),
                _arg("keys", nargs=-1),
                _opt("--as", "as_", help="the reviewing person's id (all but show)"),
                _opt("--customer", help="show: one customer's part"),
                json_flag("show: machine-readable output"),
                _opt("--subject", help="edit: the message's new subject"),
                _opt("--text-file", help="edit: a file holding the message's new text"),
                _opt("--send-on", type=DATE, default=None, help="edit: the new send date"),
                _flag("--lift", help="hold: let the customer go again"),
            ],
        )
    )
    add(
        _make(
            "simulate",
            cmd_simulate,
            "run day by day on a copy of the book",
            [
                *_engine_params(),
                _opt("--from", "date_from", type=DATE, required=True),
                _opt("--to", "date_to", type=DATE, required=True),
                _opt(
                    "--events",
                    help="hypothetical events, one JSON event a line, entered on their day",
                ),
                json_flag(),
            ],
        )
    )
    add(
        _make(
            "process",
            cmd_process,
            "declared processes: draw one, or show an instance (docs/workflows.md)",
            [
                _db(),
                _arg("action", type=click.Choice(["diagram", "show"])),
                _arg("name"),
                _rules("rule files or folders (default: shipped)"),
            ],
        )
    )
    add(
        _make(
            "lint",
            cmd_lint,
            "check rule files: errors with file:line, and warnings",
            [
                _arg("paths", nargs=-1),
                json_flag(),
                _opt(
                    "--db",
                    default=None,
                    help="also check the people directory of this book: a person a rule "
                    "reaches on a channel they have no address for (wecom, dingtalk, email, sms)",
                ),
            ],
        )
    )
    add(
        _make(
            "schema",
            cmd_schema,
            "print the JSON Schema of rule files, for editors",
            [_opt("--out", metavar="FILE", help="write it to FILE instead of printing it")],
        )
    )
    add(
        _make(
            "dispatch",
            cmd_dispatch,
            "deliver the outbox through adapters named by URL or in the config file",
            [
                _db(),
                _opt("--email", help="smtp://user:pass@host:587?starttls=1&from=ar@example.com"),
                _opt("--sms", help="sms+https://gateway/send?profile=generic"),
                _opt("--task", help="celery+redis://...?task=..., rq+redis://...?func=..."),
                _opt("--webhook", help="webhook+https://host/path?secret_env=NAME"),
                _opt(
                    "--wecom",
                    help="wecom+https://qyapi.weixin.qq.com?corpid=...&corpsecret_env=NAME&agentid=...",
                ),
                _opt(
                    "--dingtalk",
                    help="dingtalk+https://oapi.dingtalk.com?appkey=...&appsecret_env=NAME&agent_id=...",
                ),
                _opt("--batch", type=POSITIVE, default=50, help="messages claimed at a time"),
                _opt("--max-attempts", type=POSITIVE, default=8, help="then a dead letter"),
                _opt(
                    "--lease",
                    type=float,
                    default=300.0,
                    help="seconds a claim holds; a crashed dispatcher's claims are taken over after it",
                ),
                _opt("--rate", multiple=True, help="CHANNEL=PER_SECOND, e.g. sms=5"),
                _opt(
                    "--rate-redis",
                    help="redis://...: the --rate limits shared by every dispatcher on this Redis",
                ),
                _flag("--forever", help="keep polling when idle"),
                _opt("--poll", type=float, default=2.0, help="seconds between polls when idle"),
                json_flag(),
            ],
        )
    )
    add(
        _make(
            "outbox",
            cmd_outbox,
            "list, show, inspect and retry the outbox",
            [
                _db(),
                _arg("action", type=click.Choice(["list", "dead", "retry", "show"])),
                _arg("keys", nargs=-1),
                _flag("--all", help="retry: every dead letter"),
                _opt(
                    "--status",
                    type=click.Choice(["pending", "sending", "sent", "dead"]),
                    default=None,
                ),
                _opt("--limit", type=POSITIVE, default=50),
                _flag(*_VERBOSE),
                json_flag(),
            ],
        )
    )
    add(
        _make(
            "report",
            cmd_report,
            "the figures as of a date: a table, --json, --csv DIR or --html FILE",
            [
                _db(),
                as_of_required(),
                _rules(
                    "rule files or folders, for targets such as the DSO target (default: the "
                    "shipped default pack); may repeat"
                ),
                json_flag("every figure as JSON on stdout"),
                _opt("--csv", metavar="DIR", help="every figure as CSV files, one per family"),
                _opt("--html", metavar="FILE", help="one self-contained HTML dashboard"),
                _opt(
                    "--locale",
                    type=click.Choice(["en", "zh_CN"]),
                    default="en",
                    help="labels (default en)",
                ),
            ],
            check=_one_report_output,
        )
    )
    add(
        _make(
            "import",
            cmd_import,
            "import customers, contracts, invoices, payments",
            [_db(), _arg("paths", nargs=-1, required=True), json_flag()],
        )
    )
    add(
        _make(
            "db",
            cmd_db,
            "arflow's own tables: upgrade them, print their schema version, or check it",
            [
                _db(),
                _arg("action", type=click.Choice(["upgrade", "version", "check"])),
                json_flag(),
            ],
        )
    )
    add(
        _make(
            "decisions",
            cmd_decisions,
            "list the recorded decisions",
            [
                _db(),
                _arg("action", required=False, default="list", type=click.Choice(["list"])),
                _opt("--customer", help="one customer's decisions"),
                _opt(
                    "--status",
                    type=click.Choice(["planned", "held", "skipped", "dropped", "released"]),
                    default=None,
                ),
                _opt("--as-of", type=DATE, default=None, help="decisions of one run date"),
                json_flag(),
            ],
        )
    )
    return group


#: The exit code of each error class; an error takes the code of the first class in its
#: MRO found here (docs/cli.md has the table, and a test holds the two equal).
EXIT_CODES: dict[type[BaseException], int] = {
    errors.RuleLoadError: 1,
    errors.ExpressionError: 1,
    errors.CalendarError: 1,
    errors.TemplateError: 1,
    errors.UnsupportedForDurable: 1,
    errors.UnknownObject: 3,
    errors.ValidationError: 4,
    errors.ImportRejected: 4,
    errors.DuplicateObject: 4,
    errors.CurrencyMismatch: 4,
    errors.InvalidAmount: 4,
    errors.OverAllocation: 4,
    errors.ClosedItem: 4,
    errors.IllegalTransition: 4,
    errors.NotAuthorized: 4,
    errors.NotTaskOwner: 4,
    errors.InvalidDates: 4,
    errors.StoreError: 5,
    errors.DeliveryError: 6,
    errors.SignatureError: 6,
    errors.WorkerFailed: 6,
    errors.DurableError: 6,
    errors.ArflowError: 7,
}
#: A usage error (click's own code), Ctrl-C, and a closed output pipe.
EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE = 2, 130, 141
#: Input refused (a file the command reads, a run too large to go without ``--yes``).
EXIT_REFUSED = 4


def exit_code(exc: BaseException) -> int:
    """The exit code for an error that ends a command (:data:`EXIT_CODES`)."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_CODES[errors.ArflowError]


def _guarded(func: Any, args: Any) -> int:
    """Run a command; an error ends it with one line on standard error and the exit code of
    docs/cli.md (``args.debug``: raised instead, traceback and all)."""
    debug = bool(args.debug)
    try:
        no_book = (args.command == "lint" and args.db is None) or (
            args.command == "process" and args.action == "diagram"
        )
        if "db" in vars(args) and not no_book:
            schema = getattr(args, "db_schema", None)
            args.db = db_url(args.db, create=args.command in CREATES_BOOK, schema=schema)
        return int(func(args))
    except BrokenPipeError:
        # The reader (``arflow demo | head``) went away: stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE
    except KeyboardInterrupt:
        if debug:
            raise
        _say("arflow: interrupted")
        return EXIT_INTERRUPTED
    except ArflowError as exc:
        if debug:
            raise
        _say(f"arflow: {exc}")
        return exit_code(exc)
    except OSError as exc:  # a file named on the command line: missing, a folder, unreadable
        if debug:
            raise
        _say(f"arflow: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return EXIT_REFUSED
    except Exception as exc:  # a bug: one line, and --debug for the traceback
        if debug:
            raise
        _say(
            f"arflow: unexpected {type(exc).__name__}: {exc} (run again with --debug for the "
            "traceback)"
        )
        return EXIT_CODES[errors.ArflowError]


def _say(line: str) -> None:
    """One line on standard error: red when it is a terminal (and ``$NO_COLOR`` is unset)."""
    if sys.stderr.isatty() and not os.environ.get("NO_COLOR"):
        line = click.style(line, fg="red", bold=True)
    print(line, file=sys.stderr)


#: The ``arflow`` command as a click group (``arflow.cli.cli``: for click's ``CliRunner``).
cli = build_cli()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (docs/cli.md). A usage error prints the usage
    and raises ``SystemExit(2)``, as the shell command exits."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = cli.main(args=words, prog_name="arflow", standalone_mode=False)
    except click.UsageError as exc:
        exc.show()
        raise SystemExit(EXIT_USAGE) from None
    except click.Abort:
        if "--debug" in words:
            raise
        _say("arflow: interrupted")
        return EXIT_INTERRUPTED
    return int(rv or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
