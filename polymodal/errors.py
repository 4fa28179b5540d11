"""The one exception tree of polymodal.

Two channels (as in smolagents / LangGraph): a `PolymodalError` is something a user or the
planner can fix and is shown as one clear line; anything else is a programming error and raises.

    PolymodalError
    ├── ConfigError                  bad or unreadable config value
    ├── ModelUnavailable             weights or runtime not present: says what to configure
    │   └── MissingExtra             an optional extra is not installed: says which
    ├── StoreError                   persistent index / knowledge-base problems
    │   ├── EmbedderMismatch         index was built with another embedder / dimension
    │   └── StoreCorrupt             unrecoverable on-disk state
    ├── InputError                   bad user input: path, file, argument
    │   └── UnsupportedFile          a file ingestion cannot read (corrupt, binary, huge...)
    ├── ToolError                    a tool could not do its job (wraps a user-facing reason)
    ├── PlanError                    the planner's plan is invalid and could not be repaired
    │   └── PlanRefused              a tool refused the plan's arguments (e.g. a device not registered)
    ├── DeviceError                  edge device problems
    │   ├── DeviceOffline
    │   └── DeviceTimeout
    └── Cancelled                    the user cancelled a long operation, or its step timed out
"""

from __future__ import annotations

__all__ = [
    "PolymodalError",
    "ConfigError",
    "ModelUnavailable",
    "MissingExtra",
    "StoreError",
    "EmbedderMismatch",
    "StoreCorrupt",
    "InputError",
    "UnsupportedFile",
    "ToolError",
    "PlanError",
    "PlanRefused",
    "DeviceError",
    "DeviceOffline",
    "DeviceTimeout",
    "Cancelled",
    "require",
]


class PolymodalError(Exception):
    """Base of every user-facing error. `str(err)` is one line meant for a person."""

    def __str__(self) -> str:  # one line, always
        return " ".join(super().__str__().split())


class ConfigError(PolymodalError):
    pass


class ModelUnavailable(PolymodalError):
    pass


class MissingExtra(ModelUnavailable):
    def __init__(self, extra: str, module: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"'{module}' is not installed{what}: install the extra with pip install 'polymodal[{extra}]'")
        self.extra = extra
        self.module = module


class StoreError(PolymodalError):
    pass


class EmbedderMismatch(StoreError):
    pass


class StoreCorrupt(StoreError):
    pass


class InputError(PolymodalError):
    pass


class UnsupportedFile(InputError):
    pass


class ToolError(PolymodalError):
    pass


class PlanError(PolymodalError):
    pass


class PlanRefused(PlanError):
    pass


class DeviceError(PolymodalError):
    pass


class DeviceOffline(DeviceError):
    pass


class DeviceTimeout(DeviceError):
    pass


class Cancelled(PolymodalError):
    pass


def require(module: str, extra: str, purpose: str = ""):
    """Import `module` or raise `MissingExtra` naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(extra, module, purpose) from exc
