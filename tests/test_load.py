"""The YAML loader: exact values, positions, and every YAML surprise refused with its place."""

from __future__ import annotations

from decimal import Decimal

import pytest

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
