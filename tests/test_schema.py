"""The JSON Schema: valid, self-contained, documented on every key, and precise in its errors."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from engine import schema as schema_module
from engine.diagnostics import Diagnostic
from engine.load import load_document
from engine.model import Document
from engine.schema import SCHEMA_DIR, policy_validator, schema_diagnostics, validator_for

SCHEMA = json.loads((SCHEMA_DIR / "policy.schema.json").read_text(encoding="utf-8"))
POLICIES = sorted(p for p in (Path(__file__).resolve().parent.parent / "policies").rglob("*.yaml")
                  if not p.name.endswith(".test.yaml"))  # test files have their own schema


def walk(node: Any, path: str = "#") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}/{index}")


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_property_and_definition_has_a_description() -> None:
    missing = []
    for path, node in walk(SCHEMA):
        if isinstance(node, dict) and path.endswith(("/properties", "/$defs")) \
                and "/if/" not in path:  # an if only tests a discriminator
            for key, sub in node.items():
                if isinstance(sub, dict) and not sub.get("description"):
                    missing.append(f"{path}/{key}")
    assert missing == []


def test_references_never_leave_the_schema() -> None:
    refs = [node["$ref"] for _, node in walk(SCHEMA) if isinstance(node, dict) and "$ref" in node]
    assert refs and all(ref.startswith("#/") for ref in refs)


def test_every_object_forbids_unknown_keys() -> None:
    open_objects = [
        path for path, node in walk(SCHEMA)
        if isinstance(node, dict) and "properties" in node and "additionalProperties" not in node
        and "/then" not in path and "/if" not in path and "/else" not in path
    ]
    assert open_objects == []


@pytest.mark.parametrize("path", POLICIES, ids=[f"{p.parent.name}/{p.name}" for p in POLICIES])
def test_shipped_policies_satisfy_the_schema(path: Path) -> None:
    document, problems = load_document(path.read_text(encoding="utf-8"), str(path))
    assert problems == [] and document is not None
    assert schema_diagnostics(document) == []


def policy_with(replace: str, by: str) -> list[tuple[str, int, int, str]]:
    path = POLICIES[0]
    text = path.read_text(encoding="utf-8")
    assert replace in text
    document, problems = load_document(text.replace(replace, by, 1), "p.yaml")
    assert document is not None, problems
    return [(d.code, d.location.line, d.location.column, d.message)
            for d in schema_diagnostics(document)]


def test_misspelt_curve_key_points_at_the_key_with_a_suggestion() -> None:
    found = policy_with("zero_at: 50%, full_at", "zero_att: 50%, full_at")
    codes = {(code, message) for code, _, _, message in found}
    assert any("unknown key 'zero_att'" in m and "did you mean 'zero_at'" in m for _, m in codes)
    unknown = next(f for f in found if "zero_att" in f[3])
    # the key is on the revenue_attainment score line, column of 'zero_att'
    line = POLICIES[0].read_text(encoding="utf-8").splitlines()[unknown[1] - 1]
    assert line.index("zero_at") + 1 == unknown[2]


def test_unknown_reward_kind_is_reported_on_the_kind() -> None:
    found = policy_with("kind: commission", "kind: comission")
    assert any(code == "E_SCHEMA" and "did you mean 'commission'" in m for code, _, _, m in found)


# --- definitions put in place of their references: the same errors --------------------------

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted(path for pattern in ("policies/**/*.yaml", "tests/cases/**/*.yaml",
                                        "tests/fixtures/**/*.yaml", "examples/**/*.yaml")
                   for path in ROOT.glob(pattern))


def schema_name(path: Path) -> str:
    return "policy-test.schema.json" if path.name.endswith(".test.yaml") else "policy.schema.json"


def errors(validator: Draft202012Validator, data: Any) -> list[Any]:
    def described(error: ValidationError) -> Any:
        return (error.message, error.validator, list(error.absolute_path),
                list(error.relative_schema_path), list(error.absolute_schema_path),
                [described(e) for e in error.context])
    return [described(e) for e in validator.iter_errors(data)]


@cache
def referring(name: str) -> Draft202012Validator:
    """The schema as written: every definition reached through its `$ref`."""
    return validator_for(json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8")))


def test_the_shipped_schemas_keep_no_reference_to_their_own_definitions() -> None:
    for name in ("policy.schema.json", "policy-test.schema.json"):
        left = [node for _, node in walk(policy_validator(name).schema)
                if isinstance(node, dict) and "$ref" in node]
        assert left == [], name


def _loads(path: Path) -> bool:
    document, _ = load_document(path.read_text(encoding="utf-8", errors="replace"), str(path))
    return document is not None


# the documents that load as YAML (the others never reach the schema)
LOADING = [path for path in DOCUMENTS if _loads(path)]


@pytest.mark.parametrize("path", LOADING, ids=lambda p: str(p.relative_to(ROOT)))
def test_inlined_definitions_give_the_errors_references_give(path: Path) -> None:
    document, _ = load_document(path.read_text(encoding="utf-8", errors="replace"), str(path))
    assert document is not None
    name = schema_name(path)
    assert errors(policy_validator(name), document.data) == errors(referring(name),
                                                                   document.data)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 200) | st.sampled_from(
        ["", "x", "revenue", "40%", "2025-01-01", "2025-13-01", "linear", "amount", "sum"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["kind", "label", "value", "x", "weights", "en", "from"]), inner,
        max_size=3), max_leaves=6)


def diagnostics_referring(document: Document) -> list[Diagnostic]:
    with patch.object(schema_module, "policy_validator", referring):
        return schema_diagnostics(document)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.data())
def test_inlined_definitions_give_the_same_errors_for_any_change(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(POLICIES))
    document, _ = load_document(path.read_text(encoding="utf-8"), str(path))
    assert document is not None
    changed = copy.deepcopy(document.data)
    parent: Any = changed
    key: Any = data.draw(st.sampled_from(list(changed)))
    for _ in range(data.draw(st.integers(0, 5))):
        node = parent[key]
        if not isinstance(node, dict | list) or not node:
            break
        parent, key = node, data.draw(st.sampled_from(
            list(node) if isinstance(node, dict) else list(range(len(node)))))
    if isinstance(parent, dict) and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(["zz", "kind", "label", "value", "weights"]))
    parent[key] = data.draw(JSON_VALUES)
    assert errors(policy_validator("policy.schema.json"), changed) == errors(
        referring("policy.schema.json"), changed)
    document = replace(document, data=changed)
    assert schema_diagnostics(document) == diagnostics_referring(document)
