"""The checks of single values that several sections of squall.yaml share, each written once.

A check takes the value as read from YAML and returns it normalized (a duration as seconds, an
int when whole) or raises ValueError saying what was expected and what was given (through
`show`). Factories (`whole_number(1, 1000, "instances")`) make a check for one field's range.
Checks that only one section uses live with that section.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable, Iterable, TypeVar

from squall.manifest.errors import did_you_mean, fail, show
from squall.manifest.yaml_lines import YamlMapping

_T = TypeVar("_T")

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
"""Project and function names."""
ALIAS_NAME = re.compile(r"(?!\d+$)[A-Za-z0-9_-]{1,128}")
"""Lambda's alias names: letters, digits, `-` and `_`, not all digits (that is a version)."""
MAX_JSON_BYTES = 256 * 1024
"""Largest schedule `input` (as EventBridge Scheduler) and filter policy (as SNS)."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


# ------------------------------------------------------------------ numbers


def is_number(value: Any) -> bool:
    """An int or a float, not a bool (YAML's true is no number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def whole_number(low: int, high: int, what: str) -> Callable[[Any], int]:
    """A check that a value is an int from `low` to `high`; `what` says what it counts."""
    def check(value: Any) -> int:
        if is_number(value) and isinstance(value, int) and low <= value <= high:
            return value
        raise ValueError(f"must be a whole number of {what} from {low} to {high}, got {show(value)}")
    return check


def seconds(high: float) -> Callable[[Any], float]:
    """A check that a value is a number of seconds above 0 and at most `high` (no units)."""
    def check(value: Any) -> float:
        if is_number(value) and 0 < value <= high:
            return float(value)
        raise ValueError(f"must be a number of seconds above 0 and at most {high:g}, got {show(value)}")
    return check


# ------------------------------------------------------------------ durations


def _whole(count: float) -> int | float:
    return int(count) if float(count).is_integer() else count


def parse_duration(value: Any) -> int | float:
    """Seconds of a duration: a number, or text such as "30s", "5m", "1h30m" or "2d" (units in
    that order, each once). An int when whole; ValueError if `value` is neither."""
    if is_number(value) and math.isfinite(value):
        return _whole(value)
    if isinstance(value, str):
        text = value.strip()
        match = _DURATION.fullmatch(text)
        if text and match:
            return sum(int(count) * size for count, (_, size) in zip(match.groups(), _UNITS) if count)
    raise ValueError("must be a duration such as 30s, 5m or 1h, or a number of seconds; "
                     f"got {show(value)}")


def format_duration(seconds: int) -> str:
    """`5400` -> `"1h30m"`, `0` -> `"0s"`."""
    parts = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def duration(low: int, high: int) -> Callable[[Any], int | float]:
    """A check that a value is a duration (see parse_duration) from `low` to `high` seconds."""
    def check(value: Any) -> int | float:
        parsed = parse_duration(value)
        if low <= parsed <= high:
            return parsed
        raise ValueError(f"must be from {format_duration(low)} to {format_duration(high)} "
                         f"({low} to {high} seconds); got {show(value)}")
    return check


# ------------------------------------------------------------------ other scalars


def optional(check: Callable[[Any], _T]) -> Callable[[Any], _T | None]:
    """`check`, letting null through as None."""
    return lambda value: None if value is None else check(value)


def check_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"must be true or false, got {show(value)}")


def check_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f'must be a string (use "" for none), got {show(value)}')


def one_of(choices: Iterable[str]) -> Callable[[Any], str]:
    """A check that a value is one of `choices`, suggesting the closest when it is not."""
    allowed = tuple(choices)

    def check(value: Any) -> str:
        if isinstance(value, str) and value in allowed:
            return value
        raise ValueError(f"must be one of {', '.join(allowed)}, got {show(value)}"
                         f"{did_you_mean(value, allowed)}")
    return check


def plain_json(value: Any) -> Any:
    """`value` as plain JSON data (dicts, lists, str, int, float, bool, None), at most
    MAX_JSON_BYTES long; ValueError otherwise. Stops early on huge or cyclic YAML aliases."""
    budget = [MAX_JSON_BYTES]

    def convert(item: Any, above: frozenset[int]) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise ValueError(f"is too large: at most {MAX_JSON_BYTES // 1024} KB of JSON")
        if item is None or isinstance(item, (bool, str, int)):
            return item
        if isinstance(item, float):
            if math.isfinite(item):
                return item
            raise ValueError(f"must be plain JSON: {show(item)} is not a JSON number")
        if isinstance(item, (dict, list)):
            if id(item) in above:
                raise ValueError("must be plain JSON: it contains itself (a YAML alias loop)")
            inner = above | {id(item)}
            if isinstance(item, list):
                return [convert(part, inner) for part in item]
            return {str(key): convert(part, inner) for key, part in item.items()}
        raise ValueError(f"must be plain JSON: {show(item)} is a {type(item).__name__} "
                         "(quote dates and times in YAML)")

    data = convert(value, frozenset())
    size = len(json.dumps(data, ensure_ascii=False).encode())
    if size > MAX_JSON_BYTES:
        raise ValueError(f"is too large: {size} bytes of JSON, at most {MAX_JSON_BYTES // 1024} KB")
    return data


# ------------------------------------------------------------------ names


def name_check(what: str) -> Callable[[Any], str]:
    """A check of a project or function name; `what` starts the message ("a function name")."""
    def check(value: Any) -> str:
        if isinstance(value, str) and NAME.fullmatch(value):
            return value
        raise ValueError(f"{what} must start with a letter and hold only letters, digits, - and _ "
                         f"(64 at most), got {show(value)}")
    return check


check_function_name = name_check("a function name")


def check_alias_name(value: Any) -> str:
    if isinstance(value, str) and ALIAS_NAME.fullmatch(value):
        return value
    raise ValueError(f"must be an alias name (letters, digits, - and _, up to 128, not all digits), "
                     f"got {show(value)}")


def is_env_name(value: object) -> bool:
    """Whether `value` is an environment variable name: letters, digits and _, no digit first."""
    return isinstance(value, str) and _ENV_NAME.fullmatch(value) is not None


def check_env(value: Any) -> dict[str, str]:
    """An `env:` mapping of variable names to strings (null is empty), sorted by name.

    A value that is not a string is refused with the hint to quote it as it was written
    (`1.10`, which YAML reads as 1.1), when the YAML reader kept that text."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be a mapping of variable names to strings, e.g. "
                         f"{{LOG_LEVEL: debug}}, got {show(value)}")
    for name, text in value.items():
        if not is_env_name(name):
            raise fail(f"{show(name)} is not an environment variable name: use letters, digits and "
                       "_, not starting with a digit", str(name))
        if not isinstance(text, str):
            written = value.written.get(name) if isinstance(value, YamlMapping) else None
            example = ("" if text is None else written if written is not None
                       else show(text).strip('"'))
            raise fail(f"must be a string, got {show(text)}; quote it in YAML: "
                       f'{name}: "{example}"', name)
    return dict(sorted(value.items()))
