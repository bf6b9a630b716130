"""``-k PATTERN``: choose scenarios by name or file, as pytest's ``-k`` chooses tests.

A word matches a scenario when it occurs (case-insensitively) in its name or
its file path; words combine with ``and``, ``or``, ``not`` and parentheses:
``-k "reset and not slow"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from chaosnet.errors import ChaosnetError
from chaosnet.scenario.loader import LoadedScenario

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
Predicate = Callable[[str], bool]


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = _TOKEN.findall(expression)
        self.pos = 0

    def parse(self) -> Predicate:
        if not self.tokens:
            raise self._error("empty expression")
        predicate = self._or()
        if self.pos != len(self.tokens):
            raise self._error(f"unexpected {self.tokens[self.pos]!r}")
        return predicate

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise self._error("it ends too early")
        self.pos += 1
        return token

    def _or(self) -> Predicate:
        return self._joined("or", self._and, any)

    def _and(self) -> Predicate:
        return self._joined("and", self._not, all)

    def _joined(
        self, word: str, operand: Callable[[], Predicate], combine: Callable[[Iterable[bool]], bool]
    ) -> Predicate:
        """One precedence level: operands joined by ``word``, their values combined."""
        terms = [operand()]
        while self._peek() == word:
            self.pos += 1
            terms.append(operand())
        return lambda text: combine(term(text) for term in terms)

    def _not(self) -> Predicate:
        if self._peek() == "not":
            self.pos += 1
            inner = self._not()
            return lambda text: not inner(text)
        return self._atom()

    def _atom(self) -> Predicate:
        token = self._take()
        if token == "(":
            inner = self._or()
            if self._take() != ")":
                raise self._error("missing ')'")
            return inner
        if token in (")", "and", "or"):
            raise self._error(f"unexpected {token!r}")
        word = token.lower()
        return lambda text: word in text

    def _error(self, why: str) -> ChaosnetError:
        return ChaosnetError(f"-k {self.expression!r}: {why}")


def select(scenarios: Sequence[LoadedScenario], expression: str | None) -> list[LoadedScenario]:
    """The scenarios ``expression`` matches; all of them when it is None."""
    if expression is None:
        return list(scenarios)
    predicate = _Parser(expression).parse()
    chosen = [s for s in scenarios if predicate(f"{s.name} {s.path.as_posix()}".lower())]
    if not chosen:
        names = ", ".join(s.name for s in scenarios)
        raise ChaosnetError(f"-k {expression!r} matches no scenario (there are: {names})")
    return chosen
