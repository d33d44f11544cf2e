"""KeyConditionExpression: a Query's partition key equality and optional sort key condition,
checked against the table's key schema and returned in a form the storage layer can run."""

from __future__ import annotations

from dataclasses import dataclass

from squall.tables.errors import ValidationError
from squall.tables.expressions import (And, Between, Compare, Condition, Function, In, Not, Operand, Or, Path,
                                       Placeholders, Value, ensure_ordered_bounds, parse_condition)
from squall.tables.values import AttributeValue, type_of


@dataclass(frozen=True)
class SortCondition:
    """The sort key part of a key condition; op is =, <, <=, >, >=, BETWEEN or begins_with."""

    name: str
    op: str
    values: tuple[AttributeValue, ...]


@dataclass(frozen=True)
class KeyCondition:
    """A Query's key condition: partition key equality and an optional sort condition."""

    partition_name: str
    partition_value: AttributeValue
    sort: SortCondition | None = None


_KEY = "KeyConditionExpression"


def parse_key_condition(
    text: str, placeholders: Placeholders, partition_key: str, sort_key: str | None = None
) -> KeyCondition:
    """Parse a KeyConditionExpression against the table's key schema."""
    parts = [_key_part(p) for p in _conjuncts(parse_condition(text, placeholders, _KEY))]
    if len(parts) > 2:
        raise ValidationError(f"Invalid {_KEY}: Conditions can be of length 1 or 2 only")
    if len(parts) == 2 and parts[0].name == parts[1].name:
        raise ValidationError(f"Invalid {_KEY}: KeyConditionExpressions must only contain one condition per key")
    partition = [p for p in parts if p.name == partition_key]
    if not partition:
        raise ValidationError(f"Query condition missed key schema element: {partition_key}")
    if partition[0].op != "=":
        raise ValidationError("Query key condition not supported")
    others = [p for p in parts if p.name != partition_key]
    if others and others[0].name != sort_key:
        missing = sort_key if sort_key is not None else others[0].name
        raise ValidationError(f"Query condition missed key schema element: {missing}")
    return KeyCondition(partition_key, partition[0].values[0], others[0] if others else None)


def _conjuncts(condition: Condition) -> list[Condition]:
    """The operands of a chain of ANDs; OR and NOT are not allowed in key conditions."""
    if isinstance(condition, And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    if isinstance(condition, (Or, Not)):
        word = "OR" if isinstance(condition, Or) else "NOT"
        raise ValidationError(f"Invalid operator used in {_KEY}: {word}")
    return [condition]


def _key_part(condition: Condition) -> SortCondition:
    """One key attribute's condition: a top-level attribute against placeholder values."""
    operands: tuple[Operand, ...]
    if isinstance(condition, Compare) and condition.op != "<>":
        op, path, operands = condition.op, condition.left, (condition.right,)
    elif isinstance(condition, Between):
        op, path, operands = "BETWEEN", condition.operand, (condition.low, condition.high)
    elif isinstance(condition, Function) and condition.name == "begins_with":
        op, path, operands = "begins_with", condition.args[0], condition.args[1:]
    else:
        word = condition.name if isinstance(condition, Function) else (
            "IN" if isinstance(condition, In) else "<>"
        )
        raise ValidationError(f"Invalid operator used in {_KEY}: {word}")
    if not isinstance(path, Path) or len(path.elements) != 1 or not all(isinstance(o, Value) for o in operands):
        raise ValidationError("Query key condition not supported")
    values = tuple(o.value for o in operands if isinstance(o, Value))
    if op == "BETWEEN":
        ensure_ordered_bounds(values[0], values[1], _KEY)
    if op == "begins_with" and type_of(values[0]) not in ("S", "B"):
        raise ValidationError(
            f"Invalid {_KEY}: Incorrect operand type for operator or function; "
            f"operator or function: begins_with, operand type: {type_of(values[0])}"
        )
    return SortCondition(str(path.elements[0]), op, values)
