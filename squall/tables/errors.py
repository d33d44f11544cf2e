"""Errors of the table service, each carrying the AWS error code a client sees.

    TableError                      code + message, as DynamoDB returns them
    ├── ValidationError             ValidationException: malformed input or expression
    ├── ConditionalCheckFailed      ConditionalCheckFailedException: a condition was false
    ├── ResourceNotFound            ResourceNotFoundException: no such table
    ├── ResourceInUse               ResourceInUseException: the table exists / is declared
    ├── AccessDenied                AccessDeniedException: not granted to the caller
    └── TransactionCanceled         TransactionCanceledException, with a reason per action
"""

from __future__ import annotations


class TableError(Exception):
    """Base of the table service's errors: `code` is the AWS error code."""

    code = "InternalServerError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(TableError):
    """The request or one of its expressions is invalid."""

    code = "ValidationException"


class ConditionalCheckFailed(TableError):
    """A ConditionExpression evaluated to false."""

    code = "ConditionalCheckFailedException"

    def __init__(self, message: str = "The conditional request failed") -> None:
        super().__init__(message)


class ResourceNotFound(TableError):
    """The table does not exist."""

    code = "ResourceNotFoundException"


class ResourceInUse(TableError):
    """The table already exists, or is declared in a project and cannot be changed here."""

    code = "ResourceInUseException"


class AccessDenied(TableError):
    """The caller's credential does not grant the table or the operation."""

    code = "AccessDeniedException"


class TransactionCanceled(TableError):
    """A TransactWriteItems action failed; `reasons` has one entry per action, in order."""

    code = "TransactionCanceledException"

    def __init__(self, reasons: list[dict[str, str]]) -> None:
        codes = ", ".join(reason["Code"] for reason in reasons)
        super().__init__(f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]")
        self.reasons = reasons
