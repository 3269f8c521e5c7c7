"""Load YAML into a `Document`: plain data plus the line and column of every node.

PyYAML composes the node tree; we construct values ourselves so that
- duplicate keys are an error, never silent last-wins;
- plain scalars follow one small, explicit rule set (YAML 1.2 core, decimals kept exact)
  and the YAML 1.1 surprises (`no` as false, `012` as 10, `1:30` as 90, `.nan`) are errors;
- aliases cannot expand without bound (a node budget and a depth limit);
- a `#` comment right after an unquoted value is remembered, so that an expression silently
  cut by it can be reported.

Scanning and parsing were 90% of the time spent loading, and PyYAML's pure-Python parser is
about eight times slower than libyaml. So when PyYAML was built with libyaml, libyaml scans
and parses, and composition (with its node budget) stays in Python. The two parsers differ at
the edges (tabs, byte order marks inside the text, where an empty value is, '?' inside [] or
{}, `|#`, and every error message and mark), so the pure-Python parser remains the reference:
it reads every text where they could differ, every text that libyaml cannot compose and every
text of several documents, and so it reports every YAML error. tests/test_load.py checks that
both give the same Document and diagnostics.
"""

from __future__ import annotations

import re
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer

from .diagnostics import Diagnostic, InputError, Location, Severity
from .model import Document, JsonPath, Scalar

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_DIGITS = 28  # a number is kept exactly in 28 significant digits (the evaluation precision)

_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)")
_EXPONENT = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)[eE][-+]?[0-9]+")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULL = {"", "~", "null", "Null", "NULL"}
_YAML11_BOOL = re.compile(r"(?i)(y|n|yes|no|on|off)")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+(\.[0-9]*)?")
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?")
_OTHER_NUMBER = re.compile(
    r"(?i)[-+]?(0x[0-9a-f_]+|0o[0-7_]+|0b[01_]+|[0-9][0-9_]*_[0-9_]*(\.[0-9_]*)?|\.(nan|inf)|[-+]\.inf)"
)


class _Problem(Exception):
    def __init__(self, code: str, message: str, mark: yaml.Mark | None, hint: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.mark, self.hint = code, message, mark, hint


class _Composer(yaml.SafeLoader):
    """SafeLoader used only to compose nodes; values are built by `_Builder`. It stops at
    MAX_NODES nodes written out (aliases are counted when the builder expands them): a
    document of millions of small values would otherwise take minutes and gigabytes to
    compose before any limit applied. The reference: its nodes, errors and marks are what
    load_document reports."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.composed = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.composed += 1
        if self.composed > MAX_NODES:
            event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in the stubs
            raise _Problem("E_YAML_TOO_LARGE", f"the document holds more than {MAX_NODES:,} "
                           "values", event.start_mark, "split the policy, or check it is a policy")
        return super().compose_node(parent, index)


class _Declined(Exception):
    """The fast composer met something the reference composer must decide."""


# Texts left to the reference composer: libyaml accepts tabs where PyYAML refuses them, skips
# a byte order mark at the start of any line (PyYAML keeps it as text) and accepts a comment
# right after a block scalar's header (`|-#`, refused by PyYAML).
_REFERENCE_ONLY = re.compile(r"[\t\ufeff]|[|>][-+0-9]*#")

if yaml.__with_libyaml__:
    class _FastComposer(Composer, yaml.CSafeLoader):
        """libyaml scans and parses; PyYAML's own Composer (the one SafeLoader uses) composes
        with the same resolver and the same node budget as `_Composer`. Declines an empty
        value (libyaml places it at the next token, PyYAML at the end of the previous one) and
        an unquoted value holding '?' inside [] or {} (PyYAML ends the value at the '?')."""

        def __init__(self, stream: str) -> None:
            yaml.CSafeLoader.__init__(self, stream)
            Composer.__init__(self)
            self.composed = 0

        def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
            self.composed += 1
            if self.composed > MAX_NODES:
                raise _Declined  # the reference reports it, at its own mark
            event = self.peek_event()
            if isinstance(event, yaml.ScalarEvent) and not event.style and (
                    event.value == "" or ("?" in event.value and isinstance(
                        parent, yaml.CollectionNode) and parent.flow_style)):
                raise _Declined
            return super().compose_node(parent, index)


def _compose_fast(text: str) -> list[yaml.Node] | None:
    """The document's nodes composed from libyaml's events, or None when the reference
    composer must compose the text: libyaml is missing, the text is one where the parsers
    differ, or composing fails in any way (the reference then reports the problem, with its
    own message and mark)."""
    if not yaml.__with_libyaml__ or _REFERENCE_ONLY.search(text):
        return None
    try:
        composer = _FastComposer(text)
        try:
            node = composer.get_single_node()  # raises on a second document
        finally:
            composer.dispose()
    except Exception:  # any failure at all: the reference composer reports it
        return None
    return None if node is None else [node]  # an empty text: reported by the reference


def read_text(path: Path) -> str:
    """Read a policy file as UTF-8 text (a leading BOM is allowed); InputError if we cannot."""
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode) and not stat.S_ISDIR(status.st_mode):
            diag = _file_diag(path, "E_FILE_UNREADABLE", "it is a device or pipe, not a file",
                              "give a policy file")  # /dev/zero would never end
            raise InputError(diag.render(), [diag])
        size = status.st_size
        if size > MAX_FILE_BYTES:
            raise InputError(
                f"{path}: E_FILE_TOO_LARGE: the file is {size:,} bytes; a policy is at most "
                f"{MAX_FILE_BYTES:,} bytes",
                [_file_diag(path, "E_FILE_TOO_LARGE", f"the file is {size:,} bytes, over the "
                            f"{MAX_FILE_BYTES:,} byte limit", "split it, or check it is a policy")],
            )
        raw = path.read_bytes()
    except InputError:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        diag = _file_diag(path, "E_FILE_UNREADABLE", f"cannot read the file: {reason}",
                          "check the path and its permissions")
        raise InputError(diag.render(), [diag]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        diag = Diagnostic(
            "E_FILE_ENCODING", Severity.ERROR, Location(str(path), line, column),
            f"byte 0x{raw[exc.start]:02x} is not valid UTF-8",
            "save the file as UTF-8 (most editors offer it under 'Save with encoding')",
        )
        raise InputError(diag.render(), [diag]) from None


def _file_diag(path: Path, code: str, message: str, hint: str) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, Location(str(path)), message, hint)


def load_document(text: str, source: str) -> tuple[Document | None, list[Diagnostic]]:
    """Parse YAML text into a Document, or return the diagnostics that prevent it."""
    try:
        nodes = _compose_fast(text) or list(yaml.compose_all(text, Loader=_Composer))
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_diagnostic(exc, source, text)]
    except _Problem as problem:  # the composer's node limit
        mark = problem.mark
        return None, [Diagnostic(problem.code, Severity.ERROR,
                                 Location(source, mark.line + 1, mark.column + 1) if mark
                                 else Location(source), problem.message, problem.hint)]
    except yaml.YAMLError as exc:  # unmarked reader errors, e.g. control characters
        return None, [Diagnostic("E_YAML_SYNTAX", Severity.ERROR, Location(source, 1, 1),
                                 str(exc).splitlines()[0], "")]
    except RecursionError:
        return None, [Diagnostic("E_YAML_TOO_LARGE", Severity.ERROR, Location(source, 1, 1),
                                 "the YAML nests too deeply to read", "flatten the document")]
    if len(nodes) > 1:
        line = _separator_line(text, nodes[0].end_mark.line if nodes[0] else 0)
        return None, [Diagnostic("E_YAML_MULTIPLE_DOCUMENTS", Severity.ERROR,
                                 Location(source, line, 1),
                                 "the file holds more than one YAML document",
                                 "keep one policy per file; remove the '---' separator")]
    if not nodes or nodes[0] is None:
        return None, [Diagnostic("E_YAML_NOT_A_MAPPING", Severity.ERROR, Location(source, 1, 1),
                                 "the file is empty", "a policy is a mapping starting with "
                                 "'meritpay: 1'")]
    root = nodes[0]
    if not isinstance(root, yaml.MappingNode):
        mark = root.start_mark
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        return None, [Diagnostic("E_YAML_NOT_A_MAPPING", Severity.ERROR,
                                 Location(source, mark.line + 1, mark.column + 1),
                                 f"the document is {kind}, not a mapping of keys to values",
                                 "a policy is a mapping starting with 'meritpay: 1'")]
    builder = _Builder(text)
    try:
        data = builder.build(root, (), 0)
    except _Problem as problem:
        mark = problem.mark
        loc = Location(source, mark.line + 1, mark.column + 1) if mark else Location(source)
        return None, [Diagnostic(problem.code, Severity.ERROR, loc, problem.message, problem.hint)]
    diagnostics = [
        Diagnostic(p.code, Severity.ERROR,
                   Location(source, p.mark.line + 1, p.mark.column + 1) if p.mark
                   else Location(source), p.message, p.hint)
        for p in builder.problems
    ]
    document = Document(source=source, text=text, data=data, positions=builder.positions,
                        key_positions=builder.key_positions, scalars=builder.scalars)
    return document, diagnostics


def _separator_line(text: str, after: int) -> int:
    """1-based line of the first '---' document separator at or after line `after` (0-based)."""
    for number, line in enumerate(text.splitlines()[after:], start=after + 1):
        if line.startswith("---"):
            return number
    return after + 1


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, source: str, text: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "invalid YAML"
    hint = "check the indentation and quotes on this line and the one before"
    if "'\\t'" in problem or "tab" in problem:
        problem = "a tab character is used for indentation"
        hint = "indent with spaces only (2 per level)"
    elif "found unexpected end of stream" in problem or "while scanning a quoted scalar" in str(
        exc.context
    ):
        problem = "a quoted string is never closed"
        hint = "add the closing quote"
        if exc.context_mark:
            line, column = exc.context_mark.line + 1, exc.context_mark.column + 1
    elif "mapping values are not allowed" in problem:
        hint = "a value containing ': ' must be quoted, e.g. when: \"a > 1\""
    return Diagnostic("E_YAML_SYNTAX", Severity.ERROR, Location(source, line, column),
                      f"YAML syntax: {problem}", hint)


class _Builder:
    """Builds plain Python data from a composed node tree, recording positions."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.budget = MAX_NODES
        self.positions: dict[JsonPath, tuple[int, int]] = {}
        self.key_positions: dict[JsonPath, tuple[int, int]] = {}
        self.scalars: dict[JsonPath, Scalar] = {}
        self.problems: list[_Problem] = []

    def build(self, node: yaml.Node, path: JsonPath, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _Problem("E_YAML_TOO_LARGE", f"the document expands to more than {MAX_NODES:,} "
                           "values (anchors and aliases?)", node.start_mark,
                           "write the values out, or use fewer aliases")
        if depth > MAX_DEPTH:
            raise _Problem("E_YAML_TOO_LARGE", f"the document nests deeper than {MAX_DEPTH} levels",
                           node.start_mark, "flatten the structure")
        self.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in (
                "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"):
            self.problems.append(_Problem("E_YAML_UNSUPPORTED", f"the YAML tag {node.tag} is not "
                                          "allowed", node.start_mark, "remove the explicit !tag"))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: JsonPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Problem("E_YAML_UNSUPPORTED", "merge keys (<<) are not supported",
                               key_node.start_mark, "write the keys out")
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Problem("E_SCHEMA", "a key must be a plain name, not a list or mapping",
                               key_node.start_mark, "")
            key = key_node.value
            if key in result:
                first = self.key_positions[(*path, key)]
                self.problems.append(_Problem(
                    "E_YAML_DUPLICATE_KEY",
                    f"key '{key}' appears twice in this mapping (first on line {first[0]})",
                    key_node.start_mark, "remove one of them; YAML would silently keep the last"))
                continue
            self.key_positions[(*path, key)] = (key_node.start_mark.line + 1,
                                                key_node.start_mark.column + 1)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result

    def _scalar(self, node: yaml.ScalarNode, path: JsonPath) -> Any:
        text: str = node.value
        start, end = node.start_mark, node.end_mark
        quoted = node.style in ("'", '"')
        single_line = start.line == end.line and node.style in (None, "", "'", '"')
        trailing_comment = False
        if node.style in (None, "") and end.line < len(self.lines):
            rest = self.lines[end.line][end.column:]
            trailing_comment = rest.lstrip().startswith("#")
        self.scalars[path] = Scalar(
            line=start.line + 1,
            column=start.column + 1 + (1 if quoted else 0),
            single_line=single_line and text == self._source_slice(node, quoted),
            plain=not quoted and node.style in (None, ""),
            trailing_comment=trailing_comment,
        )
        try:
            return self._checked(node, text)
        except _Problem as problem:
            self.problems.append(problem)
            return text

    def _checked(self, node: yaml.ScalarNode, text: str) -> Any:
        start = node.start_mark
        if node.tag not in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:int",
                            "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
                            "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp",
                            "tag:yaml.org,2002:value", "tag:yaml.org,2002:merge"):
            raise _Problem("E_YAML_UNSUPPORTED", f"the YAML tag {node.tag} is not allowed", start,
                           "remove the explicit !tag")
        if node.style not in (None, ""):
            return text  # quoted or block scalars are always text
        return self._plain(text, start)

    def _source_slice(self, node: yaml.ScalarNode, quoted: bool) -> str:
        start, end = node.start_mark, node.end_mark
        if start.line != end.line or start.line >= len(self.lines):
            return ""
        line = self.lines[start.line]
        if quoted:
            return line[start.column + 1 : end.column - 1]
        return line[start.column : end.column]

    def _plain(self, text: str, mark: yaml.Mark) -> Any:
        if text in _NULL:
            return None
        if text in _BOOL:
            return _BOOL[text]
        if _YAML11_BOOL.fullmatch(text):
            raise _Problem("E_YAML_AMBIGUOUS", f"'{text}' is read as true/false by some YAML "
                           "tools and as text by others", mark,
                           f"write true or false, or \"{text}\" in quotes for text")
        if _LEADING_ZERO.fullmatch(text):
            raise _Problem("E_YAML_AMBIGUOUS", f"'{text}' has a leading zero: YAML 1.1 reads it "
                           "as an octal number", mark,
                           f"write the number without the leading zero, or \"{text}\" for text")
        if _SEXAGESIMAL.fullmatch(text):
            raise _Problem("E_YAML_AMBIGUOUS", f"'{text}' is read as a base-60 number by YAML 1.1",
                           mark, f"write \"{text}\" in quotes")
        if _OTHER_NUMBER.fullmatch(text):
            raise _Problem("E_YAML_AMBIGUOUS", f"'{text}' is not a plain decimal number", mark,
                           "write a plain decimal such as 1000 or 0.15 (no _, hex, .nan or .inf)")
        if _EXPONENT.fullmatch(text):
            raise _Problem("E_YAML_AMBIGUOUS", f"'{text}' is a number to YAML 1.2 but text to "
                           "YAML 1.1 (an exponent)", mark,
                           "write the number out in full, e.g. 1000 for 1e3")
        if _INT.fullmatch(text) or _DECIMAL.fullmatch(text):
            digits = len(text.lstrip("+-").replace(".", "").lstrip("0"))
            if digits > MAX_DIGITS:
                raise _Problem("E_YAML_TOO_LARGE", f"the number has {digits} digits; at most "
                               f"{MAX_DIGITS} are kept exactly", mark,
                               "write it with fewer digits")
            return int(text) if _INT.fullmatch(text) else Decimal(text)
        return text
