"""Parsing DynamoDB expressions into small dataclass trees.

Condition/filter, projection and update expressions (and key conditions, in
squall.tables.key_conditions) share one
tokenizer and one recursive-descent parser.  `#name` and `:value` placeholders
are resolved while parsing through `Placeholders`, which also records which
ones were used so a request can reject unused ones (`ensure_all_used`).
Precedence in conditions: comparisons, BETWEEN, IN, functions > NOT > AND > OR.
Evaluation lives in `squall.tables.evaluate`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NoReturn, Union

from squall.tables.errors import ValidationError
from squall.tables.values import AttributeValue, compare, validate

PathElement = Union[str, int]
MAX_EXPRESSION_BYTES = 4096
COMPARATORS = ("=", "<>", "<", "<=", ">", ">=")
KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE"}
BOOLEAN_FUNCTIONS = {
    "attribute_exists": 1, "attribute_not_exists": 1, "attribute_type": 2,
    "begins_with": 2, "contains": 2,
}
_TOKEN_RE = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<attrname>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)"
    r"|(?P<number>\d+)|(?P<op><>|<=|>=|[=<>(),.\[\]+-])"
)


@dataclass(frozen=True)
class Path:
    """A document path: attribute names and list indexes, e.g. ("a", 2, "b")."""

    elements: tuple[PathElement, ...]


@dataclass(frozen=True)
class Value:
    """A resolved `:value` placeholder."""

    value: AttributeValue = field(hash=False)


@dataclass(frozen=True)
class Size:
    """size(path) used as an operand."""

    path: Path


Operand = Union[Path, Value, Size]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Between:
    operand: Operand
    low: Operand
    high: Operand


@dataclass(frozen=True)
class In:
    operand: Operand
    options: tuple[Operand, ...]


@dataclass(frozen=True)
class Function:
    """A boolean function: attribute_exists, begins_with, contains, ..."""

    name: str
    args: tuple[Operand, ...]


@dataclass(frozen=True)
class And:
    left: Condition
    right: Condition


@dataclass(frozen=True)
class Or:
    left: Condition
    right: Condition


@dataclass(frozen=True)
class Not:
    operand: Condition


Condition = Union[Compare, Between, In, Function, And, Or, Not]


@dataclass(frozen=True)
class IfNotExists:
    path: Path
    default: UpdateValue


@dataclass(frozen=True)
class ListAppend:
    first: UpdateValue
    second: UpdateValue


@dataclass(frozen=True)
class Arithmetic:
    """left + right or left - right in a SET action."""

    op: str
    left: UpdateValue
    right: UpdateValue


UpdateValue = Union[Path, Value, IfNotExists, ListAppend, Arithmetic]


@dataclass(frozen=True)
class UpdateExpression:
    """The four clauses of an update; ADD/DELETE pair a path with a value."""

    set: tuple[tuple[Path, UpdateValue], ...] = ()
    remove: tuple[Path, ...] = ()
    add: tuple[tuple[Path, Value], ...] = ()
    delete: tuple[tuple[Path, Value], ...] = ()


@dataclass
class Placeholders:
    """ExpressionAttributeNames/Values of one request, and which were used."""

    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, AttributeValue] = field(default_factory=dict)
    used_names: set[str] = field(default_factory=set)
    used_values: set[str] = field(default_factory=set)

    def name(self, token: str, kind: str) -> str:
        if token not in self.names:
            raise ValidationError(
                f"Invalid {kind}: An expression attribute name used in the document path "
                f"is not defined; attribute name: {token}"
            )
        self.used_names.add(token)
        return self.names[token]

    def value(self, token: str, kind: str) -> Value:
        if token not in self.values:
            raise ValidationError(
                f"Invalid {kind}: An expression attribute value used in expression "
                f"is not defined; attribute value: {token}"
            )
        self.used_values.add(token)
        return Value(validate(self.values[token]))

    def ensure_all_used(self) -> None:
        """Reject names or values no expression of the request used."""
        unused_names = sorted(set(self.names) - self.used_names)
        if unused_names:
            raise ValidationError(
                "Value provided in ExpressionAttributeNames unused in expressions: "
                f"keys: {{{', '.join(unused_names)}}}"
            )
        unused_values = sorted(set(self.values) - self.used_values)
        if unused_values:
            raise ValidationError(
                "Value provided in ExpressionAttributeValues unused in expressions: "
                f"keys: {{{', '.join(unused_values)}}}"
            )


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int

    @property
    def word(self) -> str:
        return self.text.upper() if self.kind == "name" else self.text


def tokenize(text: str, kind: str) -> list[Token]:
    """Split an expression into tokens, ending with an "eof" token."""
    tokens: list[Token] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return tokens + [Token("eof", "<EOF>", position)]
        match = _TOKEN_RE.match(text, position)
        if match is None or match.lastgroup is None:
            near = text[max(0, position - 10): position + 10]
            raise ValidationError(
                f'Invalid {kind}: Syntax error; token: "{text[position]}", near: "{near}"'
            )
        tokens.append(Token(match.lastgroup, match.group(), position))
        position = match.end()


class Parser:
    """Recursive descent over one expression's tokens."""

    def __init__(self, text: str, kind: str, placeholders: Placeholders) -> None:
        if not isinstance(text, str):  # the request's JSON may hold anything
            raise ValidationError(f"Invalid {kind}: the expression must be a string, got {type(text).__name__}")
        if not text or not text.strip():
            raise ValidationError(f"Invalid {kind}: The expression can not be empty;")
        if len(text.encode("utf-8")) > MAX_EXPRESSION_BYTES:
            raise ValidationError(
                f"Invalid {kind}: Expression size has exceeded the maximum allowed size; "
                f"expression size: {len(text.encode('utf-8'))}"
            )
        self.text, self.kind, self.placeholders = text, kind, placeholders
        self.tokens = tokenize(text, kind)
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.current
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def accept(self, word: str) -> bool:
        if self.current.word == word and self.current.kind in ("name", "op"):
            self.advance()
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.accept(word):
            self.fail()

    def fail(self, message: str | None = None) -> NoReturn:
        """Raise a syntax error at the current token, or `message` when given."""
        if message is not None:
            raise ValidationError(f"Invalid {self.kind}: {message}")
        token = self.current
        before = self.tokens[self.index - 1].start if self.index else token.start
        after = self.tokens[min(self.index + 1, len(self.tokens) - 1)]
        near = self.text[before: after.start + len(after.text) if after.kind != "eof" else None]
        raise ValidationError(
            f'Invalid {self.kind}: Syntax error; token: "{token.text}", near: "{near.strip()}"'
        )

    def finish(self) -> None:
        if self.current.kind != "eof":
            self.fail()

    # -- paths and operands ----------------------------------------------------

    def path(self) -> Path:
        elements: list[PathElement] = [self.path_name()]
        while True:
            if self.accept("."):
                elements.append(self.path_name())
            elif self.accept("["):
                if self.current.kind != "number":
                    self.fail()
                elements.append(int(self.advance().text))
                self.expect("]")
            else:
                return Path(tuple(elements))

    def path_name(self) -> str:
        token = self.current
        if token.kind == "attrname":
            self.advance()
            return self.placeholders.name(token.text, self.kind)
        if token.kind == "name" and token.word not in KEYWORDS:
            self.advance()
            return token.text
        self.fail()

    def operand(self) -> Operand:
        token = self.current
        if token.kind == "value":
            self.advance()
            return self.placeholders.value(token.text, self.kind)
        if token.kind == "name" and token.text == "size" and self.tokens[self.index + 1].text == "(":
            self.advance()
            self.expect("(")
            path = self.path()
            self.expect(")")
            return Size(path)
        if token.kind == "name" and self.tokens[self.index + 1].text == "(":
            self.fail(f"Invalid function name; function: {token.text}")
        return self.path()

    # -- conditions ------------------------------------------------------------

    def condition(self) -> Condition:
        result = self.conjunction()
        while self.accept("OR"):
            result = Or(result, self.conjunction())
        return result

    def conjunction(self) -> Condition:
        result = self.negation()
        while self.accept("AND"):
            result = And(result, self.negation())
        return result

    def negation(self) -> Condition:
        if self.accept("NOT"):
            return Not(self.negation())
        if self.accept("("):
            inner = self.condition()
            self.expect(")")
            return inner
        return self.predicate()

    def predicate(self) -> Condition:
        token = self.current
        if token.kind == "name" and token.text in BOOLEAN_FUNCTIONS and self.tokens[self.index + 1].text == "(":
            return self.function()
        left = self.operand()
        word = self.current.word
        if word in COMPARATORS:
            self.advance()
            return Compare(word, left, self.operand())
        if self.accept("BETWEEN"):
            low = self.operand()
            self.expect("AND")
            return Between(left, low, self.operand())
        if self.accept("IN"):
            self.expect("(")
            options = [self.operand()]
            while self.accept(","):
                options.append(self.operand())
            self.expect(")")
            if len(options) > 100:
                self.fail("The IN operator accepts at most 100 operands")
            return In(left, tuple(options))
        self.fail()

    def function(self) -> Function:
        name = self.advance().text
        self.expect("(")
        args = [self.operand()]
        while self.accept(","):
            args.append(self.operand())
        self.expect(")")
        if len(args) != BOOLEAN_FUNCTIONS[name]:
            self.fail(
                "Incorrect number of operands for operator or function; "
                f"operator or function: {name}, number of operands: {len(args)}"
            )
        if not isinstance(args[0], Path):
            self.fail(f"Operator or function requires a document path; operator or function: {name}")
        return Function(name, tuple(args))

    # -- update expressions ----------------------------------------------------

    def update(self) -> UpdateExpression:
        clauses: dict[str, list[object]] = {}
        while self.current.kind != "eof":
            word = self.current.word
            if self.current.kind != "name" or word not in ("SET", "REMOVE", "ADD", "DELETE"):
                self.fail()
            if word in clauses:
                self.fail(f'The "{word}" section can only be used once in an update expression;')
            self.advance()
            clauses[word] = [self.update_action(word)]
            while self.accept(","):
                clauses[word].append(self.update_action(word))
        return UpdateExpression(
            tuple(clauses.get("SET", ())), tuple(clauses.get("REMOVE", ())),  # type: ignore[arg-type]
            tuple(clauses.get("ADD", ())), tuple(clauses.get("DELETE", ())),  # type: ignore[arg-type]
        )

    def update_action(self, clause: str) -> object:
        path = self.path()
        if clause == "REMOVE":
            return path
        if clause == "SET":
            self.expect("=")
            return (path, self.set_value())
        if self.current.kind != "value":
            self.fail()
        return (path, self.placeholders.value(self.advance().text, self.kind))

    def set_value(self) -> UpdateValue:
        left = self.set_operand()
        if self.current.text in ("+", "-"):
            op = self.advance().text
            return Arithmetic(op, left, self.set_operand())
        return left

    def set_operand(self) -> UpdateValue:
        token = self.current
        if token.kind == "value":
            self.advance()
            return self.placeholders.value(token.text, self.kind)
        if token.kind != "name" or self.tokens[self.index + 1].text != "(":
            return self.path()
        if token.text not in ("if_not_exists", "list_append"):
            self.fail(f"Invalid function name; function: {token.text}")
        self.advance()
        self.expect("(")
        first = self.path() if token.text == "if_not_exists" else self.set_operand()
        self.expect(",")
        second = self.set_operand()
        self.expect(")")
        if isinstance(first, Path) and token.text == "if_not_exists":
            return IfNotExists(first, second)
        return ListAppend(first, second)


def parse_condition(text: str, placeholders: Placeholders, kind: str = "ConditionExpression") -> Condition:
    """Parse a ConditionExpression or FilterExpression (pass kind="FilterExpression")."""
    parser = Parser(text, kind, placeholders)
    result = parser.condition()
    parser.finish()
    return result


def parse_projection(text: str, placeholders: Placeholders) -> tuple[Path, ...]:
    """Parse a ProjectionExpression: comma-separated document paths, none overlapping."""
    parser = Parser(text, "ProjectionExpression", placeholders)
    paths = [parser.path()]
    while parser.accept(","):
        paths.append(parser.path())
    parser.finish()
    ensure_no_overlap(paths, "ProjectionExpression")
    return tuple(paths)


def ensure_no_overlap(paths: list[Path], kind: str) -> None:
    """Two paths where one is a prefix of the other (or equal) are rejected."""
    for i, first in enumerate(paths):
        for second in paths[i + 1:]:
            shorter, longer = sorted((first.elements, second.elements), key=len)
            if longer[: len(shorter)] == shorter:
                raise ValidationError(
                    f"Invalid {kind}: Two document paths overlap with each other; must remove "
                    f"or rewrite one of these paths; path one: {_render(first)}, path two: {_render(second)}"
                )


def _render(path: Path) -> str:
    return "[" + ", ".join(str(e) for e in path.elements) + "]"


def parse_update(text: str, placeholders: Placeholders) -> UpdateExpression:
    """Parse an UpdateExpression: SET, REMOVE, ADD, DELETE clauses, each at most once."""
    parser = Parser(text, "UpdateExpression", placeholders)
    result = parser.update()
    paths = [p for p, _ in result.set] + list(result.remove)
    paths += [p for p, _ in result.add] + [p for p, _ in result.delete]
    ensure_no_overlap(paths, "UpdateExpression")
    return result


def ensure_ordered_bounds(low: AttributeValue, high: AttributeValue, kind: str) -> None:
    """BETWEEN with a lower bound above the upper bound is rejected."""
    order = compare(low, high)
    if order is not None and order > 0:
        raise ValidationError(
            f"Invalid {kind}: The BETWEEN operator requires upper bound to be greater than or "
            f"equal to lower bound; lower operand: {low}, upper operand: {high}"
        )
