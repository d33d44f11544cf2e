"""How a problem in squall.yaml is reported: where it is, how a value is quoted, what to suggest.

A place in the manifest is a `Loc`, the path of keys (as written) and list indices down to it,
shown `dotted` (`functions.webhook.triggers[2].http`). Checks raise `ValueError` for a problem
with the value they are given, or `raise fail(message, *loc)` for a problem at a key below it;
squall.manifest.project turns both into a ManifestError carrying the YAML line.
"""

from __future__ import annotations

import difflib
import json
from typing import Any, Iterable, Iterator, Sequence

from pydantic_core import PydanticCustomError

SQUALL_ERROR = "squall"
"""pydantic error type of `fail()`; its context holds `message`, `loc` and `see`."""
TRIGGER_KIND_ERROR = "trigger_kind"
"""pydantic error type of a trigger whose kind cannot be told (see squall.manifest.triggers)."""

_SHOWN = 60
"""Characters of a value that error messages show at most."""

Loc = tuple[str | int, ...]


def show(value: Any) -> str:
    """A value as error messages quote it: strings in double quotes, YAML-style scalars.

    Only the first 60 characters are rendered, so a huge value (YAML aliases of aliases share
    one object along many paths) is shown as fast as a small one, and a list or mapping inside
    itself (`&t [*t]`) is shown as `[...]` or `{...}` there.
    """
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = ""
    for piece in _json_pieces(value, frozenset()):
        text += piece
        if len(text) > _SHOWN:
            break
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


def _json_pieces(value: Any, above: frozenset[int]) -> Iterator[str]:
    """The JSON text of `value` piece by piece; `above` holds the containers around it."""
    if not isinstance(value, (dict, list, tuple)):
        yield json.dumps(value, ensure_ascii=False, default=str)
        return
    opening, closing = "{}" if isinstance(value, dict) else "[]"
    if id(value) in above:
        yield f"{opening}...{closing}"
        return
    above = above | {id(value)}
    yield opening
    if isinstance(value, dict):
        for index, (key, item) in enumerate(value.items()):
            text = key if isinstance(key, str) else next(_json_pieces(key, above))
            yield (", " if index else "") + json.dumps(text, ensure_ascii=False) + ": "
            yield from _json_pieces(item, above)
    else:
        for index, item in enumerate(value):
            if index:
                yield ", "
            yield from _json_pieces(item, above)
    yield closing


def dotted(loc: Sequence[str | int]) -> str:
    """`("functions", "f", "triggers", 2, "http")` -> `functions.f.triggers[2].http`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def fail(message: str, *loc: str | int, see: Loc | None = None) -> PydanticCustomError:
    """An error at `loc` below the value being validated; `see` names a related place."""
    return PydanticCustomError(SQUALL_ERROR, "{message}", {"message": message, "loc": loc, "see": see})


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """` (did you mean "x"?)` when one of `choices` is close to `word`, else ""."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def unknown_key_message(key: object, allowed: Sequence[str]) -> str:
    return f"unknown key {show(key)}{did_you_mean(key, allowed)}; allowed keys: {', '.join(allowed)}"


def undeclared_message(what: str, section: str, name: str, declared: Iterable[str]) -> str:
    """Why `name`, a `what` that should be declared under `section`, refers to nothing."""
    names = list(declared)
    listed = f"declared: {', '.join(names)}" if names else f"the manifest declares no {section}"
    return f"{what} {show(name)} is not declared under {section}{did_you_mean(name, names)}; {listed}"
