"""Errors of the edge package. Device code cannot import `polymodal`, so these live here;
`tools/edge_query.py` maps them onto `polymodal.errors.DeviceOffline/DeviceTimeout/DeviceError`.

    EdgeError
    ├── BrokerUnavailable      mosquitto missing, or the broker cannot be reached / refuses us
    ├── UnknownDevice          no registered device has that id, name or alias
    ├── DeviceOfflineError     the registry says the device is offline
    ├── DeviceTimeoutError     no reply within the timeout
    └── DeviceReplyError       the device answered with an error (`code` says which)
"""

from __future__ import annotations

__all__ = [
    "EdgeError",
    "BrokerUnavailable",
    "UnknownDevice",
    "DeviceOfflineError",
    "DeviceTimeoutError",
    "DeviceReplyError",
    "RequestError",
]


class EdgeError(Exception):
    def __str__(self) -> str:  # one line, always
        return " ".join(super().__str__().split())


class BrokerUnavailable(EdgeError):
    pass


class UnknownDevice(EdgeError):
    pass


class DeviceOfflineError(EdgeError):
    pass


class DeviceTimeoutError(EdgeError):
    pass


class DeviceReplyError(EdgeError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RequestError(EdgeError):
    """Raised by a capability on the device for a bad request; becomes an error reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
