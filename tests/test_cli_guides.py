"""A command line that guides (docs/cli.md): ``--version``, one-line errors with their exit
codes and tracebacks only with ``--debug``, ``--db`` as a URL or a path, ``arflow init``,
``--as-of today``, ``decisions list``, ``outbox show``, ``explain`` by message key,
``--json``, and a run too large to go without ``--yes``."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

import arflow
from arflow import Ledger
from arflow.cli import cli, main
from arflow.demo import sample_events
from arflow.testing import BookBuilder

Capture = pytest.CaptureFixture[str]


def _out(capsys: Capture) -> str:
    return capsys.readouterr().out


def _demo(tmp_path: Path, capsys: Capture) -> str:
    db = str(tmp_path / "demo.db")  # a plain path: SQLite at that path
    assert main(["demo", "--db", db]) == 0
    capsys.readouterr()
    return db


def test_version(capsys: Capture) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"arflow {arflow.__version__}\n"
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"arflow {arflow.__version__}\n"


def test_the_click_runner_sees_the_documented_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "book.db")
    missing = runner.invoke(cli, ["decisions", "list", "--db", db])
    assert missing.exit_code == 4 and "arflow init" in missing.stderr  # input refused
    assert missing.stdout == ""
    made = runner.invoke(cli, ["init", "--db", db])
    assert made.exit_code == 0 and "ready (0 event(s) in it)" in made.stdout
    demo = runner.invoke(cli, ["demo", "--db", db])
    assert demo.exit_code == 0 and "60 days played one by one" in demo.stdout
    unknown = runner.invoke(cli, ["show", "--db", db, "customer", "NOPE"])
    assert unknown.exit_code == 3 and unknown.stderr == "arflow: unknown customer 'NOPE'\n"
    usage = runner.invoke(cli, ["run", "--db", db, "--as-of", "2026-11-31"])
    assert usage.exit_code == 2 and "'2026-11-31' is not a date" in usage.stderr
    nothing = runner.invoke(cli, ["no-such-command"])
    assert nothing.exit_code == 2 and "No such command" in nothing.stderr
    listed = runner.invoke(cli, ["decisions", "--db", db, "--customer", "C003", "--json"])
    assert listed.exit_code == 0
    assert {d["customer_id"] for d in json.loads(listed.stdout)} == {"C003"}
    helped = runner.invoke(cli, ["run", "-h"])
    assert helped.exit_code == 0 and "--max-messages" in helped.stdout


def test_a_missing_book_is_refused_until_init_makes_it(
    tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARFLOW_DB", raising=False)
    book = tmp_path / "typo.db"
    for db in (str(book), f"sqlite:///{book}"):
        assert main(["run", "--db", db, "--as-of", "2026-11-23"]) == 4  # input refused
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("arflow: --db ")
        assert "arflow init" in err
    assert not book.exists()  # nothing was created
    assert main(["init", "--db", str(tmp_path / "no-folder" / "x.db")]) == 4
    assert "does not exist" in capsys.readouterr().err
    assert main(["init", "--db", str(book)]) == 0
    assert "ready (0 event(s) in it)" in _out(capsys)
    assert book.exists()
    assert main(["init", "--db", str(book), "--json"]) == 0  # again: left as it is
    assert json.loads(_out(capsys))["events"] == 0
    monkeypatch.setenv("ARFLOW_DB", str(book))  # read when --db is not given
    assert main(["decisions", "list", "--json"]) == 0
    assert json.loads(_out(capsys)) == []
    monkeypatch.setenv("ARFLOW_DB", str(tmp_path / "other.db"))
    assert main(["decisions", "list"]) == 4
    assert "other.db" in capsys.readouterr().err


def test_usage_errors_and_bad_values_say_one_line(tmp_path: Path, capsys: Capture) -> None:
    db = _demo(tmp_path, capsys)
    with pytest.raises(SystemExit) as stop:
        main(["run", "--db", db, "--as-of", "2026-11-23", "--workers", "0"])
    assert stop.value.code == 2  # the command line is misused
    assert "'0': at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["plan", "--db", db, "--as-of", "yesterday"])
    assert stop.value.code == 2
    assert "YYYY-MM-DD or today" in capsys.readouterr().err
    assert (
        main(
            ["dispatch", "--db", db, "--email", "smtp://h:25?from=ar@example.com", "--rate", "sms"]
        )
        == 4
    )
    err = capsys.readouterr().err
    assert err == "arflow: --rate 'sms': write CHANNEL=PER_SECOND, e.g. sms=5\n"


def test_debug_shows_the_error_itself(tmp_path: Path, capsys: Capture) -> None:
    db = _demo(tmp_path, capsys)
    missing = str(tmp_path / "nope.txt")
    edit = ["proposal", "edit", "K", "--db", db, "--as", "x", "--text-file", missing]
    assert main(edit) == 4  # a file the command reads is missing: one line, input refused
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No such file or directory" in err and missing in err
    with pytest.raises(FileNotFoundError):
        main([*edit, "--debug"])  # after the command
    with pytest.raises(arflow.errors.UnknownObject):
        main(["--debug", "show", "--db", db, "customer", "NOPE"])  # or before it
    assert main(["show", "--db", db, "customer", "NOPE"]) == 3


def test_ctrl_c_is_one_line_and_130(
    tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from arflow import importer

    db = tmp_path / "book.db"
    assert main(["init", "--db", str(db)]) == 0

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt  # what Ctrl-C raises in the middle of the import

    monkeypatch.setattr(importer, "import_files", interrupted)
    capsys.readouterr()
    assert main(["import", "--db", str(db), "x.csv"]) == 130
    assert capsys.readouterr().err == "arflow: interrupted\n"


def test_as_of_today(tmp_path: Path, capsys: Capture) -> None:
    db = _demo(tmp_path, capsys)
    assert main(["plan", "--db", db, "--as-of", "today", "--json"]) == 0
    assert json.loads(_out(capsys))["as_of"] == date.today().isoformat()


def test_decisions_outbox_show_and_explain_by_message_key(tmp_path: Path, capsys: Capture) -> None:
    db = _demo(tmp_path, capsys)
    assert main(["decisions", "list", "--db", db]) == 0
    out = _out(capsys)
    every = Ledger(f"sqlite:///{db}").store.decisions()
    assert out.startswith(f"{len(every)} decision(s)\n") and len(every) > 1
    assert "dunning:standard:formal-notice:INV-1002:2026-11-23" in out
    assert main(["decisions", "list", "--db", db, "--customer", "C003", "--json"]) == 0
    mine = json.loads(_out(capsys))
    assert mine and {d["customer_id"] for d in mine} == {"C003"}
    assert main(["decisions", "--db", db, "--status", "held", "--json"]) == 0
    assert json.loads(_out(capsys)) == []

    store = Ledger(f"sqlite:///{db}").store
    row = next(r for r in store.outbox() if r.channel == "email")
    body = json.loads(row.body)
    assert main(["outbox", "show", row.key, "--db", db]) == 0
    shown = _out(capsys)
    assert f"subject: {body['subject']}" in shown
    assert f"| {body['text'].splitlines()[0]}" in shown
    assert main(["outbox", "show", row.key, "--db", db, "--json"]) == 0
    assert json.loads(_out(capsys))["message"]["text"] == body["text"]
    assert main(["outbox", "show", "nope", "--db", db]) == 3
    assert main(["outbox", "list", "--db", db, "--json"]) == 0
    listed = json.loads(_out(capsys))
    assert row.key in {m["key"] for m in listed["messages"]}

    assert main(["explain", row.key, "--db", db]) == 0
    why = json.loads(_out(capsys))
    assert why["message"]["key"] == row.key
    assert [d["key"] for d in why["decisions"]] == body["decision_keys"]
    assert main(["explain", body["decision_keys"][0], "--db", db]) == 0
    assert json.loads(_out(capsys))["key"] == body["decision_keys"][0]
    assert main(["explain", "no-such-key", "--db", db]) == 3
    assert capsys.readouterr().err == "arflow: unknown decision or message 'no-such-key'\n"


def test_json_on_commands_that_print_data(tmp_path: Path, capsys: Capture) -> None:
    db = _demo(tmp_path, capsys)
    assert main(["show", "--db", db, "customer", "C003", "--json"]) == 0
    shown = json.loads(_out(capsys))
    assert shown["object"]["id"] == "C003" and shown["open_items"]
    assert main(["show", "--db", db, "receivable", "INV-2002", "--json"]) == 0
    assert json.loads(_out(capsys))["audit"]
    assert (
        main(["simulate", "--db", db, "--from", "2026-11-24", "--to", "2026-11-26", "--json"]) == 0
    )
    days = json.loads(_out(capsys))
    assert [d["as_of"] for d in days] == ["2026-11-24", "2026-11-25", "2026-11-26"]
    assert main(["lint", "--json"]) == 0
    assert json.loads(_out(capsys))["errors"] == []
    assert main(["tasks", "--db", db, "--for", "li.wei", "--json"]) == 0
    assert isinstance(json.loads(_out(capsys)), list)
    assert main(["run", "--db", db, "--as-of", "2026-11-24", "--json"]) == 0
    ran = json.loads(_out(capsys))
    assert ran["as_of"] == "2026-11-24" and ran["failed"] == 0


def test_a_run_that_would_queue_too_many_messages_asks_for_yes(
    tmp_path: Path, capsys: Capture
) -> None:
    db = tmp_path / "book.db"
    assert main(["init", "--db", str(db)]) == 0
    ledger = Ledger(f"sqlite:///{db}")
    ledger.apply_all(sample_events())
    run = ["run", "--db", str(db), "--as-of", "2026-11-23", "--first-run"]
    capsys.readouterr()
    assert main([*run, "--max-messages", "1"]) == 4  # input refused
    err = capsys.readouterr().err
    assert err.startswith("arflow: run 2026-11-23 would queue ")
    assert "--yes" in err and "review" in err and err.count("\n") == 1
    assert ledger.store.decisions() == [] and ledger.store.outbox_counts().get("pending", 0) == 0
    assert main([*run, "--max-messages", "1", "--yes"]) == 0
    assert ledger.store.decisions()
    assert main([*run]) == 0  # under the default threshold


# -- the config file: arflow.toml or [tool.arflow] ---------------------------------------------
ADAPTER_MODULE = '''
import json


class FileAdapter:
    """Appends each message it is handed to a JSON-lines file: a host's own adapter."""

    def __init__(self, path="sent.jsonl"):
        self.path = path

    def deliver(self, message):
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"key": message.key, "to": list(message.to)}) + "\\n")
        return "filed"
'''


def _pending_book(folder: Path, capsys: Capture) -> Ledger:
    """A book with the sample events and a first run recorded: messages pending."""
    assert main(["init"]) == 0  # the config's db
    ledger = Ledger(f"sqlite:///{folder / 'books' / 'ar.db'}")
    ledger.apply_all(sample_events())
    assert main(["run", "--as-of", "2026-11-23", "--first-run", "--yes"]) == 0
    capsys.readouterr()
    return ledger


def test_arflow_toml_names_the_book_and_a_custom_adapter(
    tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARFLOW_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "books").mkdir()
    (tmp_path / "host_adapters.py").write_text(ADAPTER_MODULE, encoding="utf-8")
    out = tmp_path / "mail.jsonl"
    (tmp_path / "arflow.toml").write_text(
        'db = "books/ar.db"\n\n[adapters]\n'
        f'email = {{ class = "host_adapters:FileAdapter", path = "{out}" }}\n'
        'task = "memory://"\nsms = "host_adapters:FileAdapter"\n',
        encoding="utf-8",
    )
    ledger = _pending_book(tmp_path, capsys)
    emails = [r.key for r in ledger.store.outbox(status="pending") if r.channel == "email"]
    assert emails
    assert main(["dispatch", "--json"]) == 0
    stats = json.loads(_out(capsys))
    assert stats["dead"] == 0 and stats["sent"] >= len(emails)
    filed = [json.loads(line)["key"] for line in out.read_text("utf-8").splitlines()]
    assert sorted(filed) == sorted(emails)
    assert all(ledger.store.outbox_item(k).status == "sent" for k in emails)  # type: ignore[union-attr]


def test_pyproject_tool_arflow_and_what_the_config_refuses(
    tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARFLOW_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "books").mkdir()
    (tmp_path / "host_adapters.py").write_text(ADAPTER_MODULE, encoding="utf-8")
    pyproject = tmp_path / "pyproject.toml"

    def config(text: str) -> None:
        pyproject.write_text(f'[project]\nname = "host"\n\n[tool.arflow]\n{text}', "utf-8")

    config('db = "books/ar.db"\n')
    _pending_book(tmp_path, capsys)
    assert (tmp_path / "books" / "ar.db").exists()
    for text, said in (
        ('adapters = { email = "host_adapters:Nope" }\n', "has no 'Nope'"),
        ('adapters = { email = "no_such_module:X" }\n', "cannot import 'no_such_module'"),
        ('adapters = { email = "json:dumps" }\n', "missing 1 required positional argument"),
        ('adapters = { email = "json:JSONDecoder" }\n', "no deliver(message) method"),
        ('adapters = { fax = "memory://" }\n', "unknown channel(s) fax"),
        ('adapters = { email = "nothing-here" }\n', "neither a URL nor module:Class"),
        ('adapter = { email = "memory://" }\n', "unknown key(s) adapter"),
        ("db = [\n", "not valid TOML"),
    ):
        config('db = "books/ar.db"\n' + text if not text.startswith("db") else text)
        assert main(["dispatch"]) == 4, text
        err = capsys.readouterr().err
        assert err.startswith(f"arflow: {pyproject}") and said in err and err.count("\n") == 1
    config('db = "books/ar.db"\n')
    assert main(["dispatch"]) == 4  # no adapter named anywhere
    assert "arflow.toml" in capsys.readouterr().err
    # the command line and $ARFLOW_DB come before the file
    monkeypatch.setenv("ARFLOW_DB", str(tmp_path / "elsewhere.db"))
    assert main(["decisions", "list"]) == 4
    assert "elsewhere.db" in capsys.readouterr().err
    assert main(["decisions", "list", "--db", "books/ar.db"]) == 0


def test_plan_and_run_print_counts_by_default_and_each_decision_with_v(
    tmp_path: Path, capsys: Capture
) -> None:
    """A large day is a few lines: counts by status, kind and rule; ``-v`` lists each
    decision, ``-vv`` adds the keys and the skipped decisions."""
    db = tmp_path / "book.db"
    assert main(["init", "--db", str(db)]) == 0
    book = BookBuilder(f"sqlite:///{db}")
    for i in range(12):  # twelve invoices one day overdue: twelve formal notices
        book.customer(f"C{i}", email=f"ap{i}@example.com")
        book.invoice(f"INV-{i}", f"C{i}", 1000, issued="2026-10-23", due="2026-11-22")
    capsys.readouterr()
    day = ["--db", str(db), "--as-of", "2026-11-23"]
    assert main(["plan", *day, "--json"]) == 0
    planned = json.loads(_out(capsys))["decisions"]
    assert len(planned) > 2
    assert main(["plan", *day]) == 0
    summary = _out(capsys).splitlines()
    assert summary[-1] == "  (-v lists each decision, -vv adds its key and the skipped ones)"
    counted = [line.split()[0] for line in summary[1:-1]]
    assert sum(int(n.replace(",", "")) for n in counted) == len(planned)
    assert summary[1:-1] == ["       12 planned  dunning   standard/formal-notice"]
    assert main(["plan", *day, "-v"]) == 0
    each = _out(capsys).splitlines()[1:]
    assert len(each) == len(planned) and not any(" key " in line for line in each)
    assert main(["plan", *day, "-vv"]) == 0
    keyed = _out(capsys)
    assert all(f"key {d['key']}" in keyed for d in planned)
    assert main(["run", *day]) == 0
    ran = _out(capsys).splitlines()
    assert ran[0].startswith(f"run 2026-11-23: {len(planned)} recorded")
    assert ran[1:] == summary[1:]
