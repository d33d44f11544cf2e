"""SNS subscription filter policies: checking one as Amazon SNS does, and matching messages to it.

`parse_filter_policy(text_or_obj, scope)` returns a `FilterPolicy` or raises `FilterPolicyError`
saying what is wrong and at which key path (`filter policy at "detail.price.numeric": ...`). The
rules are those of the SNS developer guide (filter policies, string, numeric and key matching,
AND/OR logic, constraints):

- Scope `MessageAttributes` (default) maps attribute names to lists of values; `MessageBody` applies
  to the JSON object of the body and lets keys nest. A list ORs its values, keys are ANDed, and
  `"$or": [{...}, {...}]` ORs sub-policies at any level; as in SNS it is an ordinary key unless it
  holds at least 2 objects none of which has an operator name as a key.
- Strings match strings exactly, numbers match numbers numerically, true/false/null themselves;
  operators: prefix, suffix, equals-ignore-case, anything-but (a value, a list or {"prefix": ...}),
  numeric (`["<", 10]` or a range `[">=", 0, "<", 10]`), exists, cidr (IPv4 and IPv6). Not
  supported: wildcard and the newer anything-but forms (suffix, wildcard, equals-ignore-case).
- Attributes have the SNS shape `{"Type": ..., "Value": ...}` (DataType/StringValue also read). A
  String.Array is a JSON array matching when any element does (anything-but: when none is
  excluded); Number attributes are numbers, other types strings; Binary ones are ignored as absent.
  In a body, an array matches when any element does, and paths go through arrays of objects.
- A key the message lacks fails every value but `{"exists": false}`; `exists: true` needs a value
  neither null nor "". No attributes at all, or a body that is not a JSON object, match no policy
  but `{}`, which matches everything.

Constraints enforced: text at most 256 KB; no duplicate keys; lists non-empty; no nesting in
MessageAttributes scope; at most 5 keys, counted as distinct leaf key paths over the whole policy
($or branches included); at most 150 combinations, as SNS computes them (product over keys of
values x nesting depth, the branches of an $or summed); one key per operator object, arguments of
the right type; numeric operands within -10^9..10^9, a range's lower bound (> or >=) below its
upper one (< or <=). Not enforced: the per-topic and per-account quotas of policies, and SNS's
limited numeric precision (five decimals): numbers here compare exactly, as Decimals.
"""
from __future__ import annotations

import difflib
import ipaddress
import json
import math
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, cast

Scope = Literal["MessageAttributes", "MessageBody"]
SCOPES: tuple[Scope, ...] = ("MessageAttributes", "MessageBody")
OPERATORS = ("prefix", "suffix", "anything-but", "numeric", "exists", "cidr", "equals-ignore-case")
OR_KEY = "$or"
MAX_KEYS = 5
MAX_COMBINATIONS = 150
MAX_POLICY_BYTES = 256 * 1024
NUMERIC_LIMIT = Decimal(10) ** 9
"""SNS compares numbers from -10^9 to 10^9 only; `numeric` operands outside are refused."""

Scalar = str | Decimal | bool | None
"""A value as matched: JSON numbers become Decimals."""

_SHOWN = 60
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_STRING_TESTS: dict[str, Callable[[str, str], bool]] = {
    "prefix": str.startswith,
    "suffix": str.endswith,
    "equals-ignore-case": lambda value, operand: value.casefold() == operand.casefold(),
}


class FilterPolicyError(ValueError):
    """A filter policy SNS would refuse; the message says what is wrong and where."""


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


def _error(where: str, message: str) -> FilterPolicyError:
    return FilterPolicyError(f'filter policy at "{where}": {message}')


# ------------------------------------------------------------------ conditions

Test = Callable[[Sequence[Scalar]], bool]
"""One value of a policy key: whether the values a message holds there pass (`()` if absent)."""


def _same(value: Scalar, wanted: Scalar) -> bool:
    return type(value) is type(wanted) and value == wanted


def _present(values: Sequence[Scalar]) -> bool:
    return any(value is not None and value != "" for value in values)


def _any(check: Callable[[Scalar], bool]) -> Test:
    return lambda values: any(check(value) for value in values)


def _in_network(value: Scalar, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return isinstance(value, str) and ipaddress.ip_address(value) in network
    except ValueError:
        return False


@dataclass(frozen=True)
class _Node:
    """Keys ANDed: every leaf (key path, conditions ORed) and, per `$or`, one of its branches."""

    leaves: tuple[tuple[tuple[str, ...], tuple[Test, ...]], ...] = ()
    alternatives: tuple[tuple[_Node, ...], ...] = ()

    def matches(self, lookup: Callable[[tuple[str, ...]], Sequence[Scalar]]) -> bool:
        return (all(any(test(lookup(path)) for test in tests)
                    for path, tests in self.leaves)
                and all(any(branch.matches(lookup) for branch in branches)
                        for branches in self.alternatives))


# ------------------------------------------------------------------ parsing


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _number(value: Any, where: str) -> Decimal:
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if _is_number(value) and math.isfinite(value):
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    raise _error(where, f"expected a number, got {_show(value)}")


def _scalar(value: Any, where: str) -> Scalar:
    if value is None or isinstance(value, (str, bool)):
        return value
    if _is_number(value):
        return _number(value, where)
    raise _error(where, f"a value must be a string, number, true, false, null or an operator "
                        f"object such as {{\"prefix\": \"a\"}}, got {_show(value)}")


def _is_or(value: Any) -> bool:
    return (isinstance(value, list) and len(value) >= 2
            and all(isinstance(item, dict) and not set(item) & set(OPERATORS) for item in value))


def _string(argument: Any, where: str) -> str:
    if isinstance(argument, str):
        return argument
    raise _error(where, f"expected a string, got {_show(argument)}")


def _string_test(name: str) -> Callable[[Any, str], Test]:
    def parse(argument: Any, where: str) -> Test:
        operand, check = _string(argument, where), _STRING_TESTS[name]
        return _any(lambda value: isinstance(value, str) and check(value, operand))
    return parse


def _anything_but(argument: Any, where: str) -> Test:
    """Passes when the key holds values and none is excluded (of a String.Array: no element)."""
    if isinstance(argument, dict):
        if list(argument) != ["prefix"]:
            raise _error(where, f'expected {{"prefix": "..."}} as the object form, got {_show(argument)}')
        prefix = _string(argument["prefix"], f"{where}.prefix")
        return lambda values: bool(values) and not any(
            isinstance(value, str) and value.startswith(prefix) for value in values)
    items = argument if isinstance(argument, list) else [argument]
    if not items or not all(isinstance(item, str) or _is_number(item) for item in items):
        raise _error(where, "expected a string, a number, a non-empty list of them or "
                            f'{{"prefix": "..."}}, got {_show(argument)}')
    excluded = [_scalar(item, where) for item in items]
    return lambda values: bool(values) and not any(
        _same(value, item) for value in values for item in excluded)


def _numeric(argument: Any, where: str) -> Test:
    if not isinstance(argument, list) or len(argument) not in (2, 4):
        raise _error(where, 'expected [operator, number] or a range [">" or ">=", low, "<" or "<=", '
                            f"high], got {_show(argument)}")
    bounds = []
    for name, value in zip(argument[::2], argument[1::2]):
        if not isinstance(name, str) or name not in _COMPARISONS:
            raise _error(where, f"unknown comparison {_show(name)}; use one of {', '.join(_COMPARISONS)}")
        bound = _number(value, where)
        if abs(bound) > NUMERIC_LIMIT:
            raise _error(where, f"{_show(value)} is out of range; SNS compares numbers from -10^9 to 10^9")
        bounds.append((name, bound))
    if len(bounds) == 2:
        (low_name, low), (high_name, high) = bounds
        if low_name not in (">", ">=") or high_name not in ("<", "<="):
            raise _error(where, 'a range is [">" or ">=", low, "<" or "<=", high], '
                                f"got {_show(argument)}")
        if low >= high:
            raise _error(where, f"the range is empty: {low} is not below {high}")
    return _any(lambda value: isinstance(value, Decimal)
                and all(_COMPARISONS[name](value, bound) for name, bound in bounds))


def _cidr(argument: Any, where: str) -> Test:
    text = _string(argument, where)
    if "/" not in text:
        raise _error(where, f"{_show(text)} needs a prefix length, as in 10.0.0.0/24")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise _error(where, f"{_show(text)} is not an IP network: {exc}") from None
    return _any(lambda value: _in_network(value, network))


def _exists(argument: Any, where: str) -> Test:
    if isinstance(argument, bool):
        return lambda values: _present(values) == argument
    raise _error(where, f"expected true or false, got {_show(argument)}")


_OPERATOR_PARSERS: dict[str, Callable[[Any, str], Test]] = {
    **{name: _string_test(name) for name in _STRING_TESTS},
    "anything-but": _anything_but,
    "numeric": _numeric,
    "exists": _exists,
    "cidr": _cidr,
}


def _condition(item: Any, where: str) -> Test:
    if not isinstance(item, dict):
        wanted = _scalar(item, where)
        return _any(lambda value: _same(value, wanted))
    if len(item) != 1:
        raise _error(where, f"an operator object has exactly one key, got {_show(item)}")
    name, argument = next(iter(item.items()))
    if name not in _OPERATOR_PARSERS:
        close = difflib.get_close_matches(name, OPERATORS, n=1) if isinstance(name, str) else []
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        or_hint = ('; "$or" needs a list of at least 2 objects of keys'
                   if where.rpartition(".")[2] == OR_KEY else "")
        raise _error(where, f"unknown operator {_show(name)}{hint}; use one of "
                            f"{', '.join(OPERATORS)}{or_hint}")
    return _OPERATOR_PARSERS[name](argument, f"{where}.{name}")


@dataclass
class _Parser:
    scope: Scope
    keys: dict[tuple[str, ...], None] = field(default_factory=dict)
    """Leaf key paths met so far, in order (a dict as an ordered set)."""

    def node(self, policy: dict[str, Any], path: tuple[str, ...], where: str,
             depth: int) -> tuple[_Node, int]:
        """The node for one object of the policy, and its number of combinations."""
        if not policy:
            raise _error(where, "an object needs at least one key")
        leaves: list[tuple[tuple[str, ...], tuple[Test, ...]]] = []
        alternatives: list[tuple[_Node, ...]] = []
        combinations = 1
        for key, value in policy.items():
            if not isinstance(key, str):
                raise _error(where or "(top)", f"keys must be strings, got {_show(key)}")
            here = f"{where}.{key}" if where else key
            if key == OR_KEY and _is_or(value):
                branches = [self.node(item, path, f"{here}[{index}]", depth)
                            for index, item in enumerate(value)]
                alternatives.append(tuple(branch for branch, _ in branches))
                combinations *= sum(count for _, count in branches)
            elif isinstance(value, dict) and self.scope == "MessageBody":
                child, count = self.node(value, path + (key,), here, depth + 1)
                leaves.extend(child.leaves)
                alternatives.extend(child.alternatives)
                combinations *= count
            elif isinstance(value, dict):
                raise _error(here, "nested keys need the MessageBody scope; a MessageAttributes "
                                   "policy maps each attribute name to a list of values")
            elif isinstance(value, list) and value:
                leaves.append((path + (key,), tuple(_condition(item, here) for item in value)))
                self.keys[path + (key,)] = None
                combinations *= len(value) * depth
            else:
                expected = "a non-empty list of values" + (
                    " or an object" if self.scope == "MessageBody" else "")
                raise _error(here, f"expected {expected}, got {_show(value)}")
        return _Node(tuple(leaves), tuple(alternatives)), combinations


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise FilterPolicyError(f"filter policy has the key {_show(key)} twice in one object")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise FilterPolicyError(f"filter policy is not valid JSON: {name} is not a JSON number")


def _load(policy: str | bytes | Mapping[str, Any]) -> Any:
    if isinstance(policy, Mapping):
        size = len(json.dumps(policy, default=str).encode())
    else:
        size = len(policy.encode() if isinstance(policy, str) else policy)
    if size > MAX_POLICY_BYTES:
        raise FilterPolicyError(f"filter policy is {size} bytes; SNS allows at most "
                                f"{MAX_POLICY_BYTES} (256 KB)")
    if isinstance(policy, Mapping):
        return dict(policy)
    try:
        return json.loads(policy, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise FilterPolicyError(f"filter policy is not valid JSON: {exc.msg} at line {exc.lineno} "
                                f"column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise FilterPolicyError(f"filter policy is not valid UTF-8: {exc}") from None


def parse_filter_policy(policy: str | bytes | Mapping[str, Any],
                        scope: str = "MessageAttributes") -> FilterPolicy:
    """Check a filter policy (JSON text or decoded) as SNS would; raise FilterPolicyError if bad."""
    if scope not in SCOPES:
        raise FilterPolicyError(f"filter policy scope {_show(scope)} is not one of {', '.join(SCOPES)}")
    data = _load(policy)
    if not isinstance(data, dict):
        raise FilterPolicyError("filter policy must be a JSON object of keys to lists of values, "
                                f"got {_show(data)}")
    parser = _Parser(cast(Scope, scope))
    root, combinations = parser.node(data, (), "", 1) if data else (_Node(), 0)
    keys = tuple(".".join(path) for path in parser.keys)
    if len(keys) > MAX_KEYS:
        raise FilterPolicyError(f"filter policy has {len(keys)} keys ({', '.join(keys)}); "
                                f"SNS allows at most {MAX_KEYS}")
    if combinations > MAX_COMBINATIONS:
        raise FilterPolicyError(f"filter policy has {combinations} combinations of values; SNS "
                                f"allows at most {MAX_COMBINATIONS} (values x nesting depth, "
                                "multiplied across keys, $or branches added)")
    return FilterPolicy(cast(Scope, scope), data, keys, combinations, root)


# ------------------------------------------------------------------ messages


def _json_scalars(value: Any) -> Iterator[Scalar]:
    """The scalars of decoded JSON, arrays spread (nested ones too); objects are skipped."""
    if isinstance(value, list):
        for item in value:
            yield from _json_scalars(item)
    elif not isinstance(value, dict):
        yield value


def _decode(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=str)


def _attribute_values(name: str, attribute: Any) -> tuple[Scalar, ...]:
    """The values of one SNS message attribute; `()` for a Binary one, which SNS ignores."""
    if not isinstance(attribute, Mapping):
        raise TypeError(f'message attribute {_show(name)} must be {{"Type": ..., "Value": ...}}, '
                         f"got {_show(attribute)}")
    kind = str(attribute.get("Type", attribute.get("DataType", "String")))
    value = attribute.get("Value", attribute.get("StringValue"))
    if value is None or kind.startswith("Binary"):
        return ()
    text = str(value)
    if kind == "String.Array":
        try:
            return tuple(_json_scalars(_decode(text))) if text.lstrip().startswith("[") else ()
        except ValueError:
            return ()
    if kind.startswith("Number"):
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            return (text,)
        return (number,) if number.is_finite() else (text,)
    return (text,)


def _body_values(body: dict[str, Any], path: tuple[str, ...]) -> tuple[Scalar, ...]:
    nodes: list[Any] = [body]
    for key in path:
        nodes = [child for node in nodes if isinstance(node, dict) and key in node
                 for child in (node[key] if isinstance(node[key], list) else [node[key]])]
    return tuple(value for node in nodes for value in _json_scalars(node))


@dataclass(frozen=True)
class FilterPolicy:
    """A checked filter policy; `policy` is its decoded JSON, `keys` its leaf key paths."""

    scope: Scope
    policy: dict[str, Any]
    keys: tuple[str, ...]
    combinations: int
    _root: _Node = field(repr=False, compare=False)

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        """Whether SNS message attributes (`{"name": {"Type": ..., "Value": ...}}`) pass."""
        self._require("MessageAttributes", "matches")
        if not self._root.leaves and not self._root.alternatives:
            return True
        if not attributes:
            return False
        values = {name: _attribute_values(name, attribute) for name, attribute in attributes.items()}
        return self._root.matches(lambda path: values.get(path[0], ()))

    def matches_body(self, body: str | bytes) -> bool:
        """Whether a message body passes; one that is not a JSON object never does."""
        self._require("MessageBody", "matches_body")
        if not self._root.leaves and not self._root.alternatives:
            return True
        try:
            data = _decode(body)
        except ValueError:
            return False
        return isinstance(data, dict) and self._root.matches(lambda path: _body_values(data, path))

    def accepts(self, body: str | bytes, attributes: Mapping[str, Any]) -> bool:
        """Whether a message passes, looking at its body or its attributes as the scope says."""
        if self.scope == "MessageBody":
            return self.matches_body(body)
        return self.matches(attributes)

    def _require(self, scope: Scope, method: str) -> None:
        if self.scope != scope:
            raise ValueError(f"{method}() is for {scope} policies and this one has scope "
                             f"{self.scope}; use accepts() to follow the scope")
