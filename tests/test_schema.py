"""The JSON Schema: valid, self-contained, documented on every key, and precise in its errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.load import load_document
from engine.schema import SCHEMA_DIR, schema_diagnostics

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
