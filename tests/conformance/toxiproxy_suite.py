"""Toxiproxy's own HTTP API test-suite (``api_test.go`` of v2.12.0), run against any server.

Nothing of Toxiproxy is committed: the module comes from ``go mod download`` into
Go's module cache, is copied to a scratch directory and patched there:

- its ``WithServer`` helper (which starts an in-process server on port 8475) is
  renamed out of the way, and a ``WithServer`` of our own (written below, in Go)
  points every test at ``TOXIPROXY_SUITE_URL`` and deletes all proxies around
  each test, as the original clears its collection;
- the hard-coded ``http://…:8475`` addresses become that URL;
- the version test compares against ``toxiproxy.Version`` (set by the same
  ``-X`` ldflag the server is built with) instead of the ``"git"`` of a flagless
  build, so the comparison stays byte for byte and fair;
- the package's other test files (unit tests of Go internals) are removed.

Each edit checks that its anchor is present exactly as expected, so a changed
upstream fails loudly here instead of testing something else. The compiled test
binary is cached in ``.tools/`` (keyed by this file's content), so the Go build
happens once per machine.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests import toolchain

SUITE_FILE = "api_test.go"
#: Files kept from the package's tests: the suite and the helper it calls (AssertProxyUp).
KEPT_TEST_FILES = frozenset({SUITE_FILE, "toxiproxy_test.go"})
EXPECTED_TESTS = 34
URL_VARIABLE = "TOXIPROXY_SUITE_URL"
BUILD_TIMEOUT_S = 480
RUN_TIMEOUT_S = 180
CACHE = toolchain.ROOT / ".tools" / "toxiproxy-api-suite"
#: The suite listens on fixed ports (3310, 7070, ...): one run at a time per machine.
RUN_LOCK = CACHE / "run.lock"

EXTERNAL_SERVER_GO = f"""package toxiproxy_test

// Written by chaosnet's driver: run the suite against an external server.

import (
\t"os"
\t"testing"
)

var externalURL = os.Getenv("{URL_VARIABLE}")

func deleteAllProxies(t *testing.T) {{
\tproxies, err := client.Proxies()
\tif err != nil {{
\t\tt.Fatal("listing proxies to clear the server:", err)
\t}}
\tfor _, proxy := range proxies {{
\t\tif err := proxy.Delete(); err != nil {{
\t\t\tt.Fatal("deleting proxy to clear the server:", err)
\t\t}}
\t}}
}}

func WithServer(t *testing.T, f func(string)) {{
\tif externalURL == "" {{
\t\tt.Fatal("{URL_VARIABLE} is not set")
\t}}
\tdeleteAllProxies(t)
\tdefer deleteAllProxies(t)
\tf(externalURL)
}}
"""

#: (anchor, replacement, how many times the anchor must occur)
EDITS: tuple[tuple[str, str, int], ...] = (
    ("func WithServer(", "func withInProcessServer(", 1),
    ('"http://127.0.0.1:8475"', "externalURL", 1),
    ('"http://localhost:8475', 'externalURL + "', 4),
    (
        '"{\\"version\\": \\"git\\"}\\n"',
        '"{\\"version\\": \\"" + toxiproxy.Version + "\\"}\\n"',
        1,
    ),
)


class SuiteError(Exception):
    """The suite could not be prepared (download, patch or build)."""


@dataclass(frozen=True)
class SuiteResult:
    passed: frozenset[str]
    failed: frozenset[str]
    skipped: frozenset[str]
    expected: frozenset[str]
    output: str

    def summary(self) -> str:
        return (
            f"{len(self.passed)}/{len(self.expected)} passed; "
            f"failed: {sorted(self.failed) or 'none'}; skipped: {sorted(self.skipped) or 'none'}"
        )

    def failure_output(self, limit: int = 6000) -> str:
        """The ``-v`` lines of the failed tests (their assertion messages), bounded."""
        kept = [
            line
            for line in self.output.splitlines()
            if any(name in line for name in self.failed) or line.startswith(("    ", "\t"))
        ]
        return "\n".join(kept)[-limit:]


def patch_module(source: Path, target: Path) -> frozenset[str]:
    """Copy the module to ``target``, patch it; return the names of the suite's tests."""
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)  # the module cache is read-only
    for test_file in target.glob("*_test.go"):
        if test_file.name not in KEPT_TEST_FILES:
            test_file.unlink()
    suite = target / SUITE_FILE
    text = suite.read_text()
    for anchor, replacement, count in EDITS:
        found = text.count(anchor)
        if found != count:
            raise SuiteError(f"{SUITE_FILE}: expected {count} x {anchor!r}, found {found}")
        text = text.replace(anchor, replacement)
    suite.write_text(text)
    (target / "external_server_test.go").write_text(EXTERNAL_SERVER_GO)
    names = frozenset(re.findall(r"^func (Test\w+)\(t \*testing\.T\)", text, re.MULTILINE))
    if len(names) != EXPECTED_TESTS:
        raise SuiteError(f"{SUITE_FILE}: expected {EXPECTED_TESTS} tests, found {len(names)}")
    return names


def _module_dir(go: str) -> Path:
    module = f"{toolchain.TOXIPROXY_MODULE}@v{toolchain.TOXIPROXY_VERSION}"
    done = _go([go, "mod", "download", "-json", module], cwd=None, what="go mod download")
    return Path(json.loads(done)["Dir"])


def _go(argv: list[str], cwd: Path | None, what: str) -> str:
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod"),
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        raise SuiteError(f"{what} failed:\n{(exc.stdout + exc.stderr)[-3000:]}") from None
    except subprocess.TimeoutExpired:
        raise SuiteError(f"{what} did not finish in {BUILD_TIMEOUT_S} s") from None
    return done.stdout


def build(go: str) -> tuple[Path, frozenset[str]]:
    """The compiled, patched suite (cached) and its test names."""
    key = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    binary, names_file = CACHE / key / "api.test", CACHE / key / "tests.json"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers build once
        if not binary.exists():
            with tempfile.TemporaryDirectory(prefix="toxiproxy-suite-") as scratch:
                module = Path(scratch) / "toxiproxy"
                names = patch_module(_module_dir(go), module)
                output = Path(scratch) / "api.test"
                ldflags = f"-ldflags={toolchain.toxiproxy_ldflags()}"
                _go([go, "test", "-c", ldflags, "-o", str(output), "."], module, "go test -c")
                binary.parent.mkdir(parents=True, exist_ok=True)
                names_file.write_text(json.dumps(sorted(names)))
                shutil.move(output, binary)
    return binary, frozenset(json.loads(names_file.read_text()))


def run(binary: Path, names: frozenset[str], url: str) -> SuiteResult:
    """Run every test of the suite against the server at ``url``; parse ``-test.v``."""
    pattern = "^(" + "|".join(sorted(names)) + ")$"
    with open(RUN_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(
            [str(binary), "-test.v", "-test.count=1", f"-test.run={pattern}", "-test.timeout=150s"],
            cwd=binary.parent,
            env=dict(os.environ, **{URL_VARIABLE: url}),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
    output = done.stdout + done.stderr
    outcomes: dict[str, set[str]] = {"PASS": set(), "FAIL": set(), "SKIP": set()}
    for outcome, name in re.findall(r"^\s*--- (PASS|FAIL|SKIP): (\S+)", output, re.MULTILINE):
        outcomes[outcome].add(name)
    return SuiteResult(
        passed=frozenset(outcomes["PASS"]),
        failed=frozenset(outcomes["FAIL"]),
        skipped=frozenset(outcomes["SKIP"]),
        expected=names,
        output=output,
    )
