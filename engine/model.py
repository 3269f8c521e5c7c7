"""The named intermediate forms of the pipeline, frozen.

Document: YAML data plus where every node came from (load).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Scalar:
    """Where a scalar's text starts in the file, and how it was written."""

    line: int
    column: int  # of the first character of the text itself (inside quotes)
    single_line: bool  # the text is exactly what the file holds from `column` on, on one line
    plain: bool  # unquoted
    trailing_comment: bool  # an unquoted value followed by a '#' comment on the same line


@dataclass(frozen=True)
class Document:
    """A policy file as loaded: plain data (dict/list/str/int/Decimal/bool/None) and positions."""

    source: str
    text: str
    data: dict[str, Any]
    positions: dict[JsonPath, tuple[int, int]] = field(repr=False)
    key_positions: dict[JsonPath, tuple[int, int]] = field(repr=False)
    scalars: dict[JsonPath, Scalar] = field(repr=False)

    def position(self, path: JsonPath, *, key: bool = False) -> tuple[int, int]:
        """Line and column of the node at path (of its key when key=True), or of the nearest
        ancestor we know."""
        path = tuple(path)
        while path:
            if key and path in self.key_positions:
                return self.key_positions[path]
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))
