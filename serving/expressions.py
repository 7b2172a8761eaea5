"""Safe expressions over features and scores, for eligibility rules and segments (never ``eval``).

Marketing writes rules such as ``churn_score > 0.5 and recency_days > 30`` in YAML. The text is parsed
with :mod:`ast` and only a small whitelist of nodes is accepted: comparisons (including chained ones),
``and``/``or``/``not``, arithmetic (``+ - * / % **``, unary minus), names of known features and scores,
numeric, string and boolean literals, and ``in`` / ``not in`` with a literal list or tuple. Calls,
attributes, subscripts, comprehensions, lambdas and names starting with an underscore are rejected when
the expression is compiled, so an expression can never run code.

A compiled :class:`Expression` evaluates either on one mapping (one person, plain Python, microseconds)
or on columns of many persons at once (numpy, for segments and batches). An expression that reads a
missing value (None or NaN) is *not satisfied*: a rule about something we do not know never admits.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Expression", "ExpressionError", "compile_expression"]

MAX_LENGTH = 1_000
MAX_NODES = 200
MAX_EXPONENT = 64


class ExpressionError(ValueError):
    """The expression text is not a safe, well-formed rule; the message names the offending part."""


_COMPARE: dict[type, Callable] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_BINARY: dict[type, Callable] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Mod: operator.mod, ast.Pow: operator.pow,
}


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class _Missing(Exception):
    """Raised inside scalar evaluation when a name has no value; the expression is then False."""


@dataclass(frozen=True)
class Expression:
    """A validated expression; ``names`` are the features and scores it reads."""

    text: str
    names: frozenset[str]
    _scalar: Callable = field(repr=False, compare=False)
    _vector: Callable = field(repr=False, compare=False)

    def evaluate(self, values: Mapping[str, object] | None) -> bool:
        """True when the rule holds for one person; False when it does not or reads a missing value."""
        if values is None:
            return False
        try:
            return bool(self._scalar(values))
        except (_Missing, TypeError, ZeroDivisionError, OverflowError, ValueError):
            return False

    def evaluate_columns(self, columns: Mapping[str, np.ndarray], n_rows: int) -> np.ndarray:
        """Boolean mask of shape (n_rows,) over column arrays; rows with a missing input are False."""
        known = np.ones(n_rows, dtype=bool)
        for name in self.names:
            if name not in columns:
                return np.zeros(n_rows, dtype=bool)
            column = np.asarray(columns[name])
            if column.dtype.kind == "f":
                known &= ~np.isnan(column)
            elif column.dtype.kind == "O":
                known &= np.array([not _missing(v) for v in column], dtype=bool)
        with np.errstate(all="ignore"):
            try:
                result = np.broadcast_to(np.asarray(self._vector(columns), dtype=bool), (n_rows,))
            except (TypeError, ValueError, OverflowError, ZeroDivisionError):
                return np.zeros(n_rows, dtype=bool)
        return result & known


def compile_expression(text: str, known_names: Iterable[str] | None = None) -> Expression:
    """Parse and validate ``text``; with ``known_names``, any other name is an error naming it."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"expression must be a non-empty string, got {text!r}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"invalid syntax in {text!r}: {exc.msg}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ExpressionError(f"expression {text!r} has more than {MAX_NODES} parts")
    names: set[str] = set()
    scalar = _Compiler(names, vector=False).build(tree.body)
    vector = _Compiler(set(), vector=True).build(tree.body)
    if known_names is not None:
        known = set(known_names)
        unknown = sorted(names - known)
        if unknown:
            raise ExpressionError(f"unknown names {unknown} in {text!r}")
    return Expression(text=text.strip(), names=frozenset(names), _scalar=scalar, _vector=vector)


class _Compiler:
    """Turns a whitelisted AST into nested closures (scalar or numpy semantics)."""

    def __init__(self, names: set[str], vector: bool):
        self.names = names
        self.vector = vector

    def build(self, node: ast.AST) -> Callable:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise ExpressionError(f"{type(node).__name__} is not allowed in an expression "
                                  f"(only comparisons, and/or/not, arithmetic, names and literals)")
        return method(node)

    def _Constant(self, node: ast.Constant) -> Callable:
        value = node.value
        if not isinstance(value, (int, float, str, bool)):
            raise ExpressionError(f"literal {value!r} is not allowed")
        return lambda _values: value

    def _Name(self, node: ast.Name) -> Callable:
        name = node.id
        if name.startswith("_"):
            raise ExpressionError(f"name {name!r} is not allowed (no private or dunder names)")
        if name in {"True", "False"}:
            return lambda _values: name == "True"
        self.names.add(name)
        if self.vector:
            return lambda values: values[name]

        def read(values):
            value = values.get(name)
            if _missing(value):
                raise _Missing(name)
            return value

        return read

    def _BoolOp(self, node: ast.BoolOp) -> Callable:
        parts = [self.build(v) for v in node.values]
        if self.vector:
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or

            def vector_op(values):
                result = np.asarray(parts[0](values), dtype=bool)
                for part in parts[1:]:
                    result = combine(result, np.asarray(part(values), dtype=bool))
                return result

            return vector_op
        if isinstance(node.op, ast.And):
            return lambda values: all(bool(p(values)) for p in parts)
        return lambda values: any(bool(p(values)) for p in parts)

    def _UnaryOp(self, node: ast.UnaryOp) -> Callable:
        inner = self.build(node.operand)
        if isinstance(node.op, ast.Not):
            if self.vector:
                return lambda values: np.logical_not(np.asarray(inner(values), dtype=bool))
            return lambda values: not inner(values)
        if isinstance(node.op, ast.USub):
            return lambda values: -inner(values)
        if isinstance(node.op, ast.UAdd):
            return lambda values: +inner(values)
        raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")

    def _BinOp(self, node: ast.BinOp) -> Callable:
        op = _BINARY.get(type(node.op))
        if op is None:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        left, right = self.build(node.left), self.build(node.right)
        is_pow = isinstance(node.op, ast.Pow)

        def arithmetic(values):
            a, b = left(values), right(values)
            if isinstance(a, str) or isinstance(b, str):
                raise TypeError("arithmetic on strings is not allowed")
            if is_pow and np.any(np.abs(np.asarray(b, dtype=np.float64)) > MAX_EXPONENT):
                raise OverflowError(f"exponent above {MAX_EXPONENT}")
            return op(a, b)

        return arithmetic

    def _Compare(self, node: ast.Compare) -> Callable:
        operands = [self.build(node.left)]
        ops = []
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)):
                operands.append(self._literal_list(comparator))
                ops.append(self._membership(isinstance(op, ast.NotIn)))
                continue
            fn = _COMPARE.get(type(op))
            if fn is None:
                raise ExpressionError(f"comparison {type(op).__name__} is not allowed")
            operands.append(self.build(comparator))
            ops.append(fn)
        vector = self.vector

        def compare(values):
            result = True
            left = operands[0](values)
            for fn, operand in zip(ops, operands[1:], strict=True):
                right = operand(values)
                outcome = fn(left, right)
                if vector:
                    result = np.logical_and(result, outcome)
                elif not outcome:
                    return False
                left = right
            return result

        return compare

    def _membership(self, negate: bool) -> Callable:
        vector = self.vector

        def member(left, options):
            if vector:
                inside = np.isin(np.asarray(left), np.asarray(options))
                return ~inside if negate else inside
            inside = left in options
            return not inside if negate else inside

        return member

    def _literal_list(self, node: ast.AST) -> Callable:
        if not isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            raise ExpressionError("'in' needs a literal list such as [1, 2, 3]")
        values = []
        for element in node.elts:
            if isinstance(element, ast.UnaryOp) and isinstance(element.op, ast.USub) \
                    and isinstance(element.operand, ast.Constant):
                element = ast.Constant(-element.operand.value)
            if not isinstance(element, ast.Constant) or not isinstance(element.value, (int, float, str, bool)):
                raise ExpressionError("'in' lists may hold only numeric, string or boolean literals")
            values.append(element.value)
        frozen = tuple(values)
        return lambda _values: frozen
