"""Hostile rule files: the loader's limits at their edges, and a fuzz of the loader.

Whatever bytes a rule file holds, loading it either gives a pack or raises
:class:`RuleLoadError` whose every problem names the file and a line in it, within a
bounded time: never a traceback from YAML, pydantic, ``int()`` or ``Decimal``, never a
hang. The corpus in ``tests/rule_corpus`` pins one exact error per hostile case; this
file checks the limits around them and throws random files at the loader.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arflow.errors import ArflowError
from arflow.rules import schema
from arflow.rules.lint import lint
from arflow.rules.loader import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_VALUES,
    RuleLoadError,
    load_pack,
)

HERE = Path(__file__).parent
DEFAULT = HERE.parent / "rules" / "default"
TEMPLATES = frozenset(p.name.split(".", 1)[0] for p in (DEFAULT / "templates").iterdir())
#: CPU seconds per file: not a speed figure (bench/ has those) but a guard against inputs that
#: blow up (an alias bomb, a condition that explodes when compiled), which would take minutes
#: or hours. CPU time, not the clock: a loaded machine must not make a sound file fail.
BOUND = 20.0


def _load(path: Path) -> None:
    """Load ``path`` as a pack and check the contract: a pack, or problems at file:line."""
    text = path.read_bytes()
    started = time.process_time()
    try:
        pack = load_pack(path, templates=TEMPLATES)
    except RuleLoadError as exc:
        assert isinstance(exc, ArflowError)
        assert exc.problems
        last = text.count(b"\n") + text.count(b"\r") - text.count(b"\r\n") + 1
        for p in exc.problems:
            assert p.file == str(path), p
            assert 1 <= p.line <= last, (p, last)
            assert p.message
        assert len(str(exc)) < 50 * 1_000, "a message must not echo a whole hostile file"
    else:
        lint(pack)  # a pack that loads can be linted
    assert time.process_time() - started < BOUND


def _write(tmp: Path, content: bytes | str) -> Path:
    path = tmp / "rules.yaml"
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def _problems(tmp_path: Path, content: str) -> list[str]:
    """The problems of a file as ``line: message`` (empty when it loads)."""
    path = _write(tmp_path, content)
    try:
        load_pack(path, templates=TEMPLATES)
    except RuleLoadError as exc:
        return [f"{p.line}: {p.message}" for p in exc.problems]
    return []


# -- the limits at their edges ---------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    body = "pack: x\n"
    path = _write(tmp_path, body + "#" * (MAX_FILE_BYTES - len(body)) + "\n")
    started = time.process_time()
    with pytest.raises(RuleLoadError) as info:
        load_pack(path, templates=TEMPLATES)
    assert time.process_time() - started < BOUND
    [problem] = info.value.problems
    assert (problem.file, problem.line) == (str(path), 1)
    assert f"larger than {MAX_FILE_BYTES // 1024} KiB" in problem.message


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_rule_file_that_never_ends_is_refused_after_the_size_limit(tmp_path: Path) -> None:
    (tmp_path / "endless.yaml").symlink_to("/dev/zero")
    (tmp_path / "folder.yaml").mkdir()
    started = time.process_time()
    with pytest.raises(RuleLoadError) as info:
        load_pack(tmp_path, templates=TEMPLATES)
    assert time.process_time() - started < BOUND
    got = sorted((Path(p.file).name, p.line, p.message[:24]) for p in info.value.problems)
    assert got == [
        ("endless.yaml", 1, "the file is larger than "),
        ("folder.yaml", 1, "cannot read: Is a direct"),
    ]


def test_a_file_of_exactly_the_size_limit_is_read(tmp_path: Path) -> None:
    body = "pack: x\n"
    path = _write(tmp_path, body + "#" * (MAX_FILE_BYTES - len(body) - 1) + "\n")
    assert path.stat().st_size == MAX_FILE_BYTES
    assert load_pack(path, templates=TEMPLATES).name == "x"


def test_a_huge_file_is_refused_as_fast_as_a_small_one(tmp_path: Path) -> None:
    path = _write(tmp_path, "description: " + "x" * (20 * 1024 * 1024))
    started = time.process_time()
    with pytest.raises(RuleLoadError, match="larger than"):
        load_pack(path, templates=TEMPLATES)
    assert time.process_time() - started < BOUND


@pytest.mark.parametrize("broken", [False, True])
def test_a_file_just_under_the_size_limit_loads_or_fails_within_the_bound(
    tmp_path: Path, broken: bool
) -> None:
    """The slowest a file may be: about 1,300 rules, each with a condition to compile (or
    each with two mistakes, every one reported)."""
    fact = "customer.overdue_max_dayz" if broken else "customer.overdue_max_days"
    extra = ", x: 1" if broken else ""
    rule = "  - {{id: l{i}, when: '{fact} > {i}', template: order_lock_notice{extra}}}\n"
    text, i = "locks:\n", 0
    while len(text) < MAX_FILE_BYTES - 200:
        text += rule.format(i=i, fact=fact, extra=extra)
        i += 1
    path = _write(tmp_path, text)
    started = time.process_time()
    if broken:
        with pytest.raises(RuleLoadError) as info:
            load_pack(path, templates=TEMPLATES)
        assert len(info.value.problems) == 2 * i
    else:
        assert len(load_pack(path, templates=TEMPLATES).locks) == i
    assert time.process_time() - started < BOUND


def test_aliases_up_to_the_limit_are_read_and_one_more_is_refused(tmp_path: Path) -> None:
    def aliases(n: int) -> str:
        roles = "".join(f"  r{i}: *d\n" for i in range(n))
        return f"description: &d a@example.com\nroles:\n{roles}"

    assert _problems(tmp_path, aliases(MAX_ALIASES)) == []
    assert _problems(tmp_path, aliases(MAX_ALIASES + 1)) == [
        f"{MAX_ALIASES + 3}: more than {MAX_ALIASES} aliases (*name) in one file"
    ]


@pytest.mark.parametrize("extra", [0, 1])
def test_nesting_up_to_the_limit_is_read_and_one_level_more_is_refused(
    tmp_path: Path, extra: int
) -> None:
    # the top mapping is level 1 and the innermost scalar counts too
    levels = MAX_DEPTH - 2 + extra  # lists inside 'description'
    text = "description: " + "[" * levels + "x" + "]" * levels + "\n"
    got = _problems(tmp_path, text)
    deep = [p for p in got if "nested more than" in p]
    assert deep == ([f"1: nested more than {MAX_DEPTH} levels deep"] if extra else [])
    assert got  # description must be text: an error, but not the depth one


def test_expansion_up_to_the_limit_is_read_and_beyond_it_is_refused(tmp_path: Path) -> None:
    base = "a: &a [" + ", ".join(["1"] * 98) + "]\n"  # 99 values: the list and its items
    many = base + "c: &c [" + ", ".join(["*a"] * 40) + "]\n"  # 3,961 values
    fits = many + "d: [" + ", ".join(["*c"] * 4) + "]\n"  # 19,913 in the whole file
    assert not any("values once aliases" in p for p in _problems(tmp_path, fits))
    beyond = many + "d: [" + ", ".join(["*c"] * 6) + "]\n"  # 23,767 in the list d alone
    assert _problems(tmp_path, beyond) == [
        f"3: more than {MAX_VALUES} values in one file (an alias counts as every value it repeats)"
    ]


def test_a_int_literal_past_pythons_int_string_limit_is_a_problem_not_a_valueerror(
    tmp_path: Path,
) -> None:
    limit = sys.get_int_max_str_digits()
    assert limit and limit < 5_000
    got = _problems(tmp_path, f"settings:\n  promise_grace_days: {'7' * 5_000}\n")
    assert len(got) == 1 and got[0].startswith("2: the number '7777")


def test_arflow_lint_refuses_an_alias_bomb_with_its_line_and_no_traceback(tmp_path: Path) -> None:
    bomb = (HERE / "rule_corpus" / "yaml_alias_bomb.yaml").read_bytes()
    assert len(bomb) < 600 and bomb.count(b"\n") > 9
    path = _write(tmp_path, bomb)
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    done = subprocess.run(  # the timeout bounds it: an interpreter start and a refusal
        [sys.executable, "-m", "arflow", "lint", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert f"{path}:12: more than {MAX_ALIASES} aliases" in done.stdout
    assert "Traceback" not in done.stderr


def test_arflow_lint_refuses_an_offset_past_the_calendar_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from arflow.cli import main

    path = _write(
        tmp_path,
        "ladders:\n  - id: x\n    steps:\n      - id: s\n        at: due+999999d\n"
        "        level: 0\n        actions: [{type: risk_flag, level: high}]\n",
    )
    assert main(["lint", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:5: [x/s] bad 'at' 'due+999999d': expected at most 36600d" in out


def test_a_problem_shows_at_most_500_characters_of_a_long_value(tmp_path: Path) -> None:
    who = "r" * 9_000
    path = _write(
        tmp_path,
        f"locks:\n  - id: l1\n    when: 'true'\n    notify: [{who}]\n"
        "    template: order_lock_notice\n",
    )
    with pytest.raises(RuleLoadError) as info:
        load_pack(path, templates=TEMPLATES)
    [problem] = info.value.problems
    assert problem.line == 4 and who in problem.message  # the problem keeps it all
    assert len(str(problem)) < len(str(path)) + 530  # its text shows the start


@pytest.mark.parametrize(
    "name",
    [
        "yaml_alias_bomb",
        "yaml_alias_bomb_few_aliases",
        "yaml_alias_self_reference",
        "yaml_deep_flow_nesting",
        "yaml_deep_block_nesting",
        "yaml_too_many_aliases",
        "yaml_nul_byte",
        "tab_indented",
    ],
)
def test_without_libyaml_the_python_loader_gives_the_same_problems(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyYAML built without libyaml composes in Python: the limits hold there too.

    (Messages for YAML syntax errors are libyaml's or PyYAML's own words and may differ.)"""
    path = HERE / "rule_corpus" / f"{name}.yaml"

    def problems() -> list[tuple[int, str]]:
        with pytest.raises(RuleLoadError) as info:
            load_pack(path, templates=TEMPLATES)
        return [(p.line, p.message) for p in info.value.problems]

    with_libyaml = problems()
    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    started = time.process_time()
    assert problems() == with_libyaml
    assert time.process_time() - started < BOUND


def test_the_limits_the_docs_state_are_the_loaders() -> None:
    from arflow.calendar import MAX_SHIFT
    from arflow.rules.loader import MAX_DIGITS, MAX_TEXT

    doc = (HERE.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    assert f"| file size (`MAX_FILE_BYTES`) | {MAX_FILE_BYTES // 1024} KiB |" in doc
    assert f"| nesting (`MAX_DEPTH`) | {MAX_DEPTH} levels" in doc
    assert f"| aliases (`MAX_ALIASES`) | {MAX_ALIASES} uses" in doc
    assert f"| values (`MAX_VALUES`) | {MAX_VALUES:,} per file" in doc
    assert f"| one value (`MAX_TEXT`) | {MAX_TEXT:,} characters" in doc
    assert f"| numbers (`MAX_DIGITS`) | {MAX_DIGITS} significant digits" in doc
    shifts = ", ".join(f"{MAX_SHIFT[u]}{u}" for u in ("d", "bd", "w"))
    assert f"at most {shifts} or {MAX_SHIFT['m']}m" in doc


# -- descriptions: every rule kind takes one -------------------------------------------------------


def test_approval_tiers_and_milestone_rules_take_a_description(tmp_path: Path) -> None:
    text = """\
approvals:
  - id: big-order
    description: An order over 1,000,000 needs the finance manager
    when: "order.amount > 1000000"
    approvers: [finance_manager]
    template: approval_request
milestones:
  - id: ask-invoice
    description: Ask finance to invoice a completed milestone
    actions: [{type: request_invoice, to: finance, template: invoice_request}]
roles:
  finance: finance@example.com
  finance_manager: fm@example.com
"""
    pack = load_pack(_write(tmp_path, text), templates=TEMPLATES)
    [tier] = pack.approvals
    assert tier.spec.description == "An order over 1,000,000 needs the finance manager"
    [ms] = pack.milestones
    assert ms.spec.description == "Ask finance to invoice a completed milestone"
    assert schema.ApprovalTier.model_fields["description"].default == ""


# -- the fuzz --------------------------------------------------------------------------------------

FIELDS = sorted(
    {
        name
        for obj in vars(schema).values()
        if isinstance(obj, type) and issubclass(obj, schema._Spec) and obj is not schema._Spec
        for name in obj.model_fields
    }
)
HOSTILE_TEXT = [
    "due+999999d",
    "every 0d from due",
    "every 7d from due until due+999999d",
    "customer.overdue_max_days > １００",
    "balance / 0 < 0.5",
    "(" * 200 + "true" + ")" * 200,
    "balance > " + "9" * 60,
    "__import__('os').system('x')",
    "file:///etc/passwd",
    "https://example.com/hook",
    "a@example.com\nBcc: b@example.com",
    "2026-02-30",
    "mon-fri 09:00-18:00",
    "customer",
    "finance",
    "reminder_due",
    "email",
    "A",
    "CN",
    "",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**40), 10**40),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=20),
)
structures = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), inner, max_size=5),
    ),
    max_leaves=25,
)
rule_files = st.dictionaries(st.sampled_from(FIELDS), structures, max_size=4)


def _default_data() -> list[Any]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(DEFAULT.glob("*.yaml"))]


DEFAULT_DATA = _default_data()


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def near_valid_files(draw: st.DrawFn) -> Any:
    """A file of the default pack with one to three values replaced by hostile ones."""
    import copy

    data = copy.deepcopy(draw(st.sampled_from(DEFAULT_DATA)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)[1:]))
        node = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = draw(structures)
    return data


YAMLISH = [
    "- ",
    ": ",
    "\n",
    "  ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: ",
    "!!binary ",
    "!!python/object/apply:os.system ",
    "!!set ",
    "!!bool ",
    "!!int ",
    "!!float ",
    "!!timestamp ",
    "!!null ",
    "!!str ",
    "? ",
    "|\n",
    ">-\n",
    "'",
    '"',
    "#",
    "---\n",
    "\t",
    "\x00",
    "2026-02-30",
    "9" * 50,
    "1e999999999",
    "true",
    "null",
    "~",
    ".inf",
    "0x",
    *FIELDS,
]
yamlish_text = st.lists(st.sampled_from(YAMLISH), max_size=60).map("".join)

FUZZ = settings(
    max_examples=100,
    deadline=None,  # the bound is asserted per example in _load
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_load_or_give_problems_at_file_and_line(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _load(_write(Path(tmp), content))


@FUZZ
@given(yamlish_text)
def test_yamlish_token_soup_loads_or_gives_problems_at_file_and_line(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _load(_write(Path(tmp), text))


@FUZZ
@given(rule_files, st.booleans())
def test_random_structures_of_schema_keys_load_or_give_problems(data: Any, flow: bool) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, default_flow_style=flow, sort_keys=False)
    with tempfile.TemporaryDirectory() as tmp:
        _load(_write(Path(tmp), text))


@FUZZ
@given(near_valid_files())
def test_the_default_pack_with_hostile_values_loads_or_gives_problems(data: Any) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    with tempfile.TemporaryDirectory() as tmp:
        _load(_write(Path(tmp), text))
