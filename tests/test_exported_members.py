"""The public surface of each package with lazy exports is its `__all__` (in the spirit of httpx's test)."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = ["orchestrator", "tools", "tools.llm", "indexes"]


def _exports(name: str) -> list[str]:
    pkg = importlib.import_module(name)
    exported = getattr(pkg, "__all__", None)
    if exported is None:
        pytest.skip(f"{name} has no __all__ yet")
    return list(exported)


@pytest.mark.parametrize("package", PACKAGES)
def test_all_lists_unique_names_that_resolve(package):
    pkg = importlib.import_module(package)
    exported = _exports(package)
    assert len(exported) == len(set(exported)), "duplicate names in __all__"
    for name in exported:
        try:
            getattr(pkg, name)
        except AttributeError:
            pytest.fail(f"{package}.__all__ names {name!r}, which does not exist")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_member_is_exported(package):
    pkg = importlib.import_module(package)
    exported = set(_exports(package))
    public = {
        k
        for k, v in vars(pkg).items()
        if not k.startswith("_")
        and not isinstance(v, types.ModuleType)
        and k not in ("annotations", "importlib", "Any")
    }
    assert public <= exported, f"public but not in __all__: {sorted(public - exported)}"


def test_orchestrator_all_is_sorted():
    import orchestrator

    assert orchestrator.__all__ == sorted(orchestrator.__all__, key=str.casefold)
