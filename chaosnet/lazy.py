"""Names a package exports but loads on first use (PEP 562 module ``__getattr__``).

``import chaosnet`` (or ``import chaosnet.retry``, which imports the package
first) must not pull in the harness's third-party dependencies, and
``python -m chaosnet.servers`` must not pay for psutil: their ``__init__``
declares where each name lives and this loads the module when the name is
first read. Standard library only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


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
