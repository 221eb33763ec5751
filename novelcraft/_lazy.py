"""Lazy package exports: a name is imported from its module on first access, so importing a package
loads no heavy dependency (tokenizer, torch, numpy, a model)."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str], namespace: MutableMapping[str, Any], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a name to the submodule defining it.

    A name that is no export but a submodule gives the submodule (``novelcraft.bench`` without importing
    it first), so an attribute of the package never depends on what was imported before.
    """
    names = sorted(set(public))

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            if name.isidentifier() and not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}"):
                return importlib.import_module(f"{package}.{name}")  # the import binds it in the package too
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__
