"""Names a package exports but loads on first use (PEP 562 module ``__getattr__``), and
modules that moved, still importable under their old name for one release.

``import chaosnet`` (or ``import chaosnet.retry``, which imports the package
first) must not pull in the harness's third-party dependencies, and
``python -m chaosnet.servers`` must not pay for psutil: their ``__init__``
declares where each name lives and this loads the module when the name is
first read. Standard library only.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType


def lazy_exports(
    package: str, homes: Mapping[str, tuple[str, ...]], namespace: dict[str, object]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose names live in the modules of
    ``homes`` (module -> names); a loaded name is cached in ``namespace``."""
    module_of = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str) -> object:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *module_of})

    return __getattr__, __dir__


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import old.name`` gives the module now at its new name: the same module object,
    so ``old.name.X is new.name.X``. No file stays at the old path."""

    def __init__(self, moved: Mapping[str, str]) -> None:
        self.moved = dict(moved)

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name not in self.moved:
            return None
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.moved[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        return None  # already executed under its new name


def keep_old_module_names(moved: Mapping[str, str]) -> None:
    """Let each old module name (key) import the module now at the new one (value)."""
    if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
        sys.meta_path.append(_MovedModules(moved))
