"""Loading late, once: lazy package exports, a thread-safe load-once property (and `Holds`, to close
its value again safely), and one resolver for "module:Class" references (backends, encoders and
pipelines a user names in the config)."""

from __future__ import annotations

import contextlib
import importlib
import threading
from typing import Any, Callable, Generic, Iterator, TypeVar, overload

__all__ = ["Holds", "lazy_exports", "load_once", "resolve"]

T = TypeVar("T")


def lazy_exports(
    package: str, where: dict[str, str], namespace: dict[str, Any], exported: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`: `where` maps each name to its module."""

    def __getattr__(name: str) -> Any:
        if name in where:
            value = getattr(importlib.import_module(where[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(exported)

    return __getattr__, __dir__


class load_once(Generic[T]):  # noqa: N801 - used as a decorator, like `property`
    """A property whose value is built on first access, once per instance, even when several
    threads ask at the same time (double-checked under a per-instance lock). `del obj.name`
    forgets it, so the next access builds it again.

        class Tool:
            @load_once
            def index(self) -> TextIndex:
                return TextIndex.open(self.path)
    """

    def __init__(self, build: Callable[[Any], T]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.name = build.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> "load_once[T]": ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...

    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        slot = f"_once_{self.name}"
        state = obj.__dict__
        if slot in state:
            return state[slot]
        lock = state.setdefault(f"_once_lock_{self.name}", threading.Lock())  # setdefault is atomic
        with lock:
            if slot not in state:
                state[slot] = self.build(obj)
        return state[slot]

    def __set__(self, obj: Any, value: T) -> None:
        obj.__dict__[f"_once_{self.name}"] = value

    def __delete__(self, obj: Any) -> None:
        obj.__dict__.pop(f"_once_{self.name}", None)

    @staticmethod
    def loaded(obj: Any, name: str) -> bool:
        """Whether `obj.<name>` has been built (without building it)."""
        return f"_once_{name}" in obj.__dict__

    @staticmethod
    def take(obj: Any, name: str) -> Any:
        """Forget `obj.<name>` and return what it held (None when it was not built)."""
        return obj.__dict__.pop(f"_once_{name}", None)


class Holds:
    """Calls in flight on the `load_once` value `owner.<name>`, so it can be closed without pulling
    it from under one of them. Each use runs inside `hold()`; `release()` forgets the value (the next
    access loads it again) and closes it now when no call holds it, else when the last one ends.

        with self._holds.hold() as llm:     # llm = self.llm, kept open until the block ends
            ...
    """

    def __init__(self, owner: Any, name: str, close: Callable[[Any], None]) -> None:
        self._owner, self._name, self._close = owner, name, close
        self._cond = threading.Lock()
        self._held = 0
        self._pending = False

    @contextlib.contextmanager
    def hold(self) -> Iterator[Any]:
        with self._cond:
            self._held += 1
        value = None
        try:
            yield getattr(self._owner, self._name)
        finally:
            with self._cond:
                self._held -= 1
                if self._pending and self._held == 0:
                    self._pending = False
                    value = load_once.take(self._owner, self._name)
            if value is not None:
                self._close(value)

    def release(self) -> bool:
        """Close the value (now, or when the calls holding it end); False when nothing was loaded."""
        with self._cond:
            if not load_once.loaded(self._owner, self._name):
                return False
            if self._held:
                self._pending = True
                return True
            value = load_once.take(self._owner, self._name)
        self._close(value)
        return True


def resolve(ref: str, what: str = "object") -> Any:
    """The object a "package.module:Name" reference names. Raises `ConfigError` (one line) when
    the module or the name is missing."""
    from polymodal.errors import ConfigError

    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"'{ref}' is not a 'package.module:Name' reference for the {what}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import the {what} '{ref}': {exc}") from exc
    return obj
