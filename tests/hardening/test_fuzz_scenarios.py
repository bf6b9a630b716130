"""Issue 14 fuzzer: scenario files, mutated from the bundled ones by their grammar, plus
hostile YAML. Each input goes through ``chaosnet validate`` (in process, as ``main``
runs it); a rejected file must give exit status 2 and nothing but ``file:line:col:``
problem lines and the summary, and nothing may raise. Every rejected input also goes
through ``chaosnet run``, which must refuse it the same way before starting anything
(no child process left). ~20 s in CI; see ``budget.py``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaosnet.cli import main
from tests.hardening import budget

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = sorted((ROOT / "scenarios").glob("*.yaml"))
EXIT_OK, EXIT_USAGE = 0, 2
SUMMARY = re.compile(r"^chaosnet: \d+ problems? in \d+ files?; nothing was run$")
EXAMPLES_PER_ROUND = 20

pytestmark = pytest.mark.timeout(budget.timeout())

HOSTILE_VALUES: list[Any] = [
    1.0e300,
    -1,
    0,
    -0.0,
    1e-320,
    2**64,
    "8GiB",
    "1e300s",
    "-5ms",
    "²",
    "٣",
    "",
    " ",
    None,
    True,
    [],
    {},
    [[[[]]]],
    "x" * 10_000,
    "10.255.255.1:9",
    "a..b:9",
    "127.0.0.1:²",
    "127.0.0.1:99999",
    "[::1]:0",
    "localhost:70000",
    "nan",
    "inf",
    ".inf",
    1e-9,
    "0B",
    {"<<": {}},
    "../../etc/passwd",
    "os:system",
    "builtins:eval",
]
HOSTILE_TEXTS = [
    "[" * 5000,
    "a: &a ["
    + ",".join(["x"] * 50)
    + "]\n"
    + "".join(
        f"{n}: &{n} [" + ",".join([f"*{p}"] * 50) + "]\n"
        for p, n in zip("abcd", "bcde", strict=True)
    ),
    "- " * 3000 + "x\n",
    "\t name: x\n",
    "name: [unclosed\n",
    "!!python/object/apply:os.system ['true']\n",
    "key: !!binary AAAA\n",
    "\ufeffname: bom\n",
    "a: 1\na: 2\n",
    "? [complex, key]\n: value\n",
    "%YAML 1.1\n---\na: 1\n---\nb: 2\n",
]


def paths_in(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths_in(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += paths_in(value, (*prefix, index))
    return found


def mutate(data: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    data = copy.deepcopy(data)
    if not path:
        return value if how == "replace" else data
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif how == "unknown" and isinstance(parent, dict):
        parent[f"{last}_typo"] = value
    elif how == "wrap":
        parent[last] = [parent[last]]
    return data


@st.composite
def scenario_texts(draw: st.DrawFn) -> str:
    source = draw(st.sampled_from(BUNDLED))
    text = source.read_text()
    kind = draw(st.sampled_from(["grammar", "grammar", "grammar", "text", "hostile"]))
    if kind == "hostile":
        return draw(st.sampled_from(HOSTILE_TEXTS))
    if kind == "text":
        cut = draw(st.integers(0, len(text)))
        insert = draw(st.sampled_from(["", ":", "- ", "[", "{", "&a ", "*a ", "\t", "\0", "'"]))
        return text[:cut] + insert + text[cut + draw(st.integers(0, 5)) :]
    data = yaml.safe_load(text)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths_in(data)))
        how = draw(st.sampled_from(["replace", "replace", "delete", "unknown", "wrap"]))
        value = draw(st.one_of(st.sampled_from(HOSTILE_VALUES), st.integers(), st.floats()))
        data = mutate(data, path, how, value)
    return yaml.safe_dump(data, allow_unicode=True)


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(args))
    return status, out.getvalue(), err.getvalue()


def assert_refused(status: int, err: str, path: Path) -> None:
    assert status == EXIT_USAGE, err
    lines = err.strip().splitlines()
    assert lines, "refused without saying why"
    assert SUMMARY.match(lines[-1]), lines[-1]
    for line in lines[:-1]:
        assert re.match(rf"^{re.escape(str(path))}:\d+:\d+: \S", line), line


def test_fuzz_scenario_files(tmp_path: Path) -> None:
    limit = budget.Budget("scenarios")
    path = tmp_path / "fuzzed.yaml"
    me = psutil.Process()

    @settings(
        max_examples=EXAMPLES_PER_ROUND,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(text=scenario_texts())
    def one_file(text: str) -> None:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        limit.count()
        status, _, err = run_cli("validate", str(path))
        if status == EXIT_OK:
            return  # a mutation that is still a valid scenario
        assert_refused(status, err, path)
        before = {child.pid for child in me.children()}  # an xdist worker's session servers
        status, _, err = run_cli("run", str(path), "--plain")
        assert_refused(status, err, path)
        started = [child for child in me.children() if child.pid not in before]
        assert not started, f"chaosnet run started {started} for a file it refused"

    while not limit.spent:
        one_file()
    limit.report()
    assert limit.inputs > 0


def test_every_bundled_file_is_valid() -> None:
    for source in BUNDLED:
        status, _, err = run_cli("validate", str(source))
        assert status == EXIT_OK, err
