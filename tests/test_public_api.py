"""chaosnet's public face: the names ``chaosnet`` exports, loaded lazily, and primitives that
import nothing outside the standard library even when the harness's dependencies are absent.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

import chaosnet
import chaosnet.servers

ROOT = Path(__file__).resolve().parents[1]
#: What the harness may import and the primitives must not (pyproject's dependencies).
BLOCKED = ("aiohttp", "pydantic", "yaml", "psutil", "rich", "docker", "requests", "uvloop")
PRIMITIVES = ["chaosnet", "chaosnet.address", "chaosnet.retry", "chaosnet.framing"]
PRIMITIVES += ["chaosnet.connection", "chaosnet.datagram"]

# Run in a fresh interpreter: a finder first on sys.meta_path refuses the blocked packages,
# then the modules are imported and whatever non-stdlib module came with them is listed.
CHILD = """
import importlib, importlib.abc, json, sys

blocked, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in blocked:
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, Blocked())
before = set(sys.modules)
failures = {}
for module in modules:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        failures[module] = str(exc)
came = sorted(
    name for name in set(sys.modules) - before
    if name.partition(".")[0] not in sys.stdlib_module_names | {"chaosnet"}
)
print(json.dumps({"failures": failures, "third_party": came}))
"""


def import_with_dependencies_blocked(modules: list[str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(BLOCKED), json.dumps(modules)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_primitives_import_with_the_harness_dependencies_blocked() -> None:
    result = import_with_dependencies_blocked(PRIMITIVES)
    assert result == {"failures": {}, "third_party": []}


def test_the_blocker_does_refuse_a_harness_module() -> None:
    """The check above is only worth something if a module that needs psutil fails there."""
    result = import_with_dependencies_blocked(["chaosnet.servers.process", "chaosnet.leaks"])
    assert result["failures"] == {
        "chaosnet.servers.process": "psutil is blocked in this test",
        "chaosnet.leaks": "psutil is blocked in this test",
    }


def _declared(package: ModuleType) -> tuple[set[str], set[str]]:
    """The names a lazy package declares for type checkers (its ``if TYPE_CHECKING:``
    imports) and those it loads at run time (``_HOMES``)."""
    assert package.__file__ is not None
    tree = ast.parse(Path(package.__file__).read_text())
    typed: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for child in node.body:
                assert isinstance(child, ast.ImportFrom)
                typed |= {alias.asname or alias.name for alias in child.names}
    homes: dict[str, tuple[str, ...]] = package._HOMES
    return typed, {name for names in homes.values() for name in names}


@pytest.mark.parametrize("package", [chaosnet, chaosnet.servers], ids=lambda p: p.__name__)
def test_a_lazy_package_declares_each_name_once_everywhere(package: ModuleType) -> None:
    typed, loaded = _declared(package)
    assert typed == loaded == set(package.__all__)
    for name in package.__all__:
        assert getattr(package, name) is not None
    assert set(package.__all__) <= set(dir(package))


def test_the_public_names_are_the_ones_a_user_needs() -> None:
    assert 40 <= len(chaosnet.__all__) <= 60
    from chaosnet.chaos import Chaos
    from chaosnet.proxy.embedded import EmbeddedServer
    from chaosnet.retry import RetryPolicy
    from chaosnet.servers.process import ServerProcess

    assert (chaosnet.Chaos, chaosnet.EmbeddedServer) == (Chaos, EmbeddedServer)
    assert (chaosnet.RetryPolicy, chaosnet.ServerProcess) == (RetryPolicy, ServerProcess)


def test_an_unknown_name_is_a_clear_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'chaosnet' has no attribute 'Chas'"):
        _ = chaosnet.Chas  # type: ignore[attr-defined]


def test_names_renamed_in_0_2_still_work_for_one_release() -> None:
    import chaosnet.chaos
    import chaosnet.control
    import chaosnet.controller  # the module's old name

    assert chaosnet.controller is chaosnet.chaos
    assert chaosnet.controller.Proxy is chaosnet.chaos.ProxyHandle is chaosnet.Proxy
    assert chaosnet.control.ConnectionRecord is chaosnet.control.ConnectionInfo
    assert chaosnet.control.ConnectionLog is chaosnet.control.ConnectionLogInfo
    assert set(chaosnet.MOVED_MODULES) == {"chaosnet.controller"}


def test_an_old_module_name_imports_in_a_fresh_interpreter() -> None:
    """The alias must not depend on the new module having been imported first."""
    code = "from chaosnet.controller import Chaos, Proxy; print(Chaos.__module__, Proxy.__name__)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["chaosnet.chaos", "ProxyHandle"]


def test_the_version_is_declared_once() -> None:
    # pyproject.toml takes it from chaosnet/version.py, so the installed metadata agrees.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]
    assert importlib.metadata.version("chaosnet") == chaosnet.__version__
