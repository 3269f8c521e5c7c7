"""JSON Schema validation of a loaded Document, with errors mapped to lines and columns.

The schema in `schemas/` is the one editors use. References never leave that folder: the
validator gets a registry that refuses to retrieve anything, so `$ref` to a remote or
`file://` address is an error rather than a network or disk read.

The shipped schemas are read once per process, and their references to their own
definitions are put in place before validating (see `inline_definitions`): resolving a
`$ref` at each use was 40% of the time spent validating a policy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

from .diagnostics import Diagnostic, Location, Severity, did_you_mean
from .model import Document, JsonPath

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def _refuse(uri: str) -> Resource[Any]:
    raise NoSuchResource(uri)


@cache
def policy_validator(name: str = "policy.schema.json") -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return validator_for(inline_definitions(schema))


# Keywords that only annotate: beside a `$ref`, they do not change what is valid.
_ANNOTATIONS = frozenset({"$ref", "$comment", "title", "description", "default", "examples",
                          "deprecated", "readOnly", "writeOnly"})
# Keywords whose values are data, not schemas: never searched for references.
_DATA = frozenset({"const", "enum", "default", "examples"})
# Keywords whose values map names to schemas (a property may be called "default").
_SCHEMAS_BY_NAME = frozenset({"$defs", "properties", "patternProperties", "dependentSchemas"})


def inline_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, changed in place: each `{"$ref": "#/$defs/NAME"}` (with annotations at most)
    is replaced by the definition NAME itself, the same object, so a recursive definition
    becomes a cycle. What is valid and every error stay the same: jsonschema leaves `$ref` out
    of error paths, an error's schema is the definition's either way, and the annotations
    dropped assert nothing. Other references are left to the validator's registry."""
    definitions = schema.get("$defs")
    if not isinstance(definitions, dict):
        return schema

    def target(node: dict[str, Any]) -> dict[str, Any] | None:
        ref = node.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/$defs/") or not set(node) <= \
                _ANNOTATIONS:
            return None
        found = definitions.get(ref.removeprefix("#/$defs/"))
        return found if isinstance(found, dict) and "$id" not in found else None

    def inline(node: Any, by_name: bool = False) -> Any:
        if isinstance(node, dict) and by_name:
            for key, value in node.items():
                node[key] = inline(value)
        elif isinstance(node, dict):
            found = target(node)
            if found is not None:
                return found  # searched where it is defined, not here
            for key, value in node.items():
                if key not in _DATA:
                    node[key] = inline(value, key in _SCHEMAS_BY_NAME)
        elif isinstance(node, list):
            node[:] = [inline(value) for value in node]
        return node

    inline(schema)
    return schema


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator that checks formats and resolves references only inside `schema`: its
    registry refuses to retrieve any other document, remote or `file://`."""
    registry: Registry[Any] = Registry(retrieve=_refuse)  # type: ignore[call-arg]
    return Draft202012Validator(schema, registry=registry,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_diagnostics(document: Document, name: str = "policy.schema.json") -> list[Diagnostic]:
    validator = policy_validator(name)
    data = _jsonable(document.data)
    diagnostics: list[Diagnostic] = []
    for error in validator.iter_errors(data):
        diagnostics.extend(_diagnose(document, error))
    return diagnostics


def _jsonable(value: Any) -> Any:
    """Decimals are numbers to the schema; the data is otherwise already plain."""
    return value


def _leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    """For oneOf/anyOf, the errors of the branch that got furthest, else the error itself."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        deepest = max(len(e.absolute_path) for e in error.context)
        if deepest > len(error.absolute_path):
            best = [e for e in error.context if len(e.absolute_path) == deepest]
            yield from best[:1]
            return
    yield error


def _diagnose(document: Document, error: ValidationError) -> Iterator[Diagnostic]:
    for leaf in _leaf_errors(error):
        path: JsonPath = tuple(leaf.absolute_path)
        where = _path_text(path)
        if leaf.validator == "additionalProperties" and isinstance(leaf.instance, dict):
            known = list(leaf.schema.get("properties", {})) if isinstance(leaf.schema, dict) \
                else []
            for key in leaf.instance:
                if key not in known:
                    yield _at(document, (*path, key), "E_SCHEMA",
                              f"unknown key '{key}' in {where}{did_you_mean(key, known)}",
                              ("allowed here: " + ", ".join(known)) if known else "", key=True)
        elif leaf.validator == "required":
            missing = leaf.message.split(" is a required")[0]
            wanted = missing.strip("'")
            if isinstance(leaf.instance, dict) and did_you_mean(
                    wanted, [k for k in leaf.instance if k != wanted]):
                continue  # a misspelt key is already reported, with this key suggested
            yield _at(document, path, "E_SCHEMA", f"{where} is missing {missing}",
                      "add the key", key=True)
        elif "propertyNames" in leaf.relative_schema_path and isinstance(leaf.instance, str):
            yield _at(document, (*path, str(leaf.instance)), "E_SCHEMA",
                      f"'{leaf.instance}' is not a valid name in {where}",
                      "names are lower_case letters, digits and _ , starting with a letter",
                      key=True)
        elif leaf.validator == "enum":
            choices = [str(o) for o in _as_list(leaf.validator_value)]
            yield _at(document, path, "E_SCHEMA", f"{where} is '{leaf.instance}'"
                      f"{did_you_mean(str(leaf.instance), choices)}",
                      f"choose one of: {', '.join(choices)}")
        elif leaf.validator == "type":
            yield _at(document, path, "E_SCHEMA", f"{where}: {_short(leaf.instance)} is not "
                      f"{_type_words(leaf.validator_value)}", _type_hint(leaf))
        else:
            description = leaf.schema.get("description", "") if isinstance(leaf.schema, dict) \
                else ""
            yield _at(document, path, "E_SCHEMA", f"{where}: {_short_message(leaf)}",
                      description)


def _at(document: Document, path: JsonPath, code: str, message: str, hint: str,
        key: bool = False) -> Diagnostic:
    line, column = document.position(path, key=key)
    return Diagnostic(code, Severity.ERROR, Location(document.source, line, column), message, hint)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _path_text(path: JsonPath) -> str:
    if not path:
        return "the policy"
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return f"'{text}'"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_words(expected: Any) -> str:
    words = {"string": "text", "number": "a number", "integer": "a whole number",
             "object": "a mapping (key: value)", "array": "a list", "boolean": "true or false",
             "null": "empty"}
    if isinstance(expected, list):
        return " or ".join(words.get(str(e), str(e)) for e in expected)
    return words.get(str(expected), str(expected))


def _type_hint(error: ValidationError) -> str:
    if error.validator_value == "string" and not isinstance(error.instance, dict | list):
        return f"put the value in quotes: \"{error.instance}\""
    return ""


def _short_message(error: ValidationError) -> str:
    validator = error.validator
    value = error.validator_value
    if validator == "pattern":
        return f"{_short(error.instance)} does not have the expected form ({value})"
    if validator in ("minimum", "exclusiveMinimum"):
        return f"{error.instance} is below the minimum {value}"
    if validator in ("maximum", "exclusiveMaximum"):
        return f"{error.instance} is above the maximum {value}"
    if validator == "format":
        return f"{_short(error.instance)} is not a valid {value} (write YYYY-MM-DD)" \
            if value == "date" else f"{_short(error.instance)} is not a valid {value}"
    if validator == "minItems":
        return f"needs at least {value} item(s)"
    if validator == "minProperties":
        return f"needs at least {value} entr{'y' if value == 1 else 'ies'}"
    if validator == "const":
        return f"must be {_short(value)}"
    if validator in ("oneOf", "anyOf"):
        return "does not match any of the allowed forms"
    if validator == "not":
        return "this combination of keys is not allowed"
    return error.message
