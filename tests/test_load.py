"""The YAML loader: exact values, positions, and every YAML surprise refused with its place."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from unittest.mock import patch

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import load as loader
from engine.load import load_document


def load(text: str) -> tuple[object, list[tuple[str, int, int]]]:
    document, diagnostics = load_document(text, "p.yaml")
    found = [(d.code, d.location.line, d.location.column) for d in diagnostics]
    return (document.data if document else None), found


def test_numbers_are_exact_and_dates_stay_text() -> None:
    data, found = load("a: 0.1\nb: 12\nc: 2025-07-01\nd: 40%\ne: -3.50\n")
    assert found == []
    assert data == {"a": Decimal("0.1"), "b": 12, "c": "2025-07-01", "d": "40%",
                    "e": Decimal("-3.50")}
    assert isinstance(data["a"], Decimal)  # type: ignore[index]


def test_positions_of_values_and_keys() -> None:
    document, _ = load_document("top:\n  inner: 'quoted'\n  list: [1, 2]\n", "p.yaml")
    assert document is not None
    assert document.position(("top", "inner")) == (2, 10)
    assert document.position(("top", "inner"), key=True) == (2, 3)
    assert document.position(("top", "list", 1)) == (3, 13)
    # a quoted scalar's text starts one column after its quote
    assert document.scalars[("top", "inner")].column == 11


@pytest.mark.parametrize(
    ("text", "code", "line", "column"),
    [
        ("a: 1\na: 2\n", "E_YAML_DUPLICATE_KEY", 2, 1),
        ("a: no\n", "E_YAML_AMBIGUOUS", 1, 4),
        ("a: Yes\n", "E_YAML_AMBIGUOUS", 1, 4),
        ("a: off\n", "E_YAML_AMBIGUOUS", 1, 4),
        ("a: 012\n", "E_YAML_AMBIGUOUS", 1, 4),
        ("a: 1:30\n", "E_YAML_AMBIGUOUS", 1, 4),
        ("a: .nan\n", "E_YAML_AMBIGUOUS", 1, 4),
        ("a: .inf\n", "E_YAML_AMBIGUOUS", 1, 4),
        ("a: 1_000\n", "E_YAML_AMBIGUOUS", 1, 4),
        ("a: 0x1F\n", "E_YAML_AMBIGUOUS", 1, 4),
        ("a: !!python/object:os.system x\n", "E_YAML_UNSUPPORTED", 1, 4),
        ("b: &x {c: 1}\na:\n  <<: *x\n", "E_YAML_UNSUPPORTED", 3, 3),
        ("a:\n\tb: 1\n", "E_YAML_SYNTAX", 2, 1),
        ("a: 'open\n", "E_YAML_SYNTAX", 1, 4),
        ("- 1\n- 2\n", "E_YAML_NOT_A_MAPPING", 1, 1),
        ("just text\n", "E_YAML_NOT_A_MAPPING", 1, 1),
        ("", "E_YAML_NOT_A_MAPPING", 1, 1),
        ("a: 1\n---\nb: 2\n", "E_YAML_MULTIPLE_DOCUMENTS", 2, 1),
        ("a: [1\n", "E_YAML_SYNTAX", 2, 1),
    ],
)
def test_yaml_surprises_are_refused_with_their_place(text: str, code: str, line: int,
                                                    column: int) -> None:
    _, found = load(text)
    assert found[0] == (code, line, column)


def test_every_ambiguity_is_reported_not_just_the_first() -> None:
    _, found = load("a: no\nb: 012\nc: ok\n")
    assert found == [("E_YAML_AMBIGUOUS", 1, 4), ("E_YAML_AMBIGUOUS", 2, 4)]


def test_alias_bomb_is_stopped_by_the_node_budget() -> None:
    # 9 ** 6 = 531,441 values once expanded, over the 100,000 budget
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, 7):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    _, found = load("\n".join(lines) + "\n")
    assert [code for code, _, _ in found] == ["E_YAML_TOO_LARGE"]


def test_deep_nesting_is_refused() -> None:
    text = "a: " + "[" * 100 + "]" * 100 + "\n"
    _, found = load(text)
    assert [code for code, _, _ in found] == ["E_YAML_TOO_LARGE"]


def test_trailing_comment_after_plain_value_is_remembered() -> None:
    document, _ = load_document("a: x > 1 # or y\nb: 'x # y'\n", "p.yaml")
    assert document is not None
    assert document.data == {"a": "x > 1", "b": "x # y"}
    assert document.scalars[("a",)].trailing_comment is True
    assert document.scalars[("b",)].trailing_comment is False


# --- libyaml and the pure-Python parser: the same Document and diagnostics ----------------

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY_YAML = sorted(
    path for pattern in ("policies/**/*.yaml", "examples/**/*.yaml", "tests/**/*.yaml")
    for path in ROOT.glob(pattern))
SHIPPED_POLICIES = sorted(path for path in ROOT.glob("policies/**/*.yaml")
                          if not path.name.endswith(".test.yaml"))

# Where libyaml and PyYAML's own parser differ, or could: tabs, byte order marks, empty
# values, '?' in flow collections, line breaks, long keys, directives, documents, tags.
EDGES = [
    "a:\tb\n", "a:\n\tb: 1\n", "a: x\tb\n", "a: b\n\ufeffc: d\n", "a: \ufeffb\n",
    "a: {b: c?d}\n", "a: [x?y, z]\n", "a: {b: c ?d}\n", "a: b?c\n", "a: {? b : c}\n",
    "a:\n", "a: {b: }\n", "a: {b: , c: 1}\n", "a: [b, ]\n", "? a\n: b\n", "a:\n  ? b\n  : c\n",
    "a: 1\r\nb: 2\r\n", "a: 1\rb: 2\r", "a: x\x85b: 2\n", "a: x\u2028b: y\n", "a: x\u2029y\n",
    "%YAML 1.1\n---\na: 1\n", "%YAML 1.2\n---\na: 1\n", "%TAG !e! tag:e,2000:\n---\na: !e!x 1\n",
    "--- \na: 1\n...\n", "a: 1\n---\nb: 2\n", "a: 1\n...\n---\nb: 2\n", "---\n", "", "# only\n",
    "a: |\n  x\n  y\n", "a: >-\n  x\n\n  y\n", "a: |-#\n  x\n", "a: >#\n  x\n",
    "a: | #\n  x\n", "a: |2\n   x\n", "a: |+\n  x\n\n", "a: 'x\n\n  y'\n",
    'a: "x\\\n  y"\n', 'a: "\\u00e9\\x41\\/\\t"\n', 'a: "\\N\\_\\L\\P\\e\\0"\n', 'a: "\\q"\n',
    "a: &x 1\nb: *x\n", "a: *y\n", "a: &x 1\nb: &x 2\n", "a: !!str 1\n", "a: !x 1\n", "a: ! 1\n",
    "a: !<tag:yaml.org,2002:str> 1\n", "<<: {a: 1}\n", "a: <<\n",
    "k" * 1024 + ": v\n", "k" * 1025 + ": v\n", "中" * 1025 + ": v\n", "a: 😀 中文\n",
    "a: b # c\n", "a: b#c\n", 'a: "b"#c\n', "a: 'b' # c\n", "a: x\n  # c\n  y\n",
    "{a: 1}\n", "[a]\n", "x\n", "a: [1, {b: c}, [d]]\n", "a:\n- 1\n- 2\n", "a:\n  -\n  - 2\n",
    "a: x:y\n", "a: {x:y}\n", "a: {x: y:z}\n", "a: [x: y]\n", "a: [x:, y]\n", "a: {x:}\n",
    "a: -1\n", "a: - 1\n", "a: -\n", '"a": b\n', "'a': b\n", "a: {b: c,}\n", "a: [b,,c]\n",
    "a: 1\nb:\n  c: 2\n d: 3\n", "a: 1\n b: 2\n", "a: 'open\n", 'a: "open\n', "a: [1\n",
    "a: {b: [c}\n", "a: x\x00y\n", "a: x\x7fy\n", "a: x\x1by\n", "a: \ud800\n",
    "a: 1\na: 2\n", "a: no\nb: 012\nc: 1:30\nd: .nan\ne: 1e3\n", "a: @x\n", "a: `x\n",
    "a: %x\n", "a: [a, b]c\n", "a: {b: c}d\n", "a:\n  - b\n  c: d\n",
]


def reference_load(text: str) -> tuple[object, object]:
    """load_document with PyYAML's pure-Python parser alone."""
    with patch.object(loader, "_compose_fast", lambda text: None):
        return load_document(text, "p.yaml")


@pytest.mark.parametrize("path", REPOSITORY_YAML, ids=lambda p: str(p.relative_to(ROOT)))
def test_libyaml_and_pure_python_give_the_same_document_for_every_repository_file(
        path: Path) -> None:
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    assert load_document(text, "p.yaml") == reference_load(text)


@pytest.mark.parametrize("text", EDGES)
def test_libyaml_and_pure_python_give_the_same_document_at_the_edges(text: str) -> None:
    assert load_document(text, "p.yaml") == reference_load(text)


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML was built without libyaml")
@pytest.mark.parametrize("path", SHIPPED_POLICIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_policies_are_parsed_by_libyaml(path: Path) -> None:
    """The fast path is taken for real policies (a tab or an empty value would lose it)."""
    assert loader._compose_fast(path.read_text(encoding="utf-8")) is not None


MINIMAL_LINES = (ROOT / "tests" / "fixtures" / "valid" / "minimal.yaml").read_text(
    encoding="utf-8").split("\n")
PIECES = ["a", "x y", ":", ": ", "-", "- ", "?", "? ", "#", " #", ",", ", ", "[", "]", "{", "}",
          "'", '"', "\\", "&a ", "*a", "!", "!!str ", "|", ">", "%", "@", "`", "...", "---",
          "\n", "\n  ", "\n- ", "\t", "\r", "\r\n", "\x85", "\u2028", "\ufeff", "é", "😀", "中",
          "0", "012", "1.5", "40%", "1:30", "no", "~", "null", "2025-01-01", " "]


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(MINIMAL_LINES) - 1), st.integers(0, 60),
                          st.lists(st.sampled_from(PIECES), min_size=1, max_size=4)),
                min_size=1, max_size=3))
def test_libyaml_and_pure_python_give_the_same_document_for_any_edit(
        edits: list[tuple[int, int, list[str]]]) -> None:
    lines = list(MINIMAL_LINES)
    for line, column, pieces in edits:
        lines[line] = lines[line][:column] + "".join(pieces) + lines[line][column:]
    text = "\n".join(lines)
    assert load_document(text, "p.yaml") == reference_load(text)
