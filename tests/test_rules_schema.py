"""``arflow schema``: the JSON Schema of rule files, generated from the pydantic models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from arflow.cli import main
from arflow.errors import Problem
from arflow.rules._yaml import _read
from arflow.rules.loader import RuleLoadError, load_pack
from arflow.rules.schema import _ONE_OR_MANY, RuleFile, json_schema

ROOT = Path(__file__).resolve().parent.parent


def _data(path: Path) -> Any:
    """A rule file's data as the loader reads it (dates stay text, decimals exact)."""
    problems: list[Problem] = []
    got = _read(path, problems)
    assert got is not None and not problems, problems
    return got[0]


def _validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_shipped_pack_file_validates() -> None:
    validator = _validator()
    files = sorted((ROOT / "rules").glob("*/*.yaml"))
    assert {f.name for f in files} >= {"dunning.yaml", "locks.yaml", "credit.yaml", "pack.yaml"}
    for f in files:
        errs = [e.message for e in validator.iter_errors(_data(f))]
        assert errs == [], f"{f}: {errs}"


BROKEN = {
    "unknown field": "ladders:\n- id: l\n  steps:\n  - {id: s, at: due, level: 1, colour: red,"
    " actions: [{type: email, to: customer, template: t}]}\n",
    "unknown action type": "alerts:\n- id: a\n  when: 'true'\n  actions: [{type: fax}]\n",
    "email without template": "alerts:\n- id: a\n  when: 'true'\n"
    "  actions: [{type: email, to: customer}]\n",
    "level not a number": "ladders:\n- id: l\n  steps:\n  - {id: s, at: due, level: high,"
    " actions: [{type: task, to: customer, template: t}]}\n",
    "lock without when": "locks:\n- id: k\n  description: no condition\n",
    "late_payments without count": "patterns:\n- id: p\n  match: late_payments\n"
    "  actions: [{type: task, to: salesperson, template: t}]\n",
    "bad id": "locks:\n- {id: 'two words', when: 'true'}\n",
    "unknown section": "ladder: []\n",
    "grade name with spaces": "scoring:\n  factors: [{fact: x, points: {a: 1}}]\n"
    "  grades: [{grade: 'A A', min_score: 0, credit_limit: 1, payment_terms_days: 30}]\n",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_files_are_rejected_by_schema_and_loader(name: str, tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text(BROKEN[name], encoding="utf-8")
    assert list(_validator().iter_errors(_data(f))), f"{name}: the schema took it"
    with pytest.raises(RuleLoadError):
        load_pack(f, templates=["t"])


def test_what_the_models_take_the_schema_takes(tmp_path: Path) -> None:
    # one text for a list, a grade written as a number, a decimal as text
    text = (
        "locks:\n- {id: k, when: 'true', notify: salesperson, template: t}\n"
        "approvals:\n- {id: big, when: 'true', approvers: finance_manager, template: t}\n"
        "scoring:\n  factors: [{fact: x, points: {a: '1.5'}}]\n"
        "  grades: [{grade: 1, min_score: 0, credit_limit: 1000, payment_terms_days: 30}]\n"
        "ladders:\n- id: l\n  exempt_grades: [1]\n  steps:\n"
        "  - {id: s, at: due, level: 1, actions: [{type: email, to: customer, template: t}]}\n"
    )
    f = tmp_path / "ok.yaml"
    f.write_text(text, encoding="utf-8")
    data = _data(f)
    RuleFile.model_validate(data)
    assert list(_validator().iter_errors(data)) == []


def test_one_or_many_table_matches_the_models() -> None:
    # every list-of-text field that takes a lone text is marked so in the schema
    found: dict[str, set[str]] = {}
    for model in (RuleFile, *_models(RuleFile)):
        for name, field in model.model_fields.items():
            if "tuple[str, ...]" not in str(field.annotation):
                continue
            try:
                model.model_validate(_minimal(model, name))
            except Exception:
                continue
            found.setdefault(model.__name__, set()).add(name)
    assert found == {k: set(v) for k, v in _ONE_OR_MANY.items()}


def _models(root: type) -> set[type]:
    from pydantic import BaseModel

    out: set[type] = set()
    todo = [root]
    while todo:
        m = todo.pop()
        for f in m.model_fields.values():  # type: ignore[attr-defined]
            for t in _types(f.annotation):
                if isinstance(t, type) and issubclass(t, BaseModel) and t not in out:
                    out.add(t)
                    todo.append(t)
    return out


def _types(annotation: Any) -> list[Any]:
    from typing import get_args

    args = get_args(annotation)
    return [annotation, *[x for a in args for x in _types(a)]]


_MINIMAL: dict[str, dict[str, Any]] = {
    "Action": {"type": "task", "to": "x", "template": "t"},
    "Lock": {"id": "k", "when": "true", "template": "t"},
    "ApprovalTier": {"id": "a", "approvers": "x", "template": "t"},
    "Review": {},
    "Scoring": {
        "factors": [{"fact": "x", "points": {"a": 1}}],
        "grades": [{"grade": "A", "min_score": 0, "credit_limit": 1, "payment_terms_days": 1}],
    },
}


def _minimal(model: type, field: str) -> dict[str, Any]:
    base = dict(_MINIMAL.get(model.__name__, {"id": "x", "when": "true", "fact": "x"}))
    base[field] = "after" if field == "after" else "x"
    if model.__name__ == "Review" and field == "after":
        base[field] = "broken_promise"
    return base


def test_schema_is_deterministic_and_cli_prints_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert json.dumps(json_schema(), sort_keys=True) == json.dumps(json_schema(), sort_keys=True)
    assert main(["schema"]) == 0
    first = capsys.readouterr().out
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == first
    assert json.loads(first) == json_schema()
    out = tmp_path / "arflow-rules.schema.json"
    assert main(["schema", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == first
    assert main(["schema", "--out", str(tmp_path / "missing" / "x.json")]) == 4
    assert "does not exist" in capsys.readouterr().err


def test_schema_is_the_same_in_another_process() -> None:
    import os

    run = [sys.executable, "-m", "arflow", "schema"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env_out = [
        subprocess.run(run, capture_output=True, text=True, check=True, env=env).stdout
        for _ in "ab"
    ]
    assert env_out[0] == env_out[1] and json.loads(env_out[0])["title"] == "arflow rule file"


def test_the_docs_snippets_are_valid(tmp_path: Path) -> None:
    import re

    doc = (ROOT / "docs" / "rule-authoring.md").read_text(encoding="utf-8")
    section = doc.split("## Editor support", 1)[1].split("\n## ", 1)[0]
    (settings,) = re.findall(r"^```json\n(.*?)^```", section, re.S | re.M)
    schemas = json.loads(settings)["yaml.schemas"]
    assert list(schemas) == ["./arflow-rules.schema.json"]
    (example,) = re.findall(r"^```yaml\n(.*?)^```", section, re.S | re.M)
    assert example.startswith("# yaml-language-server: $schema=")
    f = tmp_path / "dunning.yaml"
    f.write_text(example, encoding="utf-8")
    assert list(_validator().iter_errors(_data(f))) == []
    load_pack(f, templates=["reminder"])


def _readable(path: Path) -> Any | None:
    problems: list[Problem] = []
    got = _read(path, problems)
    return None if got is None or problems else got[0]


def test_the_schema_never_refuses_what_the_models_take() -> None:
    # an editor must not flag a file the loader's schema step accepts: over the hostile
    # corpus (each file broken in one way, most after the schema step) and the examples
    validator = _validator()
    files = sorted((ROOT / "tests" / "rule_corpus").rglob("*.yaml"))
    files += sorted((ROOT / "examples").rglob("*.yaml"))
    taken = 0
    for f in files:
        data = _readable(f)
        if data is None:
            continue
        try:
            RuleFile.model_validate(data)
        except Exception:
            continue
        taken += 1
        errs = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
        assert errs == [], f"{f}: {errs}"
    assert taken >= 20


#: What the models refuse and a JSON Schema cannot say: numbers YAML reads as floats
#: (.inf, .nan, 1:30), digits outside 0-9, too many digits, a bidirectional control in an
#: address, a port out of range.
BEYOND_THE_SCHEMA = {
    "address_bidi_override.yaml",
    "literal_float_inf.yaml",
    "literal_float_nan.yaml",
    "literal_float_sexagesimal.yaml",
    "literal_fullwidth_min_balance.yaml",
    "literal_quoted_40_digit_fee.yaml",
    "webhook_url_bad_port.yaml",
}


def test_the_schema_refuses_what_the_models_refuse_but_a_few() -> None:
    validator = _validator()
    missed = set()
    refused = 0
    for f in sorted((ROOT / "tests" / "rule_corpus").rglob("*.yaml")):
        data = _readable(f)
        if data is None:
            continue
        try:
            RuleFile.model_validate(data)
        except Exception:
            refused += 1
            if not list(validator.iter_errors(data)):
                missed.add(f.name)
    assert refused >= 50
    assert missed == BEYOND_THE_SCHEMA
