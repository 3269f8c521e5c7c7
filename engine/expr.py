"""The expression language: parse, check against an allowlist, and compile once.

An expression is Python expression syntax restricted to a small allowlist (the safe subset
simpleeval defines, made smaller). `check_expression` parses the text once and walks the tree:
every node type, name and function is checked before anything runs, and each problem carries
its character offset in the text. `compile_expression` turns a checked tree into a Python
function of one argument, the environment mapping names to values; evaluation never parses
text again.

This module knows only the expression text; the caller adds the file, line and rule.

Conventions of the environment `e` passed to a compiled function:
- `e[name]` is a fact, indicator value or qualified name (`score.x`) as a Decimal, bool, str,
  date or tuple; `MISSING` marks a fact the employee has no value for;
- `e["@months"]`: one environment per month of the period, in order;
- `e["@periods"]`: one environment per period up to the current one, most recent last;
- `e["@years"]`: one entry per complete fiscal year before the current one, most recent last,
  `None` for a year with no data.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from .diagnostics import did_you_mean

MAX_LENGTH: Final = 2000
MAX_DEPTH: Final = 40
MAX_POWER: Final = 10
MAX_STRING: Final = 200
MAX_LIST: Final = 100
MAX_DIGITS: Final = 28  # a number literal is exact in the evaluation precision

NUMBER, BOOLEAN, TEXT, DATE, LIST, ANY = "number", "boolean", "text", "date", "list", "any"
_MIXED: Final = "mixed"  # the items of a list of several kinds, or of an unknown kind
_AGGREGATES: Final = frozenset({"min", "max", "mean", "sum", "count"})  # take one list


class _Missing:
    """The value of a fact an employee has no value for. Never equal to anything."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        raise TypeError("a missing value has no truth value")


MISSING: Final = _Missing()


@dataclass(frozen=True)
class ExprProblem:
    code: str
    message: str
    offset: int  # 0-based character offset in the expression text
    hint: str = ""


@dataclass(frozen=True)
class Scope:
    """The names an expression may read, with their types.

    `inner` is the scope inside month- and period-wise functions (facts only); None where
    such functions make no sense (guardrails). `broken` names exist but failed their own
    checks: reading them is allowed silently, so one broken rule is reported once.
    """

    names: Mapping[str, str]
    inner: Scope | None = None
    broken: frozenset[str] = frozenset()
    what: str = "this expression"
    is_inner: bool = False  # names read here come from other months or periods


@dataclass(frozen=True)
class CheckedExpression:
    text: str
    tree: ast.Expression = field(repr=False)
    type: str
    reads: frozenset[str]  # names whose missing value makes the expression missing
    presence_reads: frozenset[str]  # names only tested with is_missing()
    inner_reads: frozenset[str]  # names read month- or period-wise inside months() etc.
    constants: Mapping[int, Decimal] = field(repr=False)  # number literals by column
    uses_broken: bool = False


@dataclass(frozen=True)
class _Function:
    min_args: int
    max_args: int | None
    result: str
    special: str = ""  # "inner": first argument is evaluated month/period-wise


FUNCTIONS: Final[dict[str, _Function]] = {
    "min": _Function(1, None, NUMBER),
    "max": _Function(1, None, NUMBER),
    "abs": _Function(1, 1, NUMBER),
    "round": _Function(2, 2, NUMBER),
    "clamp": _Function(3, 3, NUMBER),
    "mean": _Function(1, None, NUMBER),
    "sum": _Function(1, None, NUMBER),
    "count": _Function(1, None, NUMBER),
    "safe_div": _Function(3, 3, NUMBER),
    "is_missing": _Function(1, 1, BOOLEAN, "presence"),
    "months": _Function(1, 1, LIST, "inner"),
    "every_month": _Function(1, 1, BOOLEAN, "inner"),
    "any_month": _Function(1, 1, BOOLEAN, "inner"),
    "last_periods": _Function(2, 2, LIST, "inner"),
    "consecutive_years": _Function(2, 2, BOOLEAN, "inner"),
}

_FORBIDDEN_NAMES: Final = {
    ast.Lambda: "lambda", ast.ListComp: "comprehensions", ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions", ast.GeneratorExp: "comprehensions",
    ast.Subscript: "subscripts ([...])", ast.JoinedStr: "f-strings", ast.NamedExpr: ":=",
    ast.Starred: "* unpacking", ast.Dict: "dictionaries", ast.Set: "sets", ast.Await: "await",
    ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "slices",
}
_BINOPS: Final = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_CMPOPS: Final = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
                  ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in"}


class _Stop(Exception):
    def __init__(self, problem: ExprProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _prepare(text: str) -> tuple[str, dict[int, bool]]:
    """Rewrite `15%` to the same-length `15j` so Python parses it; record literal offsets.

    Returns the source to parse and {offset of each number literal: is_percent}.
    """
    source = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    chars = list(source)
    literals: dict[int, bool] = {}
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError) as exc:
        _parse(source)  # the parser knows where the bracket or quote is; it raises _Stop
        raise _Stop(ExprProblem("E_EXPR_SYNTAX", _syntax_message(str(exc)), _token_error_at(exc),
                                "check brackets and quotes")) from None
    previous: tokenize.TokenInfo | None = None
    for token in tokens:
        offset = token.start[1]
        if token.type == tokenize.NUMBER:
            if token.string[-1] in "jJ":
                raise _Stop(ExprProblem("E_EXPR_FORBIDDEN", "imaginary numbers are not allowed",
                                        offset))
            if "_" in token.string or token.string[:2].lower() in ("0x", "0o", "0b") \
                    or "e" in token.string.lower():
                raise _Stop(ExprProblem("E_EXPR_FORBIDDEN",
                                        f"write the number {token.string} as a plain decimal",
                                        offset, "no exponents, underscores, hex, octal or binary"))
            digits = len(token.string.replace(".", "").lstrip("0"))
            if digits > MAX_DIGITS:
                raise _Stop(ExprProblem("E_EXPR_TOO_COMPLEX", f"the number has {digits} digits; "
                                        f"at most {MAX_DIGITS} are kept exactly", offset,
                                        "write it with fewer digits"))
            literals[offset] = False
        elif token.type == tokenize.OP and token.string == "%":
            if previous is not None and previous.type == tokenize.NUMBER \
                    and previous.end == token.start:
                chars[offset] = "j"
                literals[previous.start[1]] = True
            else:
                raise _Stop(ExprProblem("E_EXPR_FORBIDDEN",
                                        "'%' is only allowed right after a number (15% is 0.15)",
                                        offset, "there is no modulo operator"))
        elif token.type == tokenize.COMMENT:
            raise _Stop(ExprProblem("E_EXPR_SYNTAX", "'#' starts a comment, which would cut the "
                                    "expression here", offset,
                                    "remove it; put comments on their own YAML line"))
        elif token.type == tokenize.ERRORTOKEN and token.string.strip() in ("'", '"'):
            raise _Stop(ExprProblem("E_EXPR_SYNTAX", "a quoted string is never closed", offset,
                                    "add the closing quote"))
        elif token.type == tokenize.ERRORTOKEN and token.string.strip():
            raise _Stop(ExprProblem("E_EXPR_SYNTAX", f"unexpected character {token.string!r}",
                                    offset))
        if token.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            previous = token
    return "".join(chars), literals


def _token_error_at(exc: Exception) -> int:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) > 1 and isinstance(args[1], tuple) and len(args[1]) > 1:
        return max(0, int(args[1][1]))
    return 0


def _syntax_message(raw: str) -> str:
    if "EOF in multi-line statement" in raw:
        return "the expression ends before a bracket is closed"
    if "unterminated string" in raw or "EOF in multi-line string" in raw:
        return "a quoted string is never closed"
    return f"cannot parse: {raw.split('(')[0].strip()}"


# Control characters (but tab and line breaks) and invisible format characters: a NUL, an
# escape sequence, a zero-width space or a bidi override that makes text read differently.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e"
                        "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def names_in(text: Any) -> set[str]:
    """Every name-like word in an expression's text, even one that does not parse: what a
    broken expression would read, so the rest of the policy is not reported unused."""
    return set(_IDENTIFIER.findall(text)) if isinstance(text, str) else set()


def check_expression(text: Any, scope: Scope) -> tuple[CheckedExpression | None, list[ExprProblem]]:
    """Parse and check one expression. Returns the checked form, or None and the problems."""
    if isinstance(text, bool):
        text = "True" if text else "False"
    elif isinstance(text, int | Decimal):
        text = str(text)
    if not isinstance(text, str) or not text.strip():
        return None, [ExprProblem("E_EXPR_SYNTAX", "the expression is empty", 0)]
    if len(text) > MAX_LENGTH:
        return None, [ExprProblem("E_EXPR_TOO_COMPLEX",
                                  f"the expression is {len(text)} characters long; the limit is "
                                  f"{MAX_LENGTH}", 0, "split it into indicators")]
    invisible = _INVISIBLE.search(text)
    if invisible is not None:
        return None, [ExprProblem("E_EXPR_SYNTAX", f"an invisible or control character "
                                  f"(U+{ord(invisible.group()):04X}) is in the expression",
                                  invisible.start(), "retype the expression; it may look "
                                  "different from what it is")]
    try:
        source, literals = _prepare(text)
        tree = _parse(source)
    except _Stop as stop:
        return None, [stop.problem]
    checker = _Checker(text, source, literals, scope)
    try:
        result = checker.visit(tree.body, scope, 0)
    except _Stop as stop:
        checker.problems.append(stop.problem)
        result = ANY
    if checker.problems:
        return None, checker.problems
    return CheckedExpression(
        text=text, tree=tree, type=result,
        reads=frozenset(checker.reads), presence_reads=frozenset(checker.presence_reads),
        inner_reads=frozenset(checker.inner_reads),
        constants=dict(checker.constants), uses_broken=checker.uses_broken,
    ), []


def _parse(source: str) -> ast.Expression:
    try:
        with warnings.catch_warnings():  # '1if', '\\w': never printed to the user
            warnings.simplefilter("ignore")
            tree = ast.parse(source.strip() and source, mode="eval")
    except SyntaxError as exc:
        offset = _char_offset(source, (exc.offset or 1) - 1)
        message = exc.msg
        if "too many nested parentheses" in message:
            raise _Stop(ExprProblem("E_EXPR_TOO_COMPLEX", "the expression nests too deeply", 0,
                                    f"at most {MAX_DEPTH} levels")) from None
        if "unterminated string" in message:
            message = "a quoted string is never closed"
        elif "was never closed" in message:
            message = f"{message}: the expression ends before the bracket is closed"
        elif message.startswith("unmatched"):
            message = f"{message}: there is a closing bracket with no opening one"
        raise _Stop(ExprProblem("E_EXPR_SYNTAX", f"cannot parse: {message}", offset,
                                "check the operators, brackets and quotes around here")) from None
    except (RecursionError, MemoryError):
        raise _Stop(ExprProblem("E_EXPR_TOO_COMPLEX", "the expression nests too deeply", 0,
                                f"at most {MAX_DEPTH} levels")) from None
    except ValueError as exc:  # e.g. a NUL character
        raise _Stop(ExprProblem("E_EXPR_SYNTAX", f"cannot parse: {exc}", 0)) from None
    return tree


def _char_offset(source: str, byte_offset: int) -> int:
    """ast reports UTF-8 byte offsets; convert to a character offset."""
    encoded = source.encode("utf-8")
    return len(encoded[: max(0, byte_offset)].decode("utf-8", errors="ignore"))


def dotted_name(node: ast.AST) -> str | None:
    """'score.revenue' for the chain Attribute(Name('score'), 'revenue'); None otherwise."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


class _Checker:
    def __init__(self, text: str, source: str, literals: dict[int, bool], scope: Scope) -> None:
        self.text, self.source, self.literals = text, source, literals
        self.problems: list[ExprProblem] = []
        self.reads: set[str] = set()
        self.presence_reads: set[str] = set()
        self.inner_reads: set[str] = set()
        self.constants: dict[int, Decimal] = {}
        self.uses_broken = False
        self.items: dict[int, str] = {}  # id of a list-valued node -> the kind of its items

    def item_kind(self, node: ast.AST) -> str:
        """The kind of the items of a list-valued node (_MIXED when not all the same)."""
        if isinstance(node, ast.IfExp):
            body, orelse = self.item_kind(node.body), self.item_kind(node.orelse)
            return body if body == orelse else _MIXED
        return self.items.get(id(node), _MIXED)

    def at(self, node: ast.AST) -> int:
        return _char_offset(self.source, getattr(node, "col_offset", 0))

    def fail(self, node: ast.AST, code: str, message: str, hint: str = "") -> str:
        self.problems.append(ExprProblem(code, message, self.at(node), hint))
        return ANY

    def visit(self, node: ast.AST, scope: Scope, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise _Stop(ExprProblem("E_EXPR_TOO_COMPLEX", "the expression nests too deeply",
                                    self.at(node), f"at most {MAX_DEPTH} levels"))
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            what = _FORBIDDEN_NAMES.get(type(node), type(node).__name__)
            return self.fail(node, "E_EXPR_FORBIDDEN", f"{what} are not allowed in expressions"
                             if what.endswith("s") else f"'{what}' is not allowed in expressions")
        result: str = method(node, scope, depth + 1)
        return result

    # leaves ---------------------------------------------------------------------------------
    def visit_Constant(self, node: ast.Constant, scope: Scope, depth: int) -> str:
        value = node.value
        if isinstance(value, bool):
            return BOOLEAN
        if isinstance(value, int | float | complex):
            offset = self.at(node)
            end = _char_offset(self.source, node.end_col_offset or 0)
            literal = self.source[offset:end].rstrip("jJ")
            number = Decimal(literal)
            if self.literals.get(offset):
                number = number / 100
            self.constants[node.col_offset] = number
            return NUMBER
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                return self.fail(node, "E_EXPR_TOO_COMPLEX", f"a text of {len(value)} characters "
                                 f"is over the limit of {MAX_STRING}")
            return TEXT
        return self.fail(node, "E_EXPR_FORBIDDEN", f"{type(value).__name__} values are not allowed")

    def visit_Name(self, node: ast.Name, scope: Scope, depth: int) -> str:
        return self._name(node, node.id, scope)

    def visit_Attribute(self, node: ast.Attribute, scope: Scope, depth: int) -> str:
        name = dotted_name(node)
        if name is None:
            return self.fail(node, "E_EXPR_FORBIDDEN", "attribute access is not allowed",
                             "only qualified names such as score.revenue_attainment")
        return self._name(node, name, scope)

    def _name(self, node: ast.AST, name: str, scope: Scope) -> str:
        if "__" in name:
            return self.fail(node, "E_EXPR_FORBIDDEN", f"the name '{name}' is not allowed",
                             "names with double underscores are reserved")
        if name in scope.broken:
            self.uses_broken = True
            (self.inner_reads if scope.is_inner else self.reads).add(name)
            return ANY
        kind = scope.names.get(name)
        if kind is None:
            if name in FUNCTIONS:
                return self.fail(node, "E_EXPR_ARGUMENTS", f"'{name}' is a function; call it "
                                 f"as {name}(...)")
            prefix = name.rsplit(".", 1)[0] + "." if "." in name else ""
            candidates = [n for n in scope.names if n.startswith(prefix)] if prefix else [
                n for n in scope.names if "." not in n]
            return self.fail(node, "E_EXPR_UNKNOWN_NAME",
                             f"unknown name '{name}' in {scope.what}"
                             f"{did_you_mean(name, candidates or scope.names)}",
                             "declare it under facts or indicators, or fix the spelling")
        (self.inner_reads if scope.is_inner else self.reads).add(name)
        if kind == LIST:
            self.items[id(node)] = TEXT  # a fact of type list holds text items
        return kind

    # operators ------------------------------------------------------------------------------
    def visit_BinOp(self, node: ast.BinOp, scope: Scope, depth: int) -> str:
        op = _BINOPS.get(type(node.op))
        if op is None:
            if isinstance(node.op, ast.Mod):
                return self.fail(node, "E_EXPR_FORBIDDEN", "there is no modulo operator",
                                 "'%' right after a number means percent: 15%")
            return self.fail(node, "E_EXPR_FORBIDDEN",
                             f"the operator {type(node.op).__name__} is not allowed",
                             "use + - * / and ** with a small whole-number exponent")
        left = self.visit(node.left, scope, depth)
        if op == "**":
            exponent = _literal_int(node.right)
            if exponent is None or abs(exponent) > MAX_POWER:
                return self.fail(node.right, "E_EXPR_TOO_COMPLEX",
                                 f"the exponent of ** must be a whole number from -{MAX_POWER} "
                                 f"to {MAX_POWER}", "write the power out, e.g. x ** 2")
            self.visit(node.right, scope, depth)
            right = NUMBER
        else:
            right = self.visit(node.right, scope, depth)
        for side, kind in ((node.left, left), (node.right, right)):
            if kind not in (NUMBER, ANY):
                return self.fail(side, "E_EXPR_TYPE", f"'{op}' needs numbers, but this is "
                                 f"{_a(kind)}")
        return NUMBER

    def visit_UnaryOp(self, node: ast.UnaryOp, scope: Scope, depth: int) -> str:
        operand = self.visit(node.operand, scope, depth)
        if isinstance(node.op, ast.Not):
            if operand not in (BOOLEAN, ANY):
                return self.fail(node, "E_EXPR_TYPE", f"'not' needs true/false, not "
                                 f"{_a(operand)}")
            return BOOLEAN
        if isinstance(node.op, ast.USub | ast.UAdd):
            if operand not in (NUMBER, ANY):
                return self.fail(node, "E_EXPR_TYPE", f"a sign needs a number, not {_a(operand)}")
            return NUMBER
        return self.fail(node, "E_EXPR_FORBIDDEN", "the operator ~ is not allowed")

    def visit_BoolOp(self, node: ast.BoolOp, scope: Scope, depth: int) -> str:
        word = "and" if isinstance(node.op, ast.And) else "or"
        for value in node.values:
            kind = self.visit(value, scope, depth)
            if kind not in (BOOLEAN, ANY):
                self.fail(value, "E_EXPR_TYPE", f"'{word}' needs true/false on each side, not "
                          f"{_a(kind)}", "compare it, e.g. x > 0")
        return BOOLEAN

    def visit_Compare(self, node: ast.Compare, scope: Scope, depth: int) -> str:
        left = self.visit(node.left, scope, depth)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            symbol = _CMPOPS.get(type(op))
            if symbol is None:
                return self.fail(node, "E_EXPR_FORBIDDEN", f"'{type(op).__name__}' comparisons "
                                 "are not allowed", "use == != < <= > >= in")
            if symbol in ("in", "not in"):
                if not isinstance(comparator, ast.List | ast.Tuple):
                    right = self.visit(comparator, scope, depth)
                    if right not in (LIST, ANY):
                        return self.fail(comparator, "E_EXPR_TYPE",
                                         f"'{symbol}' needs a list on its right")
                else:
                    self.visit_List(comparator, scope, depth)
                left = ANY
                continue
            right = self.visit(comparator, scope, depth)
            if ANY not in (left, right) and left != right:
                return self.fail(comparator, "E_EXPR_TYPE",
                                 f"cannot compare {_a(left)} with {_a(right)}")
            if symbol not in ("==", "!=") and BOOLEAN in (left, right):
                return self.fail(comparator, "E_EXPR_TYPE", f"'{symbol}' cannot order true/false")
            if symbol not in ("==", "!=") and LIST in (left, right):
                return self.fail(comparator, "E_EXPR_TYPE", f"'{symbol}' cannot order lists",
                                 "compare a number taken from it, e.g. max(months(x)) > 1")
            left = right
        return BOOLEAN

    def visit_IfExp(self, node: ast.IfExp, scope: Scope, depth: int) -> str:
        test = self.visit(node.test, scope, depth)
        if test not in (BOOLEAN, ANY):
            self.fail(node.test, "E_EXPR_TYPE", f"the condition after 'if' must be true/false, not "
                      f"{_a(test)}")
        body = self.visit(node.body, scope, depth)
        orelse = self.visit(node.orelse, scope, depth)
        if ANY not in (body, orelse) and body != orelse:
            return self.fail(node, "E_EXPR_TYPE", f"the two branches give {_a(body)} and "
                             f"{_a(orelse)}")
        return body if body != ANY else orelse

    def visit_List(self, node: ast.List | ast.Tuple, scope: Scope, depth: int) -> str:
        if len(node.elts) > MAX_LIST:
            return self.fail(node, "E_EXPR_TOO_COMPLEX", f"a list of more than {MAX_LIST} items")
        kinds = {self.visit(element, scope, depth) for element in node.elts}
        self.items[id(node)] = kinds.pop() if len(kinds) == 1 else _MIXED
        return LIST

    visit_Tuple = visit_List

    def visit_Call(self, node: ast.Call, scope: Scope, depth: int) -> str:
        if not isinstance(node.func, ast.Name):
            return self.fail(node, "E_EXPR_FORBIDDEN", "only the functions in the table can be "
                             "called; methods and attributes cannot", "e.g. max(a, b)")
        name = node.func.id
        spec = FUNCTIONS.get(name)
        if "__" in name:
            return self.fail(node, "E_EXPR_FORBIDDEN", f"the name '{name}' is not allowed",
                             "names with double underscores are reserved")
        if spec is None:
            if name in scope.names:
                return self.fail(node, "E_EXPR_UNKNOWN_FUNCTION", f"'{name}' is not a function")
            return self.fail(node, "E_EXPR_UNKNOWN_FUNCTION",
                             f"unknown function '{name}'{did_you_mean(name, FUNCTIONS)}",
                             "available: " + ", ".join(sorted(FUNCTIONS)))
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            return self.fail(node, "E_EXPR_ARGUMENTS", f"{name}() takes plain arguments only, "
                             "no name=value or *")
        count = len(node.args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            expected = (str(spec.min_args) if spec.min_args == spec.max_args
                        else f"at least {spec.min_args}" if spec.max_args is None
                        else f"{spec.min_args} to {spec.max_args}")
            return self.fail(node, "E_EXPR_ARGUMENTS",
                             f"{name}() takes {expected} argument(s), got {count}")
        if spec.special == "presence":
            argument = node.args[0]
            fact = dotted_name(argument)
            if fact is None or fact not in scope.names:
                return self.fail(argument, "E_EXPR_ARGUMENTS",
                                 f"{name}() takes the name of a declared fact")
            self.presence_reads.add(fact)
            return BOOLEAN
        arguments = node.args
        if spec.special == "inner":
            if scope.inner is None:
                return self.fail(node, "E_EXPR_ARGUMENTS", f"{name}() cannot be used in "
                                 f"{scope.what}")
            inner = self.visit(node.args[0], scope.inner, depth)
            self.items[id(node)] = inner
            if spec.result == BOOLEAN and inner not in (BOOLEAN, ANY):
                self.fail(node.args[0], "E_EXPR_TYPE", f"{name}() needs a condition (true/false)"
                          f", not {_a(inner)}", "compare it, e.g. revenue > 0")
            arguments = node.args[1:]
            for argument in arguments:
                self.visit(argument, scope, depth)
            if name in ("last_periods", "consecutive_years"):
                count_value = _literal_int(node.args[1])
                if count_value is None or not 1 <= count_value <= 20:
                    return self.fail(node.args[1], "E_EXPR_ARGUMENTS",
                                     f"the second argument of {name}() is a whole number "
                                     "from 1 to 20")
                return spec.result
        for argument in arguments:
            kind = self.visit(argument, scope, depth)
            if kind not in (NUMBER, LIST, ANY):
                self.fail(argument, "E_EXPR_TYPE", f"{name}() needs numbers, not {_a(kind)}")
            elif kind == LIST:
                self.list_argument(node, name, argument)
        if name == "round":
            places = _literal_int(node.args[1])
            if places is None or not 0 <= places <= 6:
                return self.fail(node.args[1], "E_EXPR_ARGUMENTS",
                                 "round() takes a whole number of places from 0 to 6")
        return spec.result


    def list_argument(self, node: ast.Call, name: str, argument: ast.AST) -> None:
        """A list is the one argument of min, max, mean, sum or count, and holds numbers
        (count: anything); an empty list has no minimum, maximum or mean."""
        if name not in _AGGREGATES or len(node.args) != 1:
            self.fail(argument, "E_EXPR_ARGUMENTS", f"{name}() takes numbers, not a list" if
                      name not in _AGGREGATES else f"{name}() takes numbers, or one list alone",
                      "e.g. max(months(revenue)) or max(a, b)")
            return
        if isinstance(argument, ast.List | ast.Tuple) and not argument.elts:
            self.fail(argument, "E_EXPR_ARGUMENTS", f"{name}() of an empty list")
            return
        items = self.item_kind(argument)
        if name != "count" and items not in (NUMBER, ANY):
            self.fail(argument, "E_EXPR_TYPE", f"{name}() needs numbers, but this list holds "
                      + ("values of several kinds" if items == _MIXED else _a(items)))


def _a(kind: str) -> str:
    return {NUMBER: "a number", BOOLEAN: "true/false", TEXT: "text", DATE: "a date",
            LIST: "a list"}.get(kind, "a value")


def _literal_int(node: ast.AST) -> int | None:
    """A whole-number literal with its signs (`-2`); a loop, not recursion: a thousand signs
    in front of an exponent must not overflow the stack before the depth check sees them."""
    sign = 1
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -sign, node.operand
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return sign * node.value
    return None


# --------------------------------------------------------------------------------------------
# Compilation: a checked tree becomes the source of one Python function, compiled once.

Compiled = Callable[[Mapping[str, Any]], Any]


class MissingValue(Exception):
    """Raised by a compiled expression that meets a value missing in some month, period or
    year inside min(), sum(), every_month()...: the expression's value is missing."""


def compile_expression(checked: CheckedExpression) -> Compiled:
    """Turn a checked expression into a function of the environment. Never re-parses per call."""
    generator = _Generator(checked)
    body = generator.emit(checked.tree.body, "e")
    namespace: dict[str, Any] = {"__builtins__": {}, **_RUNTIME}
    namespace.update(generator.namespace())
    code = builtins_compile(f"def _expression(e):\n    return {body}\n", "<expression>", "exec")
    exec(code, namespace)  # our generated code over a checked tree; no user text reaches here
    function: Compiled = namespace["_expression"]
    return function


def expression_source(checked: CheckedExpression, local: Callable[[str], str], prefix: str,
                      series: str = "_series") -> tuple[str, dict[str, Any]]:
    """The checked expression as Python source for a larger generated function: each name it
    reads at the top level is the variable `local(name)` (a value, or MISSING), month-, period-
    and year-wise functions walk the mapping named `series` (with @months, @periods, @years),
    and the constants it needs are named with `prefix`. Returns the source and those constants
    (the runtime functions are RUNTIME)."""
    generator = _Generator(checked, local, prefix, series)
    return generator.emit(checked.tree.body, "e"), generator.namespace()


def builtins_compile(source: str, filename: str, mode: str) -> Any:
    import builtins

    return builtins.compile(source, filename, mode, dont_inherit=True)


class _Generator:
    """Python source of a checked tree. Names read at the top level are `e[name]`, or, given
    `local`, the variables it names; inside month-wise functions they are the month's entry."""

    def __init__(self, checked: CheckedExpression, local: Callable[[str], str] | None = None,
                 prefix: str = "", series: str = "e") -> None:
        self.constants = checked.constants
        self.local, self.prefix, self.series = local, prefix, series
        self.names: dict[str, tuple[str, ...]] = {}  # _n0: the names an inner argument reads

    def namespace(self) -> dict[str, Any]:
        """The constants and name lists the source refers to."""
        found: dict[str, Any] = {f"_k{self.prefix}{column}": value
                                 for column, value in self.constants.items()}
        found.update(self.names)
        return found

    def emit(self, node: ast.AST, env: str) -> str:
        top = env == "e" and self.local is not None
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return repr(node.value)
            if isinstance(node.value, str):
                return repr(node.value)
            assert node.col_offset in self.constants
            return f"_k{self.prefix}{node.col_offset}"
        if isinstance(node, ast.Name | ast.Attribute):
            name = dotted_name(node)
            assert name is not None
            return self.local(name) if top and self.local is not None else f"{env}[{name!r}]"
        if isinstance(node, ast.BinOp):
            return f"({self.emit(node.left, env)} {_BINOPS[type(node.op)]} " \
                   f"{self.emit(node.right, env)})"
        if isinstance(node, ast.UnaryOp):
            symbol = {ast.Not: "not ", ast.USub: "-", ast.UAdd: "+"}[type(node.op)]
            return f"({symbol}{self.emit(node.operand, env)})"
        if isinstance(node, ast.BoolOp):
            word = " and " if isinstance(node.op, ast.And) else " or "
            return "(" + word.join(self.emit(v, env) for v in node.values) + ")"
        if isinstance(node, ast.Compare):
            parts = [self.emit(node.left, env)]
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                parts += [_CMPOPS[type(op)], self.emit(comparator, env)]
            return "(" + " ".join(parts) + ")"
        if isinstance(node, ast.IfExp):
            return f"({self.emit(node.body, env)} if {self.emit(node.test, env)} " \
                   f"else {self.emit(node.orelse, env)})"
        if isinstance(node, ast.List | ast.Tuple):
            return "(" + "".join(self.emit(v, env) + ", " for v in node.elts) + ")"
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            name = node.func.id
            spec = FUNCTIONS[name]
            if spec.special == "presence":
                if top and self.local is not None:
                    return f"({self.local(str(dotted_name(node.args[0])))} is _MISSING)"
                return f"_f_is_missing({env}, {dotted_name(node.args[0])!r})"
            if spec.special == "inner":
                inner_env = env + "_"
                inner = f"(lambda {inner_env}: {self.emit(node.args[0], inner_env)})"
                names = f"_n{self.prefix}{len(self.names)}"
                self.names[names] = tuple(sorted(_value_reads(node.args[0])))
                rest = "".join(", " + self.emit(a, env) for a in node.args[1:])
                walks = self.series if top else env
                return f"_f_{name}({walks}, {inner}, {names}{rest})"
            args = ", ".join(self.emit(a, env) for a in node.args)
            return f"_f_{name}({args})"
        raise AssertionError(f"unchecked node {type(node).__name__}")  # pragma: no cover


def _value_reads(node: ast.AST) -> set[str]:
    """The names whose value an expression reads (not those only tested by is_missing)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        spec = FUNCTIONS.get(node.func.id)
        if spec is not None and spec.special == "presence":
            return set()
        return set().union(*(_value_reads(a) for a in node.args))
    name = dotted_name(node) if isinstance(node, ast.Name | ast.Attribute) else None
    if name is not None:
        return {name}
    return set().union(*(_value_reads(child) for child in ast.iter_child_nodes(node)))


def _flatten(values: Sequence[Any]) -> list[Any]:
    if len(values) == 1 and isinstance(values[0], tuple | list):
        return list(values[0])
    return list(values)


def _numbers(values: Sequence[Any], *, some: bool = True) -> list[Any]:
    """The items to aggregate; a missing one (a month without the fact) makes it missing, and
    so does having none when `some` are needed (the min of no months has no value)."""
    items = _flatten(values)
    if (some and not items) or any(item is MISSING for item in items):
        raise MissingValue()
    return items


def _f_min(*values: Any) -> Any:
    return min(_numbers(values))


def _f_max(*values: Any) -> Any:
    return max(_numbers(values))


def _f_sum(*values: Any) -> Any:
    return sum(_numbers(values, some=False), Decimal(0))


def _f_mean(*values: Any) -> Any:
    items = _numbers(values)
    return sum(items, Decimal(0)) / len(items)


def _f_count(*values: Any) -> Any:
    return Decimal(sum(1 for v in _flatten(values) if v is not MISSING and v is not False))


def _f_abs(value: Any) -> Any:
    return abs(value)


def _f_round(value: Decimal, places: Decimal) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)


def _f_clamp(value: Any, low: Any, high: Any) -> Any:
    return max(low, min(high, value))


def _f_safe_div(numerator: Any, denominator: Any, fallback: Any) -> Any:
    return fallback if denominator == 0 else numerator / denominator


def _f_is_missing(env: Mapping[str, Any], name: str) -> bool:
    return env.get(name, MISSING) is MISSING


def _present(entry: Mapping[str, Any], names: tuple[str, ...]) -> bool:
    return all(entry.get(name, MISSING) is not MISSING for name in names)


def _each(entries: Sequence[Mapping[str, Any]], inner: Compiled, names: tuple[str, ...]
          ) -> tuple[Any, ...]:
    """inner's value in each month or period; MISSING where a name it reads is missing."""
    return tuple(inner(entry) if _present(entry, names) else MISSING for entry in entries)


def _f_months(env: Mapping[str, Any], inner: Compiled, names: tuple[str, ...]
              ) -> tuple[Any, ...]:
    return _each(env["@months"], inner, names)


def _f_every_month(env: Mapping[str, Any], inner: Compiled, names: tuple[str, ...]) -> bool:
    """False when a month fails; missing when none fails but one is missing."""
    results = _each(env["@months"], inner, names)
    if not results or any(result is False for result in results):
        return False
    if any(result is MISSING for result in results):
        raise MissingValue()
    return True


def _f_any_month(env: Mapping[str, Any], inner: Compiled, names: tuple[str, ...]) -> bool:
    """True when a month holds; missing when none holds but one is missing."""
    results = _each(env["@months"], inner, names)
    if any(result is True for result in results):
        return True
    if any(result is MISSING for result in results):
        raise MissingValue()
    return False


def _f_last_periods(env: Mapping[str, Any], inner: Compiled, names: tuple[str, ...],
                    count: Decimal) -> tuple[Any, ...]:
    return _each(env["@periods"][-int(count):], inner, names)


def _f_consecutive_years(env: Mapping[str, Any], inner: Compiled, names: tuple[str, ...],
                         count: Decimal) -> bool:
    """A year with no data, or without a value the condition reads, breaks the run."""
    years = env["@years"][-int(count):]
    return len(years) == int(count) and all(
        y is not None and _present(y, names) and inner(y) is True for y in years)


_RUNTIME: Final[dict[str, Any]] = {
    name: value for name, value in globals().items() if name.startswith("_f_")
}
RUNTIME: Final[Mapping[str, Any]] = {**_RUNTIME, "_MISSING": MISSING}  # what sources call

# Which environment entry each month-, period- or year-wise function walks.
SERIES: Final = {"months": "@months", "every_month": "@months", "any_month": "@months",
                 "last_periods": "@periods", "consecutive_years": "@years"}


def series_read(function: Compiled) -> frozenset[str]:
    """The entries (@months, @periods, @years) a compiled expression walks: for tracing, which
    records each month's, period's or year's values. Reads the generated code's names only."""
    code = getattr(function, "__code__", None)
    names = set(code.co_names) if code is not None else set()
    return frozenset(key for name, key in SERIES.items() if f"_f_{name}" in names)


__all__ = [
    "ANY",
    "BOOLEAN",
    "DATE",
    "FUNCTIONS",
    "LIST",
    "MISSING",
    "NUMBER",
    "RUNTIME",
    "TEXT",
    "CheckedExpression",
    "Compiled",
    "ExprProblem",
    "MissingValue",
    "Scope",
    "check_expression",
    "compile_expression",
    "dotted_name",
    "expression_source",
    "names_in",
    "series_read",
]
