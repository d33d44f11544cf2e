"""Evaluating parsed expressions against items: conditions, projections, updates.

Items are dicts of AttributeValues (see `squall.tables.values`); the trees come
from `squall.tables.expressions`.  Conditions never change an item; updates
return a new item and leave their input untouched.  Errors are raised as
`ValidationError` with DynamoDB's wording where it is known.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Union

from squall.tables.errors import ValidationError
from squall.tables.expressions import (
    And, Arithmetic, Between, Compare, Condition, Function, IfNotExists, In, ListAppend, Not,
    Operand, Or, Path, PathElement, Size, UpdateExpression, UpdateValue, Value,
    ensure_ordered_bounds,
)
from squall.tables.values import (
    SET_TYPES, TYPES, AttributeValue, Item, arithmetic, compare, decode_binary, equal,
    number_value, parse_number, set_members, size, type_of,
)

INVALID_PATH = "The document path provided in the update expression is invalid for update"
MISSING_ATTRIBUTE = "The provided expression refers to an attribute that does not exist in the item"
WRONG_TYPE = "An operand in the update expression has an incorrect data type"


def get_path(item: Item, path: Path) -> AttributeValue | None:
    """The value at a document path, or None when any step of it is missing."""
    current: AttributeValue | None = {"M": item}
    for element in path.elements:
        current = _child(current, element)
    return current


def _child(value: AttributeValue | None, element: PathElement) -> AttributeValue | None:
    """A map's member or a list's element; None when absent or of another type."""
    if value is None:
        return None
    if isinstance(element, int):
        elements = value.get("L")
        return elements[element] if elements is not None and element < len(elements) else None
    members = value.get("M")
    return members.get(element) if members is not None else None


# -- conditions ----------------------------------------------------------------


def evaluate(condition: Condition, item: Item) -> bool:
    """Whether `item` satisfies a condition or filter expression."""
    if isinstance(condition, And):
        return evaluate(condition.left, item) and evaluate(condition.right, item)
    if isinstance(condition, Or):
        return evaluate(condition.left, item) or evaluate(condition.right, item)
    if isinstance(condition, Not):
        return not evaluate(condition.operand, item)
    if isinstance(condition, Compare):
        return _compare(condition.op, operand(condition.left, item), operand(condition.right, item))
    if isinstance(condition, Between):
        return _between(condition, item)
    if isinstance(condition, In):
        target = operand(condition.operand, item)
        return any(_compare("=", target, operand(o, item)) for o in condition.options)
    return _function(condition, item)


def operand(node: Operand, item: Item) -> AttributeValue | None:
    """The value of a path, placeholder or size(path); None when the path is missing."""
    if isinstance(node, Value):
        return node.value
    if isinstance(node, Size):
        target = get_path(item, node.path)
        if target is None:
            return None
        length = size(target)
        if length is None:
            raise ValidationError(
                "Incorrect operand type for operator or function; "
                f"operator or function: size, operand type: {type_of(target)}"
            )
        return {"N": str(length)}
    return get_path(item, node)


def _compare(op: str, left: AttributeValue | None, right: AttributeValue | None) -> bool:
    """A comparator; a missing side makes it false (and <> true)."""
    if left is None or right is None:
        return op == "<>"
    if op in ("=", "<>"):
        return equal(left, right) == (op == "=")
    order = compare(left, right)
    if order is None:
        return False
    return {"<": order < 0, "<=": order <= 0, ">": order > 0, ">=": order >= 0}[op]


def _between(condition: Between, item: Item) -> bool:
    low, high = operand(condition.low, item), operand(condition.high, item)
    if isinstance(condition.low, Value) and isinstance(condition.high, Value):
        ensure_ordered_bounds(condition.low.value, condition.high.value, "ConditionExpression")
    target = operand(condition.operand, item)
    return _compare(">=", target, low) and _compare("<=", target, high)


def _function(function: Function, item: Item) -> bool:
    """attribute_exists, attribute_not_exists, attribute_type, begins_with, contains."""
    target = operand(function.args[0], item)
    if function.name == "attribute_exists":
        return target is not None
    if function.name == "attribute_not_exists":
        return target is None
    argument = operand(function.args[1], item)
    if function.name == "attribute_type":
        return _attribute_type(target, argument)
    if function.name == "begins_with":
        return _begins_with(target, argument)
    return _contains(target, argument)


def _attribute_type(target: AttributeValue | None, argument: AttributeValue | None) -> bool:
    if argument is None or type_of(argument) != "S" or argument["S"] not in TYPES:
        shown = argument.get("S") if argument else None
        raise ValidationError(
            f"Invalid attribute type name found in type: {shown}, valid types: "
            "{B,BOOL,BS,L,M,N,NS,NULL,S,SS}"
        )
    return target is not None and type_of(target) == argument["S"]


def _begins_with(target: AttributeValue | None, prefix: AttributeValue | None) -> bool:
    if prefix is not None and type_of(prefix) not in ("S", "B"):
        raise ValidationError(
            "Incorrect operand type for operator or function; "
            f"operator or function: begins_with, operand type: {type_of(prefix)}"
        )
    if target is None or prefix is None or type_of(target) != type_of(prefix):
        return False
    if type_of(target) == "S":
        return str(target["S"]).startswith(prefix["S"])
    return decode_binary(target["B"]).startswith(decode_binary(prefix["B"]))


def _contains(target: AttributeValue | None, argument: AttributeValue | None) -> bool:
    if target is None or argument is None:
        return False
    kind, wanted = type_of(target), type_of(argument)
    if kind == "S" and wanted == "S":
        return argument["S"] in target["S"]
    if kind == "B" and wanted == "B":
        return decode_binary(argument["B"]) in decode_binary(target["B"])
    if kind in SET_TYPES and SET_TYPES[kind] == wanted:
        return next(iter(set_members({kind: [argument[wanted]]}))) in set_members(target)
    if kind == "L":
        return any(equal(element, argument) for element in target["L"])
    return False


# -- projection ----------------------------------------------------------------


@dataclass
class _Branch:
    """A partly projected map ("M") or list ("L")."""

    kind: str
    children: dict[PathElement, Union["_Branch", AttributeValue]] = field(default_factory=dict)


def project(item: Item, paths: tuple[Path, ...]) -> Item:
    """The parts of `item` the paths name; selected list elements are compacted in order."""
    root = _Branch("M")
    for path in paths:
        value = get_path(item, path)
        if value is not None:
            _graft(root, path.elements, copy.deepcopy(value))
    built = _build(root)
    return dict(built["M"])


def _graft(branch: _Branch, elements: tuple[PathElement, ...], value: AttributeValue) -> None:
    head, rest = elements[0], elements[1:]
    if not rest:
        branch.children[head] = value
        return
    child = branch.children.setdefault(head, _Branch("L" if isinstance(rest[0], int) else "M"))
    assert isinstance(child, _Branch)
    _graft(child, rest, value)


def _build(node: Union[_Branch, AttributeValue]) -> AttributeValue:
    if not isinstance(node, _Branch):
        return node
    if node.kind == "M":
        return {"M": {str(k): _build(v) for k, v in node.children.items()}}
    ordered = sorted(node.children.items(), key=lambda pair: int(pair[0]))
    return {"L": [_build(v) for _, v in ordered]}


# -- updates -------------------------------------------------------------------


def apply_update(update: UpdateExpression, item: Item) -> Item:
    """The item after the update; SET values are computed from the original item."""
    result = copy.deepcopy(item)
    assignments = [(path, copy.deepcopy(update_value(v, item))) for path, v in update.set]
    for path, value in assignments:
        set_path(result, path, value)
    for path in sorted(update.remove, key=_removal_order):
        remove_path(result, path)
    for path, added in update.add:
        _add(result, path, added.value)
    for path, deleted in update.delete:
        _delete(result, path, deleted.value)
    return result


def update_value(node: UpdateValue, item: Item) -> AttributeValue:
    """The value of a SET action's right-hand side."""
    if isinstance(node, Value):
        return node.value
    if isinstance(node, Path):
        found = get_path(item, node)
        if found is None:
            raise ValidationError(MISSING_ATTRIBUTE)
        return found
    if isinstance(node, IfNotExists):
        existing = get_path(item, node.path)
        return existing if existing is not None else update_value(node.default, item)
    left, right = update_value(node.left if isinstance(node, Arithmetic) else node.first, item), \
        update_value(node.right if isinstance(node, Arithmetic) else node.second, item)
    if isinstance(node, ListAppend):
        if type_of(left) != "L" or type_of(right) != "L":
            raise ValidationError(WRONG_TYPE)
        return {"L": left["L"] + right["L"]}
    if type_of(left) != "N" or type_of(right) != "N":
        raise ValidationError(WRONG_TYPE)
    total = arithmetic(parse_number(left["N"]), parse_number(right["N"]), node.op == "-")
    return number_value(total)


def _container(item: Item, path: Path) -> AttributeValue:
    """The map or list that holds the last element of a path being updated."""
    current: AttributeValue | None = {"M": item}
    for element in path.elements[:-1]:
        current = _child(current, element)
    last = path.elements[-1]
    if current is None or type_of(current) != ("L" if isinstance(last, int) else "M"):
        raise ValidationError(INVALID_PATH)
    return current


def set_path(item: Item, path: Path, value: AttributeValue) -> None:
    """Set a path in place; an index past a list's end appends."""
    container, last = _container(item, path), path.elements[-1]
    if isinstance(last, int):
        elements = container["L"]
        if last < len(elements):
            elements[last] = value
        else:
            elements.append(value)
    else:
        container["M"][last] = value


def remove_path(item: Item, path: Path) -> None:
    """Remove a path in place; a missing last element is not an error."""
    container, last = _container(item, path), path.elements[-1]
    if isinstance(last, int):
        if last < len(container["L"]):
            del container["L"][last]
    else:
        container["M"].pop(last, None)


def _removal_order(path: Path) -> tuple[int, int]:
    """List elements are removed from the highest index down, after plain removals."""
    last = path.elements[-1]
    return (1, -last) if isinstance(last, int) else (0, 0)


def _add(item: Item, path: Path, value: AttributeValue) -> None:
    """ADD: sum numbers, unite sets; a missing attribute starts as the value."""
    kind = type_of(value)
    if kind != "N" and kind not in SET_TYPES:
        raise ValidationError(
            f"Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: {kind}"
        )
    existing = get_path(item, path)
    if existing is None:
        set_path(item, path, copy.deepcopy(value))
    elif type_of(existing) != kind:
        raise ValidationError(WRONG_TYPE)
    elif kind == "N":
        total = arithmetic(parse_number(existing["N"]), parse_number(value["N"]))
        set_path(item, path, number_value(total))
    else:
        set_path(item, path, {kind: existing[kind] + _others(kind, value, existing, keep=False)})


def _delete(item: Item, path: Path, value: AttributeValue) -> None:
    """DELETE: remove members from a set; an emptied set removes the attribute."""
    kind = type_of(value)
    if kind not in SET_TYPES:
        raise ValidationError(
            f"Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: {kind}"
        )
    existing = get_path(item, path)
    if existing is None:
        return
    if type_of(existing) != kind:
        raise ValidationError(WRONG_TYPE)
    remaining = _others(kind, existing, value, keep=False)
    if remaining:
        set_path(item, path, {kind: remaining})
    else:
        remove_path(item, path)


def _others(kind: str, source: AttributeValue, reference: AttributeValue, keep: bool) -> list[object]:
    """Members of `source` (wire form) that are (keep) or are not in `reference`."""
    present = set_members(reference)
    return [m for m in source[kind] if (next(iter(set_members({kind: [m]}))) in present) == keep]
