"""Unit tests of squall.tables.expressions and squall.tables.evaluate (pure, no I/O)."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squall.tables.errors import ValidationError
from squall.tables.evaluate import apply_update, evaluate, get_path, project
from squall.tables.expressions import (
    And, Between, Compare, Condition, Function, In, Not, Or, Path, Placeholders, Value, parse_condition,
    parse_projection, parse_update,
)
from squall.tables.key_conditions import KeyCondition, SortCondition, parse_key_condition

ITEM: dict[str, Any] = {
    "pk": {"S": "user#1"},
    "age": {"N": "42"},
    "name": {"S": "Alice"},
    "tags": {"SS": ["a", "b"]},
    "scores": {"NS": ["1", "2.5"]},
    "list": {"L": [{"S": "x"}, {"N": "2"}, {"M": {"deep": {"S": "y"}}}]},
    "map": {"M": {"inner": {"M": {"n": {"N": "5"}}}, "s": {"S": "text"}}},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "bin": {"B": "AAEC"},
    "a.b": {"S": "dotted"},
}


def cond(text: str, values: dict[str, Any] | None = None, names: dict[str, str] | None = None,
         item: dict[str, Any] | None = None) -> bool:
    placeholders = Placeholders(names or {}, values or {})
    tree = parse_condition(text, placeholders)
    placeholders.ensure_all_used()
    return evaluate(tree, ITEM if item is None else item)


def update(text: str, values: dict[str, Any] | None = None, names: dict[str, str] | None = None,
           item: dict[str, Any] | None = None) -> dict[str, Any]:
    placeholders = Placeholders(names or {}, values or {})
    tree = parse_update(text, placeholders)
    placeholders.ensure_all_used()
    return apply_update(tree, ITEM if item is None else item)


N = lambda n: {"N": str(n)}  # noqa: E731
S = lambda s: {"S": s}  # noqa: E731


# -- comparators and operators -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("age = :v", N(42), True), ("age = :v", N("42.0"), True), ("age = :v", S("42"), False),
        ("age <> :v", N(41), True), ("age <> :v", N(42), False),
        ("age < :v", N(43), True), ("age < :v", N(42), False), ("age <= :v", N(42), True),
        ("age > :v", N(41), True), ("age > :v", N(42), False), ("age >= :v", N(42), True),
        ("age < :v", S("z"), False), ("name < :v", S("Bob"), True), ("name > :v", S("a"), False),
        ("missing = :v", N(1), False), ("missing <> :v", N(1), True), ("missing < :v", N(1), False),
        ("tags = :v", {"SS": ["b", "a"]}, True), ("list[1] = :v", N(2), True),
        ("map.inner.n >= :v", N(5), True), ("list[2].deep = :v", S("y"), True),
        ("list[9] = :v", S("x"), False), ("map.s.x = :v", S("x"), False),
    ],
)
def test_comparators(text: str, value: dict[str, Any], expected: bool) -> None:
    assert cond(text, {":v": value}) is expected


def test_between_and_in() -> None:
    assert cond("age BETWEEN :a AND :b", {":a": N(40), ":b": N(42)})
    assert not cond("age BETWEEN :a AND :b", {":a": N(43), ":b": N(50)})
    assert not cond("age BETWEEN :a AND :b", {":a": S("a"), ":b": S("z")})
    assert cond("name BETWEEN :a AND :b", {":a": S("A"), ":b": S("B")})
    assert cond("age IN (:a, :b)", {":a": N(1), ":b": N(42)})
    assert not cond("age IN (:a)", {":a": N(1)})
    assert cond("name IN (:a,:b,:c)", {":a": N(1), ":b": S("x"), ":c": S("Alice")})
    with pytest.raises(ValidationError, match="BETWEEN operator requires upper bound"):
        cond("age BETWEEN :a AND :b", {":a": N(5), ":b": N(1)})


def test_in_accepts_at_most_100_operands() -> None:
    values = {f":v{i}": N(i) for i in range(101)}
    with pytest.raises(ValidationError, match="at most 100"):
        cond(f"age IN ({', '.join(values)})", values)


def test_functions() -> None:
    assert cond("attribute_exists(age)")
    assert not cond("attribute_exists(missing)")
    assert cond("attribute_not_exists(map.inner.zzz)")
    assert cond("attribute_exists(list[2].deep)")
    assert cond("attribute_type(age, :t)", {":t": S("N")})
    assert cond("attribute_type(nothing, :t)", {":t": S("NULL")})
    assert not cond("attribute_type(age, :t)", {":t": S("S")})
    assert cond("begins_with(name, :p)", {":p": S("Al")})
    assert not cond("begins_with(age, :p)", {":p": S("4")})
    assert cond("begins_with(bin, :p)", {":p": {"B": "AA=="}})
    assert cond("contains(name, :p)", {":p": S("lic")})
    assert cond("contains(tags, :p)", {":p": S("a")})
    assert not cond("contains(tags, :p)", {":p": S("c")})
    assert cond("contains(scores, :p)", {":p": N("2.50")})
    assert cond("contains(list, :p)", {":p": N(2)})
    assert not cond("contains(missing, :p)", {":p": S("a")})
    assert cond("contains(name, name)")


def test_function_errors() -> None:
    with pytest.raises(ValidationError, match="Invalid attribute type name"):
        cond("attribute_type(age, :t)", {":t": S("STRING")})
    with pytest.raises(ValidationError, match="begins_with, operand type: N"):
        cond("begins_with(name, :p)", {":p": N(1)})
    with pytest.raises(ValidationError, match="Invalid function name; function: foo"):
        cond("foo(age)")
    with pytest.raises(ValidationError, match="Incorrect number of operands"):
        cond("attribute_exists(age, name)")
    with pytest.raises(ValidationError, match="requires a document path"):
        cond("attribute_exists(:v)", {":v": N(1)})


def test_size() -> None:
    assert cond("size(name) = :v", {":v": N(5)})
    assert cond("size(tags) < :v", {":v": N(3)})
    assert cond("size(list) = :v", {":v": N(3)})
    assert cond("size(map) = :v", {":v": N(2)})
    assert cond("size(bin) = :v", {":v": N(3)})
    assert cond(":v < size(name)", {":v": N(1)})
    assert not cond("size(missing) = :v", {":v": N(0)})
    with pytest.raises(ValidationError, match="operator or function: size, operand type: N"):
        cond("size(age) = :v", {":v": N(2)})


def test_precedence_not_and_or() -> None:
    t = {":t": S("Alice")}
    # OR binds loosest: false AND false OR true == true.
    assert cond("attribute_exists(x) AND attribute_exists(y) OR name = :t", t)
    # Parentheses change grouping: false AND (false OR true) == false.
    assert not cond("attribute_exists(x) AND (attribute_exists(y) OR name = :t)", t)
    # NOT binds tighter than AND: (NOT false) AND true.
    assert cond("NOT attribute_exists(x) AND name = :t", t)
    assert not cond("NOT (attribute_exists(x) OR name = :t)", t)
    assert cond("NOT NOT name = :t", t)
    assert cond("not attribute_exists(x) and name = :t or age = :t", t)


def test_parse_tree_shape() -> None:
    tree = parse_condition("a = :v OR b = :v AND NOT c = :v", Placeholders({}, {":v": N(1)}))
    v = Value(N(1))
    assert tree == Or(Compare("=", Path(("a",)), v),
                      And(Compare("=", Path(("b",)), v), Not(Compare("=", Path(("c",)), v))))
    tree = parse_condition("#x[1].y BETWEEN :v AND :v", Placeholders({"#x": "a.b"}, {":v": N(1)}))
    assert tree == Between(Path(("a.b", 1, "y")), v, v)


def test_names_and_values_placeholders() -> None:
    assert cond("#n = :v", {":v": S("dotted")}, {"#n": "a.b"})
    assert cond("#m.#i.n = :v", {":v": N(5)}, {"#m": "map", "#i": "inner"})
    with pytest.raises(ValidationError, match="attribute value used in expression is not defined; attribute value: :x"):
        cond("age = :x")
    with pytest.raises(ValidationError, match="attribute name used in the document path is not defined; attribute name: #x"):
        cond("#x = :v", {":v": N(1)})
    with pytest.raises(ValidationError, match=r"ExpressionAttributeValues unused in expressions: keys: \{:x\}"):
        cond("age = :v", {":v": N(1), ":x": N(2)})
    with pytest.raises(ValidationError, match=r"ExpressionAttributeNames unused in expressions: keys: \{#a, #b\}"):
        cond("age = :v", {":v": N(1)}, {"#b": "x", "#a": "y"})


def test_placeholders_shared_across_expressions() -> None:
    placeholders = Placeholders({"#a": "age"}, {":one": N(1), ":max": N(100)})
    parse_update("SET #a = #a + :one", placeholders)
    with pytest.raises(ValidationError, match="unused"):
        placeholders.ensure_all_used()
    parse_condition("#a < :max", placeholders)
    placeholders.ensure_all_used()


def test_invalid_values_in_placeholders() -> None:
    with pytest.raises(ValidationError, match="numeric value"):
        cond("age = :v", {":v": {"N": "x"}})


@pytest.mark.parametrize(
    "text",
    ["", "   ", "age =", "age = :v AND", "(age = :v", "age = :v)", "age == :v", "age = :v :v",
     "AND age = :v", "age BETWEEN :v", "age IN :v", "age IN ()", "list[x] = :v", "age = :v OR",
     "age ! :v", "NOT", "age", "a.b. = :v", "size(age)", "set = :v"],
)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(ValidationError, match="Invalid ConditionExpression"):
        parse_condition(text, Placeholders({}, {":v": N(1)}))


def test_expressions_are_limited_to_4kb() -> None:
    text = " OR ".join(["attribute_exists(a)"] * 200)
    with pytest.raises(ValidationError, match="Expression size has exceeded the maximum allowed size"):
        parse_condition(text, Placeholders())


def test_syntax_error_message_names_token() -> None:
    with pytest.raises(ValidationError, match='Syntax error; token: "<EOF>", near: "='):
        parse_condition("age =", Placeholders())
    with pytest.raises(ValidationError, match='Invalid FilterExpression: Syntax error; token: "!"'):
        parse_condition("age ! :v", Placeholders(), kind="FilterExpression")
    with pytest.raises(ValidationError, match="The expression can not be empty"):
        parse_condition("", Placeholders())


# -- key conditions ------------------------------------------------------------


def key(text: str, values: dict[str, Any], names: dict[str, str] | None = None) -> KeyCondition:
    return parse_key_condition(text, Placeholders(names or {}, values), "pk", "sk")


def test_key_conditions() -> None:
    p, a, b = S("p"), N(1), N(2)
    assert key("pk = :p", {":p": p}) == KeyCondition("pk", p)
    for op in ("=", "<", "<=", ">", ">="):
        expected = KeyCondition("pk", p, SortCondition("sk", op, (a,)))
        assert key(f"pk = :p AND sk {op} :a", {":p": p, ":a": a}) == expected
    assert key("sk BETWEEN :a AND :b AND pk = :p", {":p": p, ":a": a, ":b": b}) == KeyCondition(
        "pk", p, SortCondition("sk", "BETWEEN", (a, b)))
    assert key("(#k = :p) AND begins_with(#s, :a)", {":p": p, ":a": S("x")}, {"#k": "pk", "#s": "sk"}) == \
        KeyCondition("pk", p, SortCondition("sk", "begins_with", (S("x"),)))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pk = :p OR sk = :a", "Invalid operator used in KeyConditionExpression: OR"),
        ("NOT pk = :p", "Invalid operator used in KeyConditionExpression: NOT"),
        ("pk = :p AND sk <> :a", "Invalid operator used in KeyConditionExpression: <>"),
        ("pk = :p AND sk IN (:a)", "Invalid operator used in KeyConditionExpression: IN"),
        ("pk = :p AND contains(sk, :a)", "Invalid operator used in KeyConditionExpression: contains"),
        ("pk = :p AND attribute_exists(sk)", "Invalid operator used in KeyConditionExpression: attribute_exists"),
        ("sk = :a", "Query condition missed key schema element: pk"),
        ("pk < :p", "Query key condition not supported"),
        ("pk = :p AND other = :a", "Query condition missed key schema element: sk"),
        ("pk = :p AND sk = :a AND sk = :a", "Conditions can be of length 1 or 2 only"),
        ("pk = :p AND pk = :p", "only contain one condition per key"),
        ("pk = :p AND sk.x = :a", "Query key condition not supported"),
        ("pk = :p AND sk = pk", "Query key condition not supported"),
        ("pk = :p AND sk BETWEEN :b AND :a", "BETWEEN operator requires upper bound"),
        ("pk = :p AND begins_with(sk, :a)", "operator or function: begins_with, operand type: N"),
    ],
)
def test_key_condition_errors(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        key(text, {":p": S("p"), ":a": N(1), ":b": N(2)})


# -- projection ----------------------------------------------------------------


def proj(text: str, names: dict[str, str] | None = None) -> dict[str, Any]:
    return project(ITEM, parse_projection(text, Placeholders(names or {}, {})))


def test_projection() -> None:
    assert proj("age, name, missing") == {"age": N(42), "name": S("Alice")}
    assert proj("map.inner.n, map.zzz") == {"map": {"M": {"inner": {"M": {"n": N(5)}}}}}
    assert proj("list[2].deep, list[0]") == {"list": {"L": [S("x"), {"M": {"deep": S("y")}}]}}
    assert proj("#d, #m.s", {"#d": "a.b", "#m": "map"}) == {"a.b": S("dotted"), "map": {"M": {"s": S("text")}}}
    assert proj("list[7]") == {}


def test_projection_errors() -> None:
    with pytest.raises(ValidationError, match="Two document paths overlap"):
        proj("map, map.s")
    with pytest.raises(ValidationError, match="Two document paths overlap"):
        proj("age, age")
    with pytest.raises(ValidationError, match="Invalid ProjectionExpression: Syntax error"):
        proj("age,")


def test_get_path_does_not_cross_types() -> None:
    assert get_path(ITEM, Path(("name", 0))) is None
    assert get_path(ITEM, Path(("list", "x"))) is None


# -- updates -------------------------------------------------------------------


def test_set_actions() -> None:
    item = update("SET age = :v, #n = name, map.inner.n = :w, list[0] = :w, list[10] = :v",
                  {":v": N(1), ":w": S("w")}, {"#n": "copy"})
    assert item["age"] == N(1) and item["copy"] == S("Alice")
    assert item["map"]["M"]["inner"]["M"]["n"] == S("w")
    assert item["list"]["L"][0] == S("w") and item["list"]["L"][3] == N(1)
    assert ITEM["age"] == N(42)  # the input item is untouched


def test_set_arithmetic_uses_the_original_item() -> None:
    item = update("SET age = age + :one, copy = age, neg = :one - age", {":one": N(1)})
    assert item["age"] == N(43) and item["copy"] == N(42) and item["neg"] == N(-41)
    assert update("SET x = :a + :b", {":a": N("0.1"), ":b": N("0.2")})["x"] == N("0.3")


def test_set_functions() -> None:
    assert update("SET age = if_not_exists(age, :z)", {":z": N(0)})["age"] == N(42)
    assert update("SET c = if_not_exists(c, :z) + :one", {":z": N(0), ":one": N(1)})["c"] == N(1)
    item = update("SET list = list_append(list, :l), l2 = list_append(:l, list)", {":l": {"L": [N(9)]}})
    assert item["list"]["L"][-1] == N(9) and len(item["list"]["L"]) == 4
    assert item["l2"]["L"][0] == N(9)
    item = update("SET l = list_append(if_not_exists(l, :e), :l)", {":e": {"L": []}, ":l": {"L": [N(1)]}})
    assert item["l"] == {"L": [N(1)]}


@pytest.mark.parametrize(
    ("text", "values", "message"),
    [
        ("SET x = missing + :one", {":one": N(1)}, "refers to an attribute that does not exist in the item"),
        ("SET x = missing", {}, "refers to an attribute that does not exist in the item"),
        ("SET x = name + :one", {":one": N(1)}, "incorrect data type"),
        ("SET x = list_append(age, :l)", {":l": {"L": []}}, "incorrect data type"),
        ("SET nope.deep = :one", {":one": N(1)}, "document path provided in the update expression is invalid"),
        ("SET name[0] = :one", {":one": N(1)}, "document path provided in the update expression is invalid"),
        ("REMOVE nope.deep", {}, "document path provided in the update expression is invalid"),
        ("ADD name :one", {":one": N(1)}, "incorrect data type"),
        ("ADD x :s", {":s": S("s")}, "operator: ADD, operand type: S"),
        ("ADD tags :n", {":n": {"NS": ["1"]}}, "incorrect data type"),
        ("DELETE tags :s", {":s": S("a")}, "operator: DELETE, operand type: S"),
        ("DELETE name :s", {":s": {"SS": ["a"]}}, "incorrect data type"),
        ("SET a = :one SET b = :one", {":one": N(1)}, 'The "SET" section can only be used once'),
        ("REMOVE a REMOVE b", {}, 'The "REMOVE" section can only be used once'),
        ("SET age = :one REMOVE age", {":one": N(1)}, "Two document paths overlap"),
        ("SET map.s = :one, map = :one", {":one": N(1)}, "Two document paths overlap"),
        ("SET x = foo(age)", {}, "Invalid function name; function: foo"),
        ("SET x = :one +", {":one": N(1)}, "Syntax error"),
        ("SET x :one", {":one": N(1)}, "Syntax error"),
        ("ADD x", {}, "Syntax error"),
        ("FROB x", {}, "Syntax error"),
        ("", {}, "The expression can not be empty"),
        ("SET x = :big + :one", {":big": N("1e37"), ":one": N("0.1")}, "38 significant digits"),
    ],
)
def test_update_errors(text: str, values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        update(text, values)


def test_remove() -> None:
    item = update("REMOVE age, map.inner, list[0], list[2], missing, list[8]")
    assert "age" not in item and item["map"]["M"] == {"s": S("text")}
    assert item["list"]["L"] == [N(2)]  # indexes refer to the list before the update


def test_add_and_delete() -> None:
    item = update("ADD age :n, counter :n, tags :s, fresh :s", {":n": N(-2), ":s": {"SS": ["b", "c"]}})
    assert item["age"] == N(40) and item["counter"] == N(-2)
    assert item["tags"] == {"SS": ["a", "b", "c"]} and item["fresh"] == {"SS": ["b", "c"]}
    assert update("ADD scores :n", {":n": {"NS": ["2.50", "3"]}})["scores"] == {"NS": ["1", "2.5", "3"]}
    item = update("DELETE tags :s, scores :n, missing :s", {":s": {"SS": ["a", "z"]}, ":n": {"NS": ["1", "2.5"]}})
    assert item["tags"] == {"SS": ["b"]} and "scores" not in item and "missing" not in item


def test_clauses_in_any_order_and_case() -> None:
    item = update("remove flag add age :n Set x = :n delete tags :s",
                  {":n": N(1), ":s": {"SS": ["a"]}})
    assert "flag" not in item and item["age"] == N(43) and item["x"] == N(1)
    assert item["tags"] == {"SS": ["b"]}


def test_update_placeholders_must_be_used_and_defined() -> None:
    with pytest.raises(ValidationError, match=r"unused in expressions: keys: \{:b\}"):
        update("SET x = :a", {":a": N(1), ":b": N(2)})
    with pytest.raises(ValidationError, match="attribute value: :a"):
        update("SET x = :a")


# -- property: rendering a random condition tree and parsing it back -------------

PATHS = [Path(("a",)), Path(("b",)), Path(("m", "x")), Path(("l", 0)), Path(("n.s",))]
VALUES = [N(1), N(2), N("-1.5"), S("a"), S("ab"), S(""), {"BOOL": True}, {"SS": ["a"]}]
operands = st.one_of(st.sampled_from(PATHS), st.sampled_from(VALUES).map(Value))
leaves = st.one_of(
    st.builds(Compare, st.sampled_from(["=", "<>", "<", "<=", ">", ">="]), operands, operands),
    st.builds(Between, operands, operands, operands).filter(
        lambda b: not (isinstance(b.low, Value) and isinstance(b.high, Value))),
    st.builds(lambda o, opts: In(o, tuple(opts)), operands, st.lists(operands, min_size=1, max_size=3)),
    st.builds(lambda p: Function("attribute_exists", (p,)), st.sampled_from(PATHS)),
    st.builds(lambda p: Function("attribute_not_exists", (p,)), st.sampled_from(PATHS)),
    st.builds(lambda p, v: Function("begins_with", (p, Value(v))), st.sampled_from(PATHS),
              st.sampled_from([S("a"), S("")])),
    st.builds(lambda p, o: Function("contains", (p, o)), st.sampled_from(PATHS), operands),
)
conditions = st.recursive(
    leaves,
    lambda inner: st.one_of(st.builds(And, inner, inner), st.builds(Or, inner, inner), st.builds(Not, inner)),
    max_leaves=8,
)
items = st.dictionaries(
    st.sampled_from(["a", "b", "m", "l", "n.s"]),
    st.one_of(st.sampled_from(VALUES), st.builds(lambda v: {"M": {"x": v}}, st.sampled_from(VALUES)),
              st.builds(lambda v: {"L": [v]}, st.sampled_from(VALUES))),
)


class Renderer:
    """Renders a tree as text with placeholders, random spacing and redundant parentheses."""

    def __init__(self, draw: Callable[..., Any]) -> None:
        self.draw = draw
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def space(self) -> str:
        return self.draw(st.sampled_from(["", " ", "  ", "\n", "\t"]))

    def path(self, path: Path) -> str:
        parts = []
        for element in path.elements:
            if isinstance(element, int):
                parts.append(f"[{element}]")
                continue
            if element == "n.s" or self.draw(st.booleans()):
                key = f"#p{len(self.names)}"
                self.names[key] = element
                element = key
            parts.append(("." if parts else "") + element)
        return "".join(parts)

    def operand(self, node: Any) -> str:
        if isinstance(node, Path):
            return self.path(node)
        key = f":v{len(self.values)}"
        self.values[key] = node.value
        return key

    def condition(self, node: Condition, parent: int = 0) -> str:
        level = {Or: 1, And: 2, Not: 3}.get(type(node), 4)
        text = self.bare(node, level)
        needed = level < parent or (level == parent and level in (1, 2))
        if needed or self.draw(st.integers(0, 4)) == 0:
            return f"({self.space()}{text}{self.space()})"
        return text

    def bare(self, node: Condition, level: int) -> str:
        s = self.space
        if isinstance(node, (And, Or)):
            word = self.draw(st.sampled_from(["AND", "and", "And"] if isinstance(node, And) else ["OR", "or"]))
            return f"{self.condition(node.left, level)} {s()}{word} {s()}{self.condition(node.right, level)}"
        if isinstance(node, Not):
            return f"NOT {s()}{self.condition(node.operand, level)}"
        if isinstance(node, Compare):
            return f"{self.operand(node.left)}{s()}{node.op}{s()}{self.operand(node.right)}"
        if isinstance(node, Between):
            return (f"{self.operand(node.operand)} BETWEEN {s()}{self.operand(node.low)} AND "
                    f"{s()}{self.operand(node.high)}")
        if isinstance(node, In):
            return f"{self.operand(node.operand)} IN{s()}({s()}{f'{s()},'.join(self.operand(o) for o in node.options)})"
        assert isinstance(node, Function)
        return f"{node.name}{s()}({', '.join(self.operand(a) for a in node.args)}{s()})"


@settings(max_examples=300)
@given(conditions, items, st.data())
def test_rendered_conditions_parse_back(tree: Condition, item: dict[str, Any], data: st.DataObject) -> None:
    renderer = Renderer(data.draw)
    text = renderer.condition(tree)
    placeholders = Placeholders(renderer.names, renderer.values)
    parsed = parse_condition(text, placeholders)
    placeholders.ensure_all_used()
    assert evaluate(parsed, item) == evaluate(tree, item)
