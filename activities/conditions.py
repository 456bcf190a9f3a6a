"""A metric's `condition`: a small expression language, parsed here and never `eval`ed.

    condition  := or
    or         := and (("||" | "or") and)*
    and        := not (("&&" | "and") not)*
    not        := ("!" | "not") not | comparison | "(" or ")"
    comparison := sum ("<" | "<=" | ">" | ">=" | "==" | "!=") sum
    sum        := product (("+" | "-") product)*
    product    := atom (("*" | "/") atom)*
    atom       := number | "result" | "baseline" | "-" atom | "(" sum ")"

`result` is the measured value; `baseline` the stable revision's value over the same window
(only where the metric asks for a baseline). Examples: `result < 0.05`,
`result >= 99 && result <= 100`, `result <= baseline * 1.2 + 0.5`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from activities.errors import BadInput

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<op><=|>=|==|!=|&&|\|\||[<>!()+\-*/])|(?P<word>[A-Za-z_]+))"
)
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": lambda a, b: a / b if b else math.copysign(math.inf, a) if a else math.nan,
}
VARIABLES = ("result", "baseline")


class ConditionError(BadInput):
    """The condition does not parse, or uses a value that is not there."""


# The parsed forms: numbers, variables, arithmetic, comparisons and logic.
@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Variable:
    name: str


@dataclass(frozen=True)
class Arithmetic:
    op: str
    left: Value
    right: Value


@dataclass(frozen=True)
class Comparison:
    op: str
    left: Value
    right: Value


@dataclass(frozen=True)
class Logic:
    op: str  # "and", "or", "not" (right is None for "not")
    left: Test
    right: Test | None = None


Value = Number | Variable | Arithmetic
Test = Comparison | Logic


@dataclass(frozen=True)
class Condition:
    source: str
    tree: Test

    def variables(self) -> set[str]:
        return _variables_of(self.tree)

    def holds(self, **values: float) -> bool:
        """Evaluates with `values` (result, baseline); NaN compares false, as in PromQL."""
        missing = self.variables() - values.keys()
        if missing:
            raise ConditionError(f"condition {self.source!r} needs {', '.join(sorted(missing))}")
        return _test(self.tree, values)


def parse(source: str) -> Condition:
    tokens = _tokenize(source)
    parser = _Parser(source, tokens)
    tree = parser.logic_or()
    if parser.position != len(tokens):
        raise ConditionError(
            f"condition {source!r}: unexpected {tokens[parser.position]!r} after a full expression"
        )
    return Condition(source, tree)


def _tokenize(source: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    source_end = len(source.rstrip())
    while position < source_end:
        match = _TOKEN.match(source, position)
        if match is None or match.end() == position:
            raise ConditionError(
                f"condition {source!r}: cannot read {source[position:].strip()[:20]!r}"
            )
        tokens.append(match.group(match.lastgroup or 0))
        position = match.end()
    if not tokens:
        raise ConditionError("condition is empty")
    return tokens


class _Parser:
    def __init__(self, source: str, tokens: list[str]) -> None:
        self.source = source
        self.tokens = tokens
        self.position = 0

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise ConditionError(f"condition {self.source!r} ends too early")
        self.position += 1
        return token

    def _expect(self, token: str) -> None:
        if self._take() != token:
            raise ConditionError(f"condition {self.source!r}: expected {token!r}")

    def logic_or(self) -> Test:
        tree = self.logic_and()
        while self._peek() in ("||", "or"):
            self._take()
            tree = Logic("or", tree, self.logic_and())
        return tree

    def logic_and(self) -> Test:
        tree = self.logic_not()
        while self._peek() in ("&&", "and"):
            self._take()
            tree = Logic("and", tree, self.logic_not())
        return tree

    def logic_not(self) -> Test:
        if self._peek() in ("!", "not"):
            self._take()
            return Logic("not", self.logic_not())
        if self._peek() == "(" and self._parenthesised_test():
            self._take()
            tree = self.logic_or()
            self._expect(")")
            return tree
        return self.comparison()

    def _parenthesised_test(self) -> bool:
        """Whether the "(" here opens a test, not arithmetic: try the test, then rewind."""
        start = self.position
        try:
            self._take()
            self.logic_or()
            self._expect(")")
            return self._peek() not in (*_COMPARISONS, *_ARITHMETIC)
        except ConditionError:
            return False
        finally:
            self.position = start

    def comparison(self) -> Comparison:
        left = self.sum()
        op = self._take()
        if op not in _COMPARISONS:
            raise ConditionError(
                f"condition {self.source!r}: expected a comparison (<, <=, >, >=, ==, !=), "
                f"got {op!r}"
            )
        return Comparison(op, left, self.sum())

    def sum(self) -> Value:
        tree = self.product()
        while self._peek() in ("+", "-"):
            op = self._take()
            tree = Arithmetic(op, tree, self.product())
        return tree

    def product(self) -> Value:
        tree = self.atom()
        while self._peek() in ("*", "/"):
            op = self._take()
            tree = Arithmetic(op, tree, self.atom())
        return tree

    def atom(self) -> Value:
        token = self._take()
        if token == "-":
            return Arithmetic("-", Number(0), self.atom())
        if token == "(":
            tree = self.sum()
            self._expect(")")
            return tree
        if token in VARIABLES:
            return Variable(token)
        try:
            return Number(float(token))
        except ValueError:
            known = " or ".join(VARIABLES)
            raise ConditionError(
                f"condition {self.source!r}: {token!r} is not a number, {known}"
            ) from None


def _value(tree: Value, values: dict[str, float]) -> float:
    match tree:
        case Number(value=value):
            return value
        case Variable(name=name):
            return values[name]
        case Arithmetic(op=op, left=left, right=right):
            return _ARITHMETIC[op](_value(left, values), _value(right, values))


def _test(tree: Test, values: dict[str, float]) -> bool:
    match tree:
        case Comparison(op=op, left=left, right=right):
            return _COMPARISONS[op](_value(left, values), _value(right, values))
        case Logic(op="not", left=left):
            return not _test(left, values)
        case Logic(op="and", left=left, right=right):
            assert right is not None
            return _test(left, values) and _test(right, values)
        case Logic(left=left, right=right):
            assert right is not None
            return _test(left, values) or _test(right, values)


def _variables_of(tree: Test | Value) -> set[str]:
    match tree:
        case Number():
            return set()
        case Variable(name=name):
            return {name}
        case Arithmetic(left=left, right=right) | Comparison(left=left, right=right):
            return _variables_of(left) | _variables_of(right)
        case Logic(left=left, right=right):
            return _variables_of(left) | (_variables_of(right) if right is not None else set())
