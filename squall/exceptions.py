"""The platform's error hierarchy; every error a user sees derives from SquallError.

    SquallError
    ├── BadInput                 the user's input is wrong (exit code 2, HTTP 400/422)
    │   ├── ManifestError        squall.yaml is invalid: carries file, line and field
    │   ├── BundleError          the uploaded project cannot be unpacked or built
    │   ├── SettingError         a SQUALL_* environment variable has a bad value
    │   └── DeployRejected       a function failed its deploy check (import error)
    ├── NotFound                 an unknown function, version, ... (HTTP 404)
    ├── Conflict                 the request clashes with what is stored (HTTP 409)
    ├── Throttled                a concurrency cap was reached (HTTP 429)
    ├── PayloadTooLarge          a request or response body is over the limit (HTTP 413)
    └── StoreError               the store failed; nothing was half-written
"""

from __future__ import annotations


class SquallError(Exception):
    """Base of every error squall raises on purpose."""

    status_code = 500
    exit_code = 1

    @property
    def kind(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, object]:
        return {"type": self.kind, "message": str(self)}


class BadInput(SquallError):
    status_code = 400
    exit_code = 2


class ManifestError(BadInput):
    """squall.yaml is invalid. `str()` reads `file:line: field: what is wrong`."""

    status_code = 422

    def __init__(self, message: str, *, file: str = "squall.yaml", line: int | None = None,
                 field: str | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "file": self.file, "line": self.line, "field": self.field}


class BundleError(BadInput):
    status_code = 400


class SettingError(BadInput):
    """A SQUALL_* environment variable (`name`) has a value its type does not take
    (squall/settings.py); the message names the variable and the value."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


class DeployRejected(BadInput):
    """A function of the deploy failed its check; nothing of the deploy was applied."""

    status_code = 422


class NotFound(SquallError):
    status_code = 404


class Conflict(SquallError):
    status_code = 409
    exit_code = 2


class Throttled(SquallError):
    status_code = 429


class PayloadTooLarge(SquallError):
    status_code = 413
    exit_code = 2


class StoreError(SquallError):
    status_code = 503
