"""Where each value of a YAML document is: ``file:line:col`` for every key and value.

The document is composed into PyYAML nodes (which carry marks) and then
constructed with the same safe constructor ``yaml.safe_load`` uses, so the
data is exactly what ``safe_load`` would return. A second walk over the
nodes records the mark of every key and value by its path in the data, and
notices duplicate keys, which ``safe_load`` would silently collapse.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DataPath = tuple[Hashable, ...]
MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_DEPTH = 64  # a scenario nests a handful of levels; PyYAML's composer recurses per level
MAX_NODES = 100_000  # values after alias expansion (a billion-laughs file has 10**9)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file, where it is, in compiler style."""

    file: Path
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


@dataclass
class Positions:
    """1-based (line, col) of every key and value, by data path."""

    file: Path
    keys: dict[DataPath, tuple[int, int]] = field(default_factory=dict)
    values: dict[DataPath, tuple[int, int]] = field(default_factory=dict)

    def of(self, path: DataPath, *, key: bool = False) -> tuple[int, int]:
        """The position of ``path`` (its key when ``key``), or of its nearest known parent."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            table = self.keys if key and end == len(path) else self.values
            if prefix in table:
                return table[prefix]
        return (1, 1)

    def problem(self, path: DataPath, message: str, *, key: bool = False) -> Problem:
        line, col = self.of(path, key=key)
        return Problem(self.file, line, col, message)


class YamlDocument:
    """A parsed scenario file: ``data`` as ``yaml.safe_load`` gives it, and its positions."""

    def __init__(self, data: Any, positions: Positions, problems: list[Problem]) -> None:
        self.data = data
        self.positions = positions
        self.problems = problems


def parse_yaml(text: str, file: Path) -> YamlDocument:
    """Parse one YAML document; a syntax error becomes a :class:`Problem`, not an exception."""
    positions = Positions(file)
    try:
        loader = yaml.SafeLoader(text)  # refuses non-printable characters at once
    except yaml.reader.ReaderError as exc:
        return YamlDocument(None, positions, [_reader_problem(exc, text, file)])
    try:
        bound = _check_bounds(text, file)
        if bound is not None:
            return YamlDocument(None, positions, [bound])
        node = loader.get_single_node()
        problems: list[Problem] = []
        if node is None:
            return YamlDocument(None, positions, problems)
        # Positions first: construction flattens merge keys (<<) in place.
        _record(loader, node, (), positions, problems)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        return YamlDocument(None, positions, [_syntax_problem(exc, file)])
    except yaml.reader.ReaderError as exc:
        return YamlDocument(None, positions, [_reader_problem(exc, text, file)])
    except yaml.YAMLError as exc:
        return YamlDocument(None, positions, [Problem(file, 1, 1, f"YAML error: {exc}")])
    finally:
        loader.dispose()
    return YamlDocument(data, positions, problems)


def _check_bounds(text: str, file: Path) -> Problem | None:
    """Nesting depth and alias expansion, from the parser's events (iterative, linear).

    Both are checked before composing: PyYAML composes nodes recursively (20,000
    nested ``[`` exhaust the stack), and aliases make the data a graph whose walk
    is exponential in the file's size (billion laughs).
    """
    sizes: dict[str, int] = {}  # anchor -> values it expands to
    stack: list[list[int]] = []  # per open collection: [values inside, anchor index]
    anchors: list[str | None] = []
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                return _bound_problem(file, event, f"nested deeper than {MAX_DEPTH} levels")
            stack.append([1])
            anchors.append(event.anchor)
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            size = stack.pop()[0]
            anchor = anchors.pop()
        elif isinstance(event, yaml.ScalarEvent):
            size, anchor = 1, event.anchor
        elif isinstance(event, yaml.AliasEvent):
            size, anchor = sizes.get(event.anchor or "", 1), None
        else:
            continue
        if anchor is not None:
            sizes[anchor] = size
        if stack:
            stack[-1][0] += size
            if stack[-1][0] > MAX_NODES:
                return _bound_problem(
                    file, event, f"aliases expand to more than {MAX_NODES} values"
                )
    return None


def _bound_problem(file: Path, event: yaml.Event, message: str) -> Problem:
    mark = event.start_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return Problem(file, line, col, f"YAML too complex: {message}")


def _reader_problem(exc: yaml.reader.ReaderError, text: str, file: Path) -> Problem:
    """A character YAML does not allow (NUL, other control characters), where it is."""
    before = text[: exc.position]
    line = before.count("\n") + 1
    col = exc.position - (before.rfind("\n") + 1) + 1
    return Problem(file, line, col, f"YAML error: character #x{exc.character:04x} is not allowed")


def _syntax_problem(exc: yaml.MarkedYAMLError, file: Path) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    if exc.problem and exc.context and exc.problem.startswith("but "):
        what = f"{exc.context}, {exc.problem}"
    elif exc.problem and exc.context:
        what = f"{exc.problem} ({exc.context})"
    else:
        what = exc.problem or exc.context or "syntax error"
    return Problem(file, line, col, f"YAML syntax error: {what}")


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _record(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: DataPath,
    positions: Positions,
    problems: list[Problem],
    depth: int = 0,
) -> None:
    positions.values.setdefault(path, _mark(node))
    if depth > 100:  # an alias cycle or absurd nesting: positions this deep do not matter
        return
    if isinstance(node, yaml.MappingNode):
        seen: dict[Hashable, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:  # merged keys are positioned at their parent
                continue
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue
            where = _mark(key_node)
            if key in seen:
                line, col = where
                problems.append(
                    Problem(
                        positions.file,
                        line,
                        col,
                        f"duplicate key {key!r} (first at line {seen[key][0]})",
                    )
                )
                continue
            seen[key] = where
            positions.keys.setdefault((*path, key), where)
            _record(loader, value_node, (*path, key), positions, problems, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record(loader, item, (*path, index), positions, problems, depth + 1)
