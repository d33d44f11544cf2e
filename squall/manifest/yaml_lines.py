"""The YAML of squall.yaml read into data, with the line of every key and list item.

`read_yaml(text, file)` composes the one document into nodes, walks the nodes to record the
1-based line of every key and list item by its path (rejecting duplicate keys and keys that
are not text), then constructs the data from the same nodes. `line_of(lines, loc)` is the
line of a path, or of its nearest parent that has one.

Keys are kept as the text written: YAML 1.1 reads `on:` as true and `1:` as 1, but every key
of a manifest is a name, so `on`, `ON` and `1` stay the strings they look like. Values keep
their YAML types; a mapping (`YamlMapping`) also keeps each scalar value's text as written,
so a hint can repeat `1.10` rather than the 1.1 it was read as.

Hostile input is cheap to refuse: nesting deeper than MAX_DEPTH is an error; each node is
walked once however many aliases reach it; merge keys are flattened with repeated keys
dropped; an integer too long for Python to convert, a date that is no date and a string
holding a lone surrogate are errors at their line. As in PyYAML, aliases share objects, so the data may be cyclic (`&t [*t]`) or reach
one object along very many paths: code that renders a value must stop early (see
squall.manifest.errors.show).
"""

from __future__ import annotations

from typing import Any, Iterator

import yaml

from squall.exceptions import ManifestError
from squall.manifest.errors import Loc, dotted, show

__all__ = ["MAX_DEPTH", "Lines", "YamlMapping", "read_yaml", "line_of"]

MAX_DEPTH = 100
MAX_INT_BITS = 1000
"""Integers longer than this (about 1e301, past any float) are refused where they are written."""
"""Lists and mappings nested deeper than this are refused (a manifest needs about 6)."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_TOO_DEEP = f"nesting is too deep: lists and mappings may be nested {MAX_DEPTH} levels at most"

Lines = dict[Loc, int]
"""Path of a YAML key (its text) or list item (its index) -> its 1-based line."""


class YamlMapping(dict[str, Any]):
    """A mapping read from YAML; `written[key]` is the text of a scalar value as written."""

    def __init__(self) -> None:
        super().__init__()
        self.written: dict[str, str] = {}


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _BadScalar(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.line, self.message = node.start_mark.line + 1, message


class _Loader(yaml.SafeLoader):
    """SafeLoader with a nesting limit, keys as written, and merges without repeated keys."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.depth >= MAX_DEPTH:
            raise _TooDeep(self.peek_event().start_mark.line + 1)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Merge `<<` keys, keeping one pair per key: each key where it first appears, with
        the value that wins (a mapping's own keys, then the earlier merged mappings)."""
        super().flatten_mapping(node)
        pairs: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            pairs[key_node.value] = (key_node, value_node)
        node.value[:] = pairs.values()

    def construct_text_keyed_map(self, node: yaml.MappingNode) -> Iterator[YamlMapping]:
        data = YamlMapping()
        yield data
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = str(key_node.value)
            data[key] = self.construct_object(value_node)
            if isinstance(value_node, yaml.ScalarNode):
                data.written[key] = str(value_node.value)


    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        """An integer, or an error naming its line when it is beyond MAX_INT_BITS (or too long
        for Python to convert: integer text over 4300 digits)."""
        try:
            value = int(super().construct_yaml_int(node))
        except ValueError:
            value = None
        if value is None or value.bit_length() > MAX_INT_BITS:
            text = str(node.value)
            raise _BadScalar(node, f"the number {text[:20]}{'...' if len(text) > 20 else ''} ({len(text)} "
                                   "characters) is too large: no setting takes a number beyond 1e300")
        return value


    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        """A date or time, or an error naming its line when it is not a real one (2026-13-45)."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise _BadScalar(node, f"{show(str(node.value))} is not a date: {exc}") from None


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_text_keyed_map)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def read_yaml(text: str, file: str) -> tuple[Lines, Any] | None:
    """Lines and data of the one YAML document of `text` (None if it has no document).

    Lines are taken before the data is constructed: construction flattens merge keys (`<<`)
    into the node tree, which would look like duplicate keys.
    """
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        raise ManifestError(f"is not valid YAML: character {exc.character:#06x} is not allowed in YAML text",
                            file=file, line=text.count("\n", 0, exc.position) + 1) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        lines: Lines = {(): node.start_mark.line + 1}
        _walk(node, (), lines, file, set())
        return lines, loader.construct_document(node)
    except _TooDeep as exc:
        raise ManifestError(_TOO_DEEP, file=file, line=exc.line) from None
    except _BadScalar as exc:
        raise ManifestError(exc.message, file=file, line=exc.line, field=_field_on(lines, exc.line)) from None
    except RecursionError:
        raise ManifestError(_TOO_DEEP, file=file, line=loader.get_mark().line + 1) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = ": ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ManifestError(f"is not valid YAML: {problem}", file=file,
                            line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"is not valid YAML: {exc}", file=file) from None
    finally:
        loader.dispose()


def _walk(node: yaml.Node, path: Loc, lines: Lines, file: str, seen: set[yaml.Node]) -> None:
    """Record the line of every key and item below `node`, walking each node once (a node
    reached again through an alias keeps the lines of its first path); reject duplicate
    keys and keys that are lists or mappings."""
    if node in seen:
        return
    seen.add(node)
    if isinstance(node, yaml.ScalarNode):
        _check_text(node, path, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.setdefault((*path, index), item.start_mark.line + 1)
            _walk(item, (*path, index), lines, file, seen)
    elif isinstance(node, yaml.MappingNode):
        keys: dict[str, int] = {}
        for key_node, value in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ManifestError("a key must be a name, not a list or mapping", file=file,
                                    line=line, field=dotted(path) or None)
            _check_text(key_node, path, file)
            key = str(key_node.value)
            if key in keys and key_node.tag != _MERGE_TAG:
                raise ManifestError(f"duplicate key {show(key)}: it is already set on line "
                                    f"{keys[key]}", file=file, line=line, field=dotted((*path, key)))
            keys[key] = line
            lines.setdefault((*path, key), line)
            _walk(value, (*path, key), lines, file, seen)


def _check_text(node: yaml.ScalarNode, path: Loc, file: str) -> None:
    """Refuse a scalar holding a lone surrogate (a "\\ud800" escape): it is not Unicode text."""
    text = node.value
    if isinstance(text, str) and not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ManifestError(f"holds {text[exc.start]!r}, which is not a Unicode character (a lone "
                                "surrogate escape)", file=file, line=node.start_mark.line + 1,
                                field=dotted(path) or None) from None


def _field_on(lines: Lines, line: int) -> str | None:
    """The deepest key or item that starts on `line`, dotted, if any."""
    here = [loc for loc, at in lines.items() if at == line and loc]
    return dotted(max(here, key=len)) if here else None


def line_of(lines: Lines, loc: Loc) -> int:
    """The line of `loc`, or of its nearest parent with a line."""
    while loc not in lines:
        loc = loc[:-1]
    return lines[loc]
