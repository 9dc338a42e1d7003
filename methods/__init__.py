"""Methods: one module per method, discovered automatically.

Adding a method = adding ``methods/<name>.py`` with one subclass of a base
class of :mod:`methods.base` whose ``name`` is set (:mod:`methods.egnn` is the
model module to follow; shared layers are in :mod:`methods.nn`).  Nothing else to register:
the generic test (``tests/test_methods_generic.py``) then runs it on every
tiny fixture dataset, and suites can name it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from methods.base import Budget, GraphMethod, LatentSequenceMethod, Method, PyGMethod, TorchMethod

_SKIP_MODULES = {"base", "layers", "nn"}  # not methods: contract, old import path, layers


def _discover() -> dict[str, type[Method]]:
    registry: dict[str, type[Method]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in _SKIP_MODULES or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            # a class registers under the ``name`` it sets itself (a subclass inheriting it does not)
            if issubclass(cls, Method) and cls.__module__ == module.__name__ and cls.__dict__.get("name"):
                if cls.name in registry:
                    raise RuntimeError(f"method name {cls.name!r} registered twice "
                                       f"({registry[cls.name].__module__}, {module.__name__})")
                registry[cls.name] = cls
    return dict(sorted(registry.items()))


REGISTRY: dict[str, type[Method]] = _discover()


def make_method(name: str, params: dict | None = None) -> Method:
    if name not in REGISTRY:
        raise KeyError(f"unknown method {name!r}; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name](**(params or {}))


__all__ = ["REGISTRY", "Budget", "GraphMethod", "LatentSequenceMethod", "Method", "PyGMethod", "TorchMethod",
           "make_method"]
