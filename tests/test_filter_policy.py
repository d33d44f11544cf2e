"""Unit tests of squall.manifest.filter_policy: SNS subscription filter policies (pure, no I/O)."""

from __future__ import annotations

import ipaddress
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.manifest.filter_policy import FilterPolicy, FilterPolicyError, parse_filter_policy


def S(value: str) -> dict[str, str]:
    return {"Type": "String", "Value": value}


def N(value: Any) -> dict[str, str]:
    return {"Type": "Number", "Value": str(value)}


def A(*values: Any) -> dict[str, str]:
    return {"Type": "String.Array", "Value": json.dumps(list(values))}


def attrs(policy: Any, **attributes: Any) -> bool:
    """Whether the attribute-scoped `policy` accepts a message with these attributes."""
    return parse_filter_policy(policy).matches(attributes)


def body(policy: Any, message: Any) -> bool:
    """Whether the body-scoped `policy` accepts `message` (JSON-encoded unless already text)."""
    text = message if isinstance(message, str) else json.dumps(message)
    return parse_filter_policy(policy, "MessageBody").matches_body(text)


def error(policy: Any, scope: str = "MessageAttributes") -> str:
    with pytest.raises(FilterPolicyError) as caught:
        parse_filter_policy(policy, scope)
    return str(caught.value)


# -- exact values ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("rugby", True), ("tennis", True), ("baseball", False),
                                                 ("Rugby", False), ("rugby ", False)])
def test_exact_string_values_are_an_or_and_case_sensitive(value: str, expected: bool) -> None:
    assert attrs({"customer_interests": ["rugby", "tennis"]}, customer_interests=S(value)) is expected


def test_string_array_matches_when_any_element_matches() -> None:
    policy = {"customer_interests": ["rugby", "tennis"]}
    assert attrs(policy, customer_interests=A("baseball", "tennis"))
    assert not attrs(policy, customer_interests=A("baseball"))
    assert not attrs(policy, customer_interests=A())
    assert not attrs(policy, customer_interests={"Type": "String.Array", "Value": "not json"})


def test_string_array_elements_keep_their_json_types() -> None:
    assert attrs({"n": [{"numeric": [">", 5]}]}, n=A("x", 7))
    assert not attrs({"n": [{"numeric": [">", 5]}]}, n=A("7"))
    assert attrs({"b": [True]}, b=A(False, True))
    assert not attrs({"b": ["true"]}, b=A(True))


def test_numbers_match_numbers_numerically_and_not_strings() -> None:
    policy = {"price": [301.5]}
    assert attrs(policy, price=N("301.5"))
    assert attrs(policy, price=N("3.015e2"))
    assert attrs(policy, price=N("301.50"))
    assert not attrs(policy, price=S("301.5"))
    assert not attrs({"price": ["301.5"]}, price=N("301.5"))


def test_binary_attributes_are_ignored_as_if_absent() -> None:
    binary = {"Type": "Binary", "Value": "AAEC"}
    assert not attrs({"blob": ["AAEC"]}, blob=binary)
    assert not attrs({"blob": [{"exists": True}]}, blob=binary)
    assert attrs({"blob": [{"exists": False}]}, blob=binary)


def test_publish_api_attribute_shape_is_read_too() -> None:
    assert attrs({"store": ["fans"]}, store={"DataType": "String", "StringValue": "fans"})
    assert attrs({"n": [{"numeric": ["=", 2]}]}, n={"DataType": "Number.int", "StringValue": "2"})


def test_malformed_attribute_is_a_type_error() -> None:
    with pytest.raises(TypeError, match='message attribute "store" must be'):
        attrs({"store": ["fans"]}, store="fans")


def test_missing_key_fails_and_every_key_must_match() -> None:
    policy = {"customer_interests": ["rugby"], "price_usd": [{"numeric": [">", 100]}]}
    assert attrs(policy, customer_interests=S("rugby"), price_usd=N(101))
    assert not attrs(policy, customer_interests=S("rugby"), price_usd=N(100))
    assert not attrs(policy, customer_interests=S("rugby"))
    assert not attrs(policy, other=S("x"))


# -- string operators -----------------------------------------------------------


@pytest.mark.parametrize(("operator", "operand", "value", "expected"), [
    ("prefix", "bas", "basketball", True), ("prefix", "bas", "rugby", False),
    ("prefix", "bas", "Baseball", False), ("suffix", "ball", "football", True),
    ("suffix", "ball", "balloon", False), ("equals-ignore-case", "RuGbY", "rugby", True),
    ("equals-ignore-case", "rugby", "RUGBY", True), ("equals-ignore-case", "rugby", "rugbys", False),
])
def test_string_operators(operator: str, operand: str, value: str, expected: bool) -> None:
    assert attrs({"k": [{operator: operand}]}, k=S(value)) is expected
    assert attrs({"k": [{operator: operand}]}, k=A("zzz", value)) is expected


def test_string_operators_do_not_match_numbers() -> None:
    assert not attrs({"k": [{"prefix": "1"}]}, k=N(12))
    assert attrs({"k": [{"prefix": "1"}]}, k=S("12"))


# -- anything-but ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("baseball", True), ("football", True),
                                                 ("rugby", False), ("tennis", False)])
def test_anything_but_list(value: str, expected: bool) -> None:
    assert attrs({"k": [{"anything-but": ["rugby", "tennis"]}]}, k=S(value)) is expected


def test_anything_but_single_value_and_numbers() -> None:
    assert attrs({"k": [{"anything-but": "rugby"}]}, k=S("golf"))
    assert not attrs({"k": [{"anything-but": "rugby"}]}, k=S("rugby"))
    policy = {"price": [{"anything-but": [100, 500]}]}
    assert attrs(policy, price=N(101))
    assert attrs(policy, price=N("100.1"))
    assert not attrs(policy, price=N("1e2"))
    assert attrs(policy, price=S("100"))  # a string is not the number 100


def test_anything_but_with_prefix() -> None:
    policy = {"event": [{"anything-but": {"prefix": "order-"}}]}
    assert attrs(policy, event=S("data-entry"))
    assert attrs(policy, event=S("order_number"))
    assert not attrs(policy, event=S("order-cancelled"))


def test_anything_but_string_array_needs_no_element_excluded() -> None:
    policy = {"k": [{"anything-but": ["rugby", "tennis"]}]}
    assert attrs(policy, k=A("baseball", "golf"))
    assert not attrs(policy, k=A("rugby", "baseball"))


def test_anything_but_needs_the_key_unless_combined_with_exists_false() -> None:
    assert not attrs({"k": [{"anything-but": "x"}]}, other=S("y"))
    assert attrs({"k": [{"anything-but": "x"}, {"exists": False}]}, other=S("y"))


# -- numeric --------------------------------------------------------------------


@pytest.mark.parametrize(("condition", "value", "expected"), [
    (["=", 301.5], "301.5", True), (["=", 301.5], "3.015e2", True), (["=", 301.5], "301.6", False),
    (["<", 0], "-0.5", True), (["<", 0], "0", False), (["<=", 0], "0", True),
    ([">", 0], "0", False), ([">=", 0], "0", True),
    ([">", 0, "<=", 150], "150", True), ([">", 0, "<=", 150], "150.0001", False),
    ([">", 0, "<=", 150], "0", False), ([">=", 0, "<", 10], "0", True), ([">=", 0, "<", 10], "10", False),
])
def test_numeric(condition: list[Any], value: str, expected: bool) -> None:
    assert attrs({"price": [{"numeric": condition}]}, price=N(value)) is expected


def test_numeric_ignores_strings_and_non_numbers() -> None:
    assert not attrs({"price": [{"numeric": [">", 0]}]}, price=S("5"))
    assert not attrs({"price": [{"numeric": [">", 0]}]}, price=N("lots"))
    assert not attrs({"price": [{"numeric": [">", 0]}]}, price=N("Infinity"))


def test_numbers_compare_exactly() -> None:
    assert not attrs({"p": [{"numeric": ["=", 0.3]}]}, p=N("0.30000000000000004"))
    assert attrs({"p": [{"numeric": ["=", 0.3]}]}, p=N("0.300"))


@given(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6), st.decimals(-10**7, 10**7, places=3))
def test_numeric_range_agrees_with_decimal_comparison(low: int, high: int, value: Decimal) -> None:
    if low >= high:
        low, high = high - 1, low
    policy = {"p": [{"numeric": [">", low, "<=", high]}]}
    assert attrs(policy, p=N(value)) is (low < value <= high)


# -- exists ---------------------------------------------------------------------


def test_exists_true_and_false() -> None:
    assert attrs({"store": [{"exists": True}]}, store=S("fans"), other=S("x"))
    assert not attrs({"store": [{"exists": True}]}, other=S("x"))
    assert not attrs({"store": [{"exists": False}]}, store=S("fans"))
    assert attrs({"store": [{"exists": False}]}, other=S("x"))


def test_exists_false_needs_at_least_one_attribute() -> None:
    assert not attrs({"store": [{"exists": False}]})


def test_exists_true_needs_a_value_neither_null_nor_empty() -> None:
    policy = {"a": [{"exists": True}]}
    assert body(policy, {"a": 0})
    assert not body(policy, {"a": None})
    assert not body(policy, {"a": ""})
    assert not body(policy, {"a": []})
    assert body({"a": [{"exists": False}]}, {"a": None, "b": 1})


# -- cidr -----------------------------------------------------------------------


@pytest.mark.parametrize(("network", "value", "expected"), [
    ("10.0.0.0/24", "10.0.0.0", True), ("10.0.0.0/24", "10.0.0.255", True),
    ("10.0.0.0/24", "10.1.1.0", False), ("10.0.0.0/24", "10.0.0", False),
    ("10.0.0.0/24", "not an ip", False), ("10.0.0.7/24", "10.0.0.9", True),
    ("2001:db8::/32", "2001:db8::1", True), ("2001:db8::/32", "2001:db9::1", False),
    ("2001:db8::/32", "10.0.0.1", False), ("0.0.0.0/0", "::1", False),
])
def test_cidr(network: str, value: str, expected: bool) -> None:
    assert attrs({"source_ip": [{"cidr": network}]}, source_ip=S(value)) is expected


@given(st.ip_addresses(v=4), st.integers(0, 32))
def test_cidr_agrees_with_ipaddress(address: ipaddress.IPv4Address, bits: int) -> None:
    network = ipaddress.ip_network(f"10.20.30.40/{bits}", strict=False)
    policy = {"ip": [{"cidr": f"10.20.30.40/{bits}"}]}
    assert attrs(policy, ip=S(str(address))) is (address in network)


# -- $or ------------------------------------------------------------------------


def test_or_operator_at_the_top() -> None:
    policy = {"source": ["aws.cloudwatch"],
              "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]}
    source = S("aws.cloudwatch")
    assert attrs(policy, source=source, metricName=S("CPUUtilization"))
    assert attrs(policy, source=source, namespace=S("AWS/EC2"))
    assert not attrs(policy, source=source, namespace=S("AWS/ES"))
    assert not attrs(policy, source=S("aws.ec2"), metricName=S("CPUUtilization"))


def test_or_nested_in_an_or_branch() -> None:
    policy = {"source": ["s"], "$or": [{"metricName": ["m"]},
                                       {"metricType": ["t"], "$or": [{"id": [1]}, {"space": [2]}]}]}
    assert attrs(policy, source=S("s"), metricType=S("t"), space=N(2))
    assert not attrs(policy, source=S("s"), metricType=S("t"), space=N(3))
    assert not attrs(policy, source=S("s"), space=N(2))


def test_or_that_sns_would_not_recognise_is_an_ordinary_key() -> None:
    assert attrs({"$or": ["x"]}, **{"$or": S("x")})
    assert attrs({"$or": [{"prefix": "ab"}, {"numeric": [">", 1]}]}, **{"$or": S("abc")})
    assert not attrs({"$or": [{"prefix": "ab"}, {"numeric": [">", 1]}]}, a=S("abc"))


def test_or_in_a_nested_body_policy() -> None:
    policy = {"$or": [{"metricName": ["CPU"]}, {"namespace": ["EC2"]}],
              "detail": {"scope": ["Service"], "$or": [{"source": ["cw"]}, {"type": ["alarm"]}]}}
    assert body(policy, {"namespace": "EC2", "detail": {"scope": "Service", "type": "alarm"}})
    assert not body(policy, {"namespace": "EC2", "detail": {"scope": "Service", "type": "x"}})
    assert not body(policy, {"namespace": "EC2", "detail": {"type": "alarm"}})
    assert not body(policy, {"namespace": "EC2", "scope": "Service", "type": "alarm"})


# -- message body ---------------------------------------------------------------


def test_nested_body_policy() -> None:
    policy = {"store": {"name": ["fans"], "address": {"city": [{"prefix": "Ber"}]}},
              "price": [{"numeric": [">", 10]}]}
    message = {"store": {"name": "fans", "address": {"city": "Berlin"}}, "price": 11}
    assert body(policy, message)
    assert not body(policy, {**message, "price": 10})
    assert not body(policy, {**message, "store": {"name": "fans", "address": {"city": "Paris"}}})
    assert not body(policy, {**message, "store": {"name": "fans"}})
    assert not body(policy, {"store": "fans", "price": 11})


def test_body_arrays_match_when_any_element_does() -> None:
    assert body({"tags": ["b"]}, {"tags": ["a", "b"]})
    assert not body({"tags": ["c"]}, {"tags": ["a", "b"]})
    assert body({"items": {"sku": [{"prefix": "X-"}]}}, {"items": [{"sku": "A-1"}, {"sku": "X-2"}]})
    assert not body({"items": {"sku": [{"prefix": "X-"}]}}, {"items": [{"sku": "A-1"}]})


def test_body_values_keep_their_json_types() -> None:
    assert body({"n": [5]}, '{"n": 5.0}')
    assert not body({"n": ["5"]}, {"n": 5})
    assert body({"ok": [True], "gone": [None]}, {"ok": True, "gone": None})
    assert not body({"ok": [True]}, {"ok": 1})
    assert body({"n": [{"numeric": ["=", 1]}]}, "{\"n\": 1e0}")


def test_exists_does_not_apply_to_intermediate_nodes() -> None:
    assert not body({"a": [{"exists": True}]}, {"a": {"b": 1}})
    assert body({"a": {"b": [{"exists": True}]}}, {"a": {"b": 1}})


@pytest.mark.parametrize("text", ["not json", "[1, 2]", "\"text\"", "", "{\"price\": 5", "NaN", "\xff"])
def test_body_that_is_not_a_json_object_never_matches(text: str) -> None:
    assert not body({"price": [{"exists": False}]}, text)
    assert not parse_filter_policy({"a": [{"exists": False}]}, "MessageBody").matches_body(b"\xff\xfe\x00")


@given(st.text())
def test_matches_body_never_raises(text: str) -> None:
    policy = parse_filter_policy({"a": {"b": [{"numeric": [">", 0]}, {"anything-but": "x"}]}}, "MessageBody")
    assert policy.matches_body(text) in (True, False)


# -- whole policies -------------------------------------------------------------


def test_empty_policy_matches_everything() -> None:
    assert parse_filter_policy("{}").matches({})
    assert parse_filter_policy("{}", "MessageBody").matches_body("not json")


def test_policy_object_records_what_was_parsed() -> None:
    policy = parse_filter_policy('{"a": {"b": ["x", "y"]}, "c": [1]}', "MessageBody")
    assert policy.scope == "MessageBody"
    assert policy.keys == ("a.b", "c")
    assert policy.policy == {"a": {"b": ["x", "y"]}, "c": [1]}
    assert policy.combinations == 2 * 2 * 1


def test_accepts_follows_the_scope() -> None:
    by_body = parse_filter_policy({"a": ["x"]}, "MessageBody")
    by_attributes = parse_filter_policy({"a": ["x"]})
    assert by_body.accepts('{"a": "x"}', {})
    assert not by_body.accepts('{"a": "y"}', {"a": S("x")})
    assert by_attributes.accepts("whatever", {"a": S("x")})
    assert not by_attributes.accepts('{"a": "x"}', {"a": S("y")})


def test_matching_with_the_wrong_scope_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"matches\(\) is for MessageAttributes policies"):
        parse_filter_policy({"a": ["x"]}, "MessageBody").matches({"a": S("x")})
    with pytest.raises(ValueError, match=r"matches_body\(\) is for MessageBody policies"):
        parse_filter_policy({"a": ["x"]}).matches_body('{"a": "x"}')


# -- constraints ----------------------------------------------------------------


def test_at_most_five_keys() -> None:
    five = {key: ["v"] for key in "abcde"}
    assert isinstance(parse_filter_policy(five), FilterPolicy)
    assert error({**five, "f": ["v"]}) == "filter policy has 6 keys (a, b, c, d, e, f); SNS allows at most 5"


def test_nested_policies_count_leaf_keys() -> None:
    five = {"a": {"b": {"c": ["v"], "d": ["v"]}}, "e": {"f": ["v"], "g": ["v"], "h": ["v"]}}
    assert parse_filter_policy(five, "MessageBody").keys == ("a.b.c", "a.b.d", "e.f", "e.g", "e.h")
    six = {**five, "i": {"j": ["v"]}}
    assert error(six, "MessageBody") == ("filter policy has 6 keys (a.b.c, a.b.d, e.f, e.g, e.h, i.j); "
                                         "SNS allows at most 5")


def test_or_branches_count_towards_the_keys() -> None:
    policy = {"a": ["v"], "$or": [{"b": ["v"], "c": ["v"]}, {"d": ["v"], "e": ["v"], "f": ["v"]}]}
    assert "filter policy has 6 keys" in error(policy)
    assert parse_filter_policy({"a": ["v"], "$or": [{"b": ["v"]}, {"b": ["w"], "c": ["v"]}]}).keys == (
        "a", "b", "c")


@pytest.mark.parametrize(("policy", "scope", "combinations"), [
    ({"key_a": ["1", "2", "3"], "key_b": ["1"], "key_c": ["1", "2"]}, "MessageAttributes", 6),
    ({"key_a": {"key_b": {"key_c": ["1", "2", "3", "4"]}}, "key_d": {"key_e": ["1", "2", "3"]}},
     "MessageBody", 72),
    ({"source": ["aws.cloudwatch"],
      "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]},
              {"metricType": ["MetricType"], "$or": [{"metricId": [1234, 4321]},
                                                     {"spaceId": [1000, 2000, 3000]}]}]},
     "MessageAttributes", 7),
    ({"$or": [{"metricName": ["CPUUtilization", "ReadLatency"]}, {"namespace": ["AWS/EC2", "AWS/ES"]}],
      "detail": {"scope": ["Service"], "$or": [{"source": ["aws.cloudwatch"]},
                                               {"type": ["CloudWatch Alarm State Change"]}]}},
     "MessageBody", 32),
])
def test_combinations_as_the_sns_guide_computes_them(policy: dict[str, Any], scope: str,
                                                    combinations: int) -> None:
    assert parse_filter_policy(policy, scope).combinations == combinations


def test_at_most_150_combinations() -> None:
    assert parse_filter_policy({"a": list(range(15)), "b": list(range(10))}).combinations == 150
    message = error({"a": list(range(16)), "b": list(range(10))})
    assert message.startswith("filter policy has 160 combinations of values; SNS allows at most 150")


def test_policy_size_limit() -> None:
    big = json.dumps({"a": ["x" * (256 * 1024)]})
    assert error(big).startswith(f"filter policy is {len(big)} bytes; SNS allows at most 262144")


# -- validation messages --------------------------------------------------------


@pytest.mark.parametrize(("policy", "message"), [
    ('{"a": ["x" "y"]}', "filter policy is not valid JSON: Expecting ',' delimiter at line 1 column 12"),
    ('{"a": [NaN]}', "filter policy is not valid JSON: NaN is not a JSON number"),
    ('{"a": [1], "a": [2]}', 'filter policy has the key "a" twice in one object'),
    ('["a"]', 'filter policy must be a JSON object of keys to lists of values, got ["a"]'),
    ({"price": [{"gt": 5}]}, ('filter policy at "price": unknown operator "gt"; use one of prefix, '
                              "suffix, anything-but, numeric, exists, cidr, equals-ignore-case")),
    ({"a": [{"prefx": "x"}]}, ('filter policy at "a": unknown operator "prefx" (did you mean "prefix"?); '
                               "use one of prefix, suffix, anything-but, numeric, exists, cidr, "
                               "equals-ignore-case")),
    ({"$or": [{"a": ["x"]}]}, ('filter policy at "$or": unknown operator "a"; use one of prefix, suffix, '
                               "anything-but, numeric, exists, cidr, equals-ignore-case; "
                               '"$or" needs a list of at least 2 objects of keys')),
    ({"a": "x"}, 'filter policy at "a": expected a non-empty list of values, got "x"'),
    ({"a": []}, 'filter policy at "a": expected a non-empty list of values, got []'),
    ({"a": {"b": ["x"]}}, ('filter policy at "a": nested keys need the MessageBody scope; a '
                           "MessageAttributes policy maps each attribute name to a list of values")),
    ({"a": [["x"]]}, ('filter policy at "a": a value must be a string, number, true, false, null or an '
                      'operator object such as {"prefix": "a"}, got ["x"]')),
    ({"a": [{"prefix": "x", "suffix": "y"}]},
     'filter policy at "a": an operator object has exactly one key, got {"prefix": "x", "suffix": "y"}'),
    ({"a": [{"prefix": 1}]}, 'filter policy at "a.prefix": expected a string, got 1'),
    ({"a": [{"suffix": None}]}, 'filter policy at "a.suffix": expected a string, got null'),
    ({"a": [{"equals-ignore-case": ["x"]}]}, ('filter policy at "a.equals-ignore-case": expected a string, '
                                              'got ["x"]')),
    ({"a": [{"exists": "yes"}]}, 'filter policy at "a.exists": expected true or false, got "yes"'),
    ({"a": [{"anything-but": []}]}, ('filter policy at "a.anything-but": expected a string, a number, a '
                                     'non-empty list of them or {"prefix": "..."}, got []')),
    ({"a": [{"anything-but": [True]}]}, ('filter policy at "a.anything-but": expected a string, a number, '
                                         'a non-empty list of them or {"prefix": "..."}, got [true]')),
    ({"a": [{"anything-but": {"suffix": "x"}}]},
     'filter policy at "a.anything-but": expected {"prefix": "..."} as the object form, got {"suffix": "x"}'),
    ({"a": [{"anything-but": {"prefix": 3}}]}, ('filter policy at "a.anything-but.prefix": expected a '
                                                "string, got 3")),
    ({"price": [{"numeric": [">", "x"]}]}, 'filter policy at "price.numeric": expected a number, got "x"'),
    ({"price": [{"numeric": ["gt", 1]}]},
     'filter policy at "price.numeric": unknown comparison "gt"; use one of =, <, <=, >, >='),
    ({"price": [{"numeric": [">", 1, "<"]}]},
     ('filter policy at "price.numeric": expected [operator, number] or a range [">" or ">=", low, '
      '"<" or "<=", high], got [">", 1, "<"]')),
    ({"price": [{"numeric": ["=", 1, ">=", 0, "<", 10]}]},
     ('filter policy at "price.numeric": expected [operator, number] or a range [">" or ">=", low, '
      '"<" or "<=", high], got ["=", 1, ">=", 0, "<", 10]')),
    ({"price": [{"numeric": ["<", 10, ">", 0]}]},
     ('filter policy at "price.numeric": a range is [">" or ">=", low, "<" or "<=", high], '
      'got ["<", 10, ">", 0]')),
    ({"price": [{"numeric": [">", 10, "<", 10]}]},
     'filter policy at "price.numeric": the range is empty: 10 is not below 10'),
    ({"price": [{"numeric": [">", 1e10]}]},
     'filter policy at "price.numeric": 10000000000.0 is out of range; SNS compares numbers from -10^9 to 10^9'),
    ({"price": [{"numeric": ["=", True]}]}, 'filter policy at "price.numeric": expected a number, got true'),
    ({"ip": [{"cidr": "10.0.0.1"}]}, ('filter policy at "ip.cidr": "10.0.0.1" needs a prefix length, as in '
                                      "10.0.0.0/24")),
    ({"ip": [{"cidr": "10.0.0.300/24"}]},
     ("filter policy at \"ip.cidr\": \"10.0.0.300/24\" is not an IP network: '10.0.0.300/24' does not "
      "appear to be an IPv4 or IPv6 network")),
    ({"ip": [{"cidr": 10}]}, 'filter policy at "ip.cidr": expected a string, got 10'),
])
def test_validation_errors(policy: Any, message: str) -> None:
    assert error(policy) == message


@pytest.mark.parametrize(("policy", "message"), [
    ({"a": {"b": {}}}, 'filter policy at "a.b": an object needs at least one key'),
    ({"a": {"b": 1}}, 'filter policy at "a.b": expected a non-empty list of values or an object, got 1'),
    ({"a": {"$or": [{"b": ["x"]}, {"c": [{"nope": 1}]}]}},
     ('filter policy at "a.$or[1].c": unknown operator "nope"; use one of prefix, suffix, anything-but, '
      "numeric, exists, cidr, equals-ignore-case")),
    ({"d": {"price": [{"numeric": [">", 1, "<=", 0]}]}},
     'filter policy at "d.price.numeric": the range is empty: 1 is not below 0'),
])
def test_validation_errors_in_body_policies_give_the_key_path(policy: Any, message: str) -> None:
    assert error(policy, "MessageBody") == message


def test_unknown_scope() -> None:
    assert error({"a": ["x"]}, "Body") == 'filter policy scope "Body" is not one of MessageAttributes, MessageBody'


def test_filter_policy_error_is_a_value_error() -> None:
    assert issubclass(FilterPolicyError, ValueError)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
    | st.sampled_from(["prefix", "numeric", "exists", "$or", "cidr", "anything-but", ">", "<=", "10.0.0.0/8"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["a", "b", "$or", "prefix", "numeric", "exists", "cidr",
                                       "anything-but", "suffix"]), children, max_size=3),
    max_leaves=12)


@given(_json, st.sampled_from(["MessageAttributes", "MessageBody"]))
def test_any_json_either_parses_or_raises_filter_policy_error(data: Any, scope: str) -> None:
    try:
        policy = parse_filter_policy(json.dumps(data), scope)
    except FilterPolicyError as exc:
        assert str(exc).startswith("filter policy")
    else:
        assert len(policy.keys) <= 5
        assert policy.combinations <= 150
        if scope == "MessageBody":
            assert policy.matches_body(json.dumps({"a": 1, "b": ["x", {"a": None}]})) in (True, False)
        else:
            assert policy.matches({"a": S("x"), "b": A(1, "y", None)}) in (True, False)


@given(st.text(max_size=8), st.text(max_size=4))
def test_prefix_and_anything_but_prefix_are_complements(value: str, prefix: str) -> None:
    matched = attrs({"k": [{"prefix": prefix}]}, k=S(value))
    assert matched is value.startswith(prefix)
    assert attrs({"k": [{"anything-but": {"prefix": prefix}}]}, k=S(value)) is not matched


@given(st.lists(st.text(max_size=3), min_size=1, max_size=4), st.text(max_size=3))
def test_exact_list_and_anything_but_list_are_complements(values: list[str], value: str) -> None:
    assert attrs({"k": values}, k=S(value)) is (value in values)
    assert attrs({"k": [{"anything-but": values}]}, k=S(value)) is (value not in values)
