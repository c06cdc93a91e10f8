"""sbatch's --constraint expression, read as Slurm reads it, evaluated to GPU models.

Slurm evaluates `&` (AND) and `|` (OR) strictly left to right with no precedence
(`a|b&c` is `(a|b)&c`), parentheses group, and a bracketed `[a|b]` (matching OR) asks
that every node share one of the features. Arkwright places a job's GPUs in one
homogeneous pool and its features are GPU models, so a matching OR is a plain OR here.
Counts (`a*2`: so many nodes with a feature) and brackets around anything but an OR of
names ask for a mix of nodes within one job, which no pool is: they are refused, saying
so. Nothing here knows the fleet: `lookup` gives each name's models.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_TOKEN = re.compile(r"\s*(?:([A-Za-z0-9_.+:-]+)|(\S))")
MAX_DEPTH = 16  # a script needs two or three; a hostile one stays off the stack limit
_OPS = {"&": frozenset.__and__, "|": frozenset.__or__}


class ConstraintError(ValueError):
    """The expression cannot be read, or asks for what no pool is."""


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        name, other = match.groups()
        if name is not None:
            out.append(name)
        elif other is not None:
            if other == "*":
                raise ConstraintError(
                    "counts (feature*N) ask for a number of nodes with a feature; a job's "
                    "nodes here are all of one pool, so counts are not supported"
                )
            if other not in "&|()[]":
                raise ConstraintError(
                    f"{other!r} is not part of a constraint (use names with & | ( ) [ ])"
                )
            out.append(other)
    return out


class _Reader:
    def __init__(self, tokens: list[str], lookup: Callable[[str], frozenset[str]]) -> None:
        self.tokens = tokens
        self.at = 0
        self.depth = 0
        self.lookup = lookup

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ConstraintError("ends where a name should follow")
        self.at += 1
        return token

    def expression(self, closing: str | None) -> frozenset[str]:
        """term (op term)*, left to right, up to `closing` (or the end)."""
        value = self.term()
        while (token := self.peek()) is not None and token != closing:
            if token not in _OPS:
                raise ConstraintError(f"expected & or | before {token!r}")
            self.at += 1
            if closing == "]" and token != "|":
                raise ConstraintError(
                    "a bracket [a|b] holds only names joined by |; [a&b] asks for a mix "
                    "of nodes within one job, which no pool is"
                )
            value = _OPS[token](value, self.term())
        if closing is not None:
            if self.peek() != closing:
                raise ConstraintError(f"a {'(' if closing == ')' else '['} is not closed")
            self.at += 1
        return value

    def term(self) -> frozenset[str]:
        token = self.take()
        if token in "([":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ConstraintError(f"nested deeper than {MAX_DEPTH}")
            if token == "[" and self.peek() in ("[", "("):
                raise ConstraintError("a bracket [a|b] holds only names joined by |")
            value = self.expression(")" if token == "(" else "]")
            self.depth -= 1
            return value
        if token in "&|)]":
            raise ConstraintError(f"{token!r} where a name should be")
        return self.lookup(token)


def evaluate(text: str, lookup: Callable[[str], frozenset[str]]) -> frozenset[str]:
    """The GPU models `text` admits; `lookup(name)` gives one name's models (or raises)."""
    tokens = _tokens(text)
    if not tokens:
        raise ConstraintError("empty")
    reader = _Reader(tokens, lookup)
    value = reader.expression(None)
    if reader.peek() is not None:
        raise ConstraintError(f"unexpected {reader.peek()!r}")
    return value
