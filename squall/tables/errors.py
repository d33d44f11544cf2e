"""Errors of the table service, each carrying the AWS error code a client sees.

    TableError                      code + message, as DynamoDB returns them
    ├── ValidationError             ValidationException: malformed input or expression
    └── ConditionalCheckFailed      ConditionalCheckFailedException: a condition was false
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
