"""Unit tests of squall.manifest (and the trigger models of squall.manifest.triggers)."""

from __future__ import annotations

import json
import keyword
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squall.exceptions import ManifestError
from squall.manifest import (MANIFEST_NAME, AuthType, FunctionSpec, HttpTrigger, Manifest,
                             RouteAuth, default_project_name, load_manifest, parse_manifest)


def yaml_text(text: str) -> str:
    """Dedent a manifest written in a test; its first line is line 1."""
    return textwrap.dedent(text).lstrip("\n")


def parse(text: str) -> Manifest:
    return parse_manifest(yaml_text(text))


def error_of(text: str) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        parse(text)
    return caught.value


def assert_error(text: str, field: str | None, line: int | None, fragment: str) -> ManifestError:
    error = error_of(text)
    assert (error.field, error.line) == (field, line), str(error)
    assert fragment in error.message, str(error)
    return error


def one_function(body: str) -> str:
    """A manifest with one function `f` (handler app.handler) and `body` below it.

    `body` is written at the function's indentation, starting on line 4.
    """
    indented = textwrap.indent(yaml_text(body), "    ")
    return "name: demo\nfunctions:\n  f:\n    handler: app.handler\n" + indented


def route(key: str, auth: str = "") -> str:
    """One function whose only trigger (line 6) is `http: key`, with `auth:` on line 7."""
    body = f"triggers:\n  - http: {json.dumps(key)}\n"
    return one_function(body + (f"    auth: {auth}\n" if auth else ""))


def trigger_error(key: str) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(route(key))
    return caught.value


EXAMPLE = """\
name: ci-cards
functions:
  webhook:
    handler: app.handler
    code: .
    runtime: python3.12
    timeout: 10.5
    memory: 512
    env: {TRACKER_URL: "http://localhost:9000", A_FLAG: "1"}
    triggers:
      - http: "post /hooks/{name}"
      - http: "ANY /api/{proxy+}"
      - http: "GET /status"
        auth: {type: api_key, header: X-Api-Key, secret_env: STATUS_KEY}
      - http: "POST /github"
        auth: {type: hmac, preset: github, secret_env: GH_SECRET}
  nightly:
    handler: jobs.nightly.run
"""


# ------------------------------------------------------------------ valid manifests


def test_example_manifest_loads() -> None:
    manifest = parse_manifest(EXAMPLE)
    assert manifest.name == "ci-cards"
    assert list(manifest.functions) == ["webhook", "nightly"]
    webhook = manifest.functions["webhook"]
    assert (webhook.name, webhook.runtime, webhook.timeout, webhook.memory) == (
        "webhook", "python3.12", 10.5, 512)
    assert webhook.env == {"A_FLAG": "1", "TRACKER_URL": "http://localhost:9000"}
    assert [t.http for t in webhook.triggers] == [
        "POST /hooks/{name}", "ANY /api/{proxy+}", "GET /status", "POST /github"]


def test_defaults() -> None:
    spec = parse_manifest(EXAMPLE).functions["nightly"]
    assert (spec.code, spec.runtime, spec.timeout, spec.memory, spec.env, spec.triggers) == (
        ".", "python3.11", 30.0, 256, {}, [])


def test_handler_splits_at_the_last_dot() -> None:
    spec = parse_manifest(EXAMPLE).functions["nightly"]
    assert (spec.module, spec.attribute) == ("jobs.nightly", "run")


def test_http_trigger_properties() -> None:
    triggers = parse_manifest(EXAMPLE).functions["webhook"].triggers
    assert [(t.method, t.path) for t in triggers] == [
        ("POST", "/hooks/{name}"), ("ANY", "/api/{proxy+}"), ("GET", "/status"),
        ("POST", "/github")]


def test_routes_lists_every_http_trigger_with_its_function() -> None:
    routes = parse_manifest(EXAMPLE).routes()
    assert [(name, t.http) for name, t in routes] == [
        ("webhook", "POST /hooks/{name}"), ("webhook", "ANY /api/{proxy+}"),
        ("webhook", "GET /status"), ("webhook", "POST /github")]


def test_auth_defaults_and_presets() -> None:
    triggers = parse_manifest(EXAMPLE).functions["webhook"].triggers
    assert triggers[2].auth == RouteAuth(type=AuthType.API_KEY, secret_env="STATUS_KEY",
                                         header="x-api-key")
    assert triggers[3].auth == RouteAuth(type=AuthType.HMAC, secret_env="GH_SECRET",
                                         header="x-hub-signature-256", prefix="sha256=",
                                         preset="github")


@pytest.mark.parametrize("auth, header, prefix", [
    ("{type: api_key, secret_env: K}", "x-api-key", ""),
    ("{type: hmac, secret_env: K}", "x-signature-256", ""),
    ("{type: hmac, secret_env: K, header: X-Sig, prefix: 'v1='}", "x-sig", "v1="),
    ("{type: hmac, secret_env: K, preset: github, header: X-Other}", "x-other", "sha256="),
])
def test_auth_header_defaults_and_overrides(auth: str, header: str, prefix: str) -> None:
    trigger = parse_manifest(route("GET /x", auth)).functions["f"].triggers[0]
    assert trigger.auth is not None
    assert (trigger.auth.header, trigger.auth.prefix) == (header, prefix)


def test_config_is_json_with_a_stable_key_order() -> None:
    config = parse_manifest(EXAMPLE).functions["webhook"].config()
    assert list(config) == ["name", "handler", "code", "runtime", "timeout", "memory", "env",
                            "ephemeral_storage", "network", "concurrency", "min_instances",
                            "idle_timeout", "initializer", "init_timeout", "shutdown", "triggers"]
    assert json.loads(json.dumps(config)) == config
    assert config["triggers"][3]["auth"] == {
        "type": "hmac", "secret_env": "GH_SECRET", "header": "x-hub-signature-256",
        "prefix": "sha256=", "preset": "github"}


def test_config_does_not_depend_on_env_order_or_code_spelling() -> None:
    one = parse_manifest(one_function("code: ./src/\nenv: {B: b, A: a}\n"))
    two = parse_manifest(one_function("code: src\nenv: {A: a, B: b}\n"))
    assert one.functions["f"].config() == two.functions["f"].config()
    assert json.dumps(one.functions["f"].config()) == json.dumps(two.functions["f"].config())
    assert one.functions["f"].code == "src"


def test_manifest_path_is_excluded_from_dumps_and_root_is_its_folder() -> None:
    manifest = parse_manifest(EXAMPLE, file="proj/squall.yaml")
    assert manifest.path == Path("proj/squall.yaml")
    assert manifest.root == Path("proj")
    assert "path" not in manifest.model_dump()


def test_models_round_trip_through_model_dump() -> None:
    manifest = parse_manifest(EXAMPLE)
    assert Manifest.model_validate(manifest.model_dump()).functions == manifest.functions


def test_models_can_be_built_in_python() -> None:
    spec = FunctionSpec(name="f", handler="app.handler", triggers=[HttpTrigger(http="get /x")])
    manifest = Manifest(name="p", functions={"f": spec})
    assert manifest.routes() == [("f", HttpTrigger(http="GET /x"))]


def test_models_are_frozen() -> None:
    spec = parse_manifest(EXAMPLE).functions["nightly"]
    with pytest.raises(ValueError):
        spec.timeout = 5


def test_project_name_defaults_to_the_sanitized_default_name() -> None:
    text = "functions:\n  f: {handler: app.handler}\n"
    assert parse_manifest(text).name == "project"
    assert parse_manifest(text, default_name="my app.v2").name == "my-app-v2"
    assert parse_manifest(text, default_name="My App!").name == "My-App-"


@pytest.mark.parametrize("folder, name", [
    ("ci-cards", "ci-cards"), ("my app", "my-app"), ("2048", "project-2048"), ("", "project"),
    ("café", "caf-"), ("x" * 80, "x" * 64), ("_tmp", "project-_tmp"), ("My App!", "My-App-"),
])
def test_default_project_name(folder: str, name: str) -> None:
    assert default_project_name(folder) == name


@pytest.mark.parametrize("key, normalized", [
    ("$default", "$default"),
    ("GET /", "GET /"),
    ("get /status", "GET /status"),
    ("  Post   /a/{id}/b  ", "POST /a/{id}/b"),
    ("ANY /api/{proxy+}", "ANY /api/{proxy+}"),
    ("DELETE /{a}/{b}/{rest+}", "DELETE /{a}/{b}/{rest+}"),
    ("OPTIONS /v1/items.json", "OPTIONS /v1/items.json"),
    ("HEAD /_squallx", "HEAD /_squallx"),
])
def test_valid_route_keys_are_normalized(key: str, normalized: str) -> None:
    trigger = parse_manifest(route(key)).functions["f"].triggers[0]
    assert trigger.http == normalized


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
                                    "ANY"])
def test_every_method_is_routed_in_any_case(method: str) -> None:
    for written in (method, method.lower(), method.capitalize()):
        trigger = parse_manifest(route(f"{written} /items/{{id}}")).functions["f"].triggers[0]
        assert (trigger.http, trigger.method, trigger.path, trigger.is_default) == (
            f"{method} /items/{{id}}", method, "/items/{id}", False)


def test_default_route_has_method_any() -> None:
    trigger = HttpTrigger(http="$default")
    assert (trigger.is_default, trigger.method, trigger.path) == (True, "ANY", "$default")


def test_same_path_with_other_method_or_param_kind_is_not_a_duplicate() -> None:
    body = """\
    triggers:
      - http: GET /a/{id}
      - http: POST /a/{id}
      - http: ANY /a/{id}
      - http: GET /a/{rest+}
      - http: GET /a/b
    """
    assert len(parse_manifest(one_function(body)).routes()) == 5


def test_null_env_and_triggers_mean_none() -> None:
    spec = parse_manifest(one_function("env:\ntriggers:\n")).functions["f"]
    assert (spec.env, spec.triggers) == ({}, [])


# ------------------------------------------------------------------ route property


_LITERALS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-._~", min_size=1,
                    max_size=8).filter(lambda s: s not in (".", ".."))
_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True).filter(
    lambda s: not keyword.iskeyword(s))


@st.composite
def route_paths(draw: st.DrawFn) -> str:
    kinds = draw(st.lists(st.sampled_from(["literal", "param"]), max_size=6))
    names = iter(draw(st.lists(_NAMES, min_size=len(kinds) + 1, max_size=len(kinds) + 1,
                               unique=True)))
    segments = [draw(_LITERALS) if kind == "literal" else "{" + next(names) + "}"
                for kind in kinds]
    if draw(st.booleans()):
        segments.append("{" + next(names) + "+}")
    if segments and segments[0].lower() == "_squall":
        segments[0] = "x"
    return "/" + "/".join(segments)


@settings(database=None, max_examples=200)
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
                               "ANY"]),
       lower=st.booleans(), path=route_paths())
def test_any_valid_route_round_trips(method: str, lower: bool, path: str) -> None:
    written = f"{method.lower() if lower else method} {path}"
    trigger = parse_manifest(route(written)).functions["f"].triggers[0]
    assert (trigger.method, trigger.path, trigger.http) == (method, path, f"{method} {path}")


# ------------------------------------------------------------------ YAML and top level


def test_yaml_syntax_error_has_the_line_and_no_field() -> None:
    assert_error("""\
    name: demo
    functions:
      f: {handler: app.handler
    """, None, 4, "is not valid YAML")


def test_tabs_are_a_yaml_error() -> None:
    error = error_of("name: demo\nfunctions:\n\tf: {}\n")
    assert error.line == 3 and error.field is None


def test_duplicate_keys_are_rejected() -> None:
    assert_error("""\
    functions:
      f:
        handler: app.handler
      f:
        handler: app.other
    """, "functions.f", 4, 'duplicate key "f": it is already set on line 2')


def test_anchors_and_merge_keys_may_override_merged_keys() -> None:
    manifest = parse("""\
    functions:
      a: &base
        handler: app.a
        memory: 128
      b:
        <<: *base
        memory: 512
    """)
    assert (manifest.functions["b"].handler, manifest.functions["b"].memory) == ("app.a", 512)


def test_errors_in_merged_keys_point_at_the_merge() -> None:
    assert_error("""\
    functions:
      a: &base
        handler: app.a
      b:
        <<: *base
        timeout: 0
    """, "functions.b.timeout", 6, "must be a number of seconds")


def test_recursive_aliases_do_not_hang() -> None:
    assert_error("functions: &x\n  a: *x\n", "functions.a.a", 2, 'unknown key "a"')


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_empty_file(text: str) -> None:
    error = error_of(text)
    assert (error.field, error.line) == (None, 1)
    assert "is empty" in error.message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    assert_error(text, None, 1, "must be a mapping with the keys name, functions")


def test_unknown_top_level_key_suggests_the_close_one() -> None:
    error = assert_error("""\
    name: demo
    funtions:
      f: {handler: app.handler}
    """, "funtions", 2, 'unknown key "funtions" (did you mean "functions"?)')
    assert "allowed keys: name, functions" in error.message


def test_path_is_not_a_manifest_key() -> None:
    assert_error("""\
    path: elsewhere
    functions:
      f: {handler: app.handler}
    """, "path", 1, 'unknown key "path"')


@pytest.mark.parametrize("functions", ["", " {}", " []", " null"])
def test_no_functions_is_an_error(functions: str) -> None:
    assert_error(f"name: demo\nfunctions:{functions}\n", "functions", 2, "declares no functions")


def test_missing_functions_is_an_error() -> None:
    assert_error("name: demo\n", "functions", 1, "declares no functions")


def test_functions_must_be_a_mapping() -> None:
    assert_error("functions:\n  - f\n", "functions", 1, "must be a mapping of function names")


@pytest.mark.parametrize("name", ["1st", "my project", "a" * 65, "-x", "é"])
def test_invalid_project_name(name: str) -> None:
    assert_error(f"name: {json.dumps(name)}\nfunctions:\n  f: {{handler: app.handler}}\n",
                 "name", 1, "the project name must start with a letter")


def test_non_string_project_name() -> None:
    assert_error("name: 12\nfunctions:\n  f: {handler: app.handler}\n", "name", 1, "got 12")


# ------------------------------------------------------------------ functions


@pytest.mark.parametrize("name", ["1f", "my fn", "f.g", "a" * 65, "_f"])
def test_invalid_function_name(name: str) -> None:
    assert_error(f"functions:\n  x: {{handler: app.handler}}\n  {json.dumps(name)}: {{handler: a.b}}\n",
                 f"functions.{name}", 3, "a function name must start with a letter")


def test_function_names_may_use_dash_and_underscore() -> None:
    manifest = parse_manifest("functions:\n  My-fn_2: {handler: app.handler}\n")
    assert list(manifest.functions) == ["My-fn_2"]


def test_function_settings_must_be_a_mapping() -> None:
    assert_error("functions:\n  f: app.handler\n", "functions.f", 2,
                 "must be a mapping with the keys handler, code, runtime")


@pytest.mark.parametrize("typo", ["timout", "tiemout"])
def test_unknown_function_key_suggests_the_close_one(typo: str) -> None:
    error = assert_error(one_function(f"{typo}: 3\n"), f"functions.f.{typo}", 5,
                         f'unknown key "{typo}" (did you mean "timeout"?)')
    assert "allowed keys: handler, code, runtime, timeout, memory, env, ephemeral_storage" in error.message


def test_name_is_not_a_function_key() -> None:
    assert_error(one_function("name: g\n"), "functions.f.name", 5,
                 "a function is named by its key")


def test_handler_is_required() -> None:
    assert_error("""\
    functions:
      f:
        timeout: 3
    """, "functions.f.handler", 2, "is required: the function to call, as module.function")


@pytest.mark.parametrize("handler", ["app", "app.", ".handler", "app.1x", "app.class",
                                     "my-app.handler", "a..b", "5", "app.handler()"])
def test_invalid_handler(handler: str) -> None:
    assert_error(f"functions:\n  f:\n    handler: {json.dumps(handler)}\n",
                 "functions.f.handler", 3, "must be module.function")


def test_first_problem_in_the_file_is_reported() -> None:
    assert_error("""\
    functions:
      f:
        memory: 1
        handler: nope
    """, "functions.f.memory", 3, "must be a whole number of MB")


@pytest.mark.parametrize("code, message", [
    ("/srv/app", "not absolute"),
    ("..", "must stay inside the project folder"),
    ("../other", "must stay inside the project folder"),
    ("src/../../other", "must stay inside the project folder"),
    ("C:/code", "not absolute"),
    ("src\\app", 'with "/" between names'),
    ("", "must be a folder relative to the manifest"),
])
def test_code_must_stay_in_the_project(code: str, message: str) -> None:
    assert_error(one_function(f"code: '{code}'\n"), "functions.f.code", 5, message)


@pytest.mark.parametrize("runtime", ["python2.7", "python3", "nodejs18.x", "Python3.11", "3.11"])
def test_invalid_runtime(runtime: str) -> None:
    assert_error(one_function(f"runtime: {runtime}\n"), "functions.f.runtime", 5,
                 'must be a Python runtime such as "python3.11"')


@pytest.mark.parametrize("runtime", ["python3.11", "python3.12", "python3.13"])
def test_python_runtimes_are_accepted(runtime: str) -> None:
    assert parse_manifest(one_function(f"runtime: {runtime}\n")).functions["f"].runtime == runtime


@pytest.mark.parametrize("timeout, shown", [
    ('"abc"', '"abc"'), ("soon", '"soon"'), ("0", "0"), ("-1", "-1"), ("901", "901"), ("true", "true"),
    ('"30"', '"30"'), (".nan", "NaN"), ("", "nothing")])
def test_invalid_timeout(timeout: str, shown: str) -> None:
    assert_error(one_function(f"timeout: {timeout}\n"), "functions.f.timeout", 5,
                 f"must be a number of seconds above 0 and at most 900 (as on AWS Lambda), got {shown}")


@pytest.mark.parametrize("timeout, value", [("900", 900.0), ("0.5", 0.5), ("1", 1.0)])
def test_valid_timeout(timeout: str, value: float) -> None:
    assert parse_manifest(one_function(f"timeout: {timeout}\n")).functions["f"].timeout == value


@pytest.mark.parametrize("memory", ["63", "10241", "256.5", '"256"', "false", "0"])
def test_invalid_memory(memory: str) -> None:
    assert_error(one_function(f"memory: {memory}\n"), "functions.f.memory", 5,
                 "must be a whole number of MB from 64 to 10240")


@pytest.mark.parametrize("memory", [64, 128, 10240])
def test_valid_memory(memory: int) -> None:
    assert parse_manifest(one_function(f"memory: {memory}\n")).functions["f"].memory == memory


@pytest.mark.parametrize("value, hint", [
    ("8080", 'quote it in YAML: PORT: "8080"'),
    ("true", 'quote it in YAML: PORT: "true"'),
    ("1.5", 'quote it in YAML: PORT: "1.5"'),
    ("", 'got nothing; quote it in YAML: PORT: ""'),
    ("[1, 2]", "must be a string, got [1, 2]"),
])
def test_env_values_must_be_strings(value: str, hint: str) -> None:
    assert_error(one_function(f"env:\n  OK: fine\n  PORT: {value}\n"), "functions.f.env.PORT", 7, hint)


@pytest.mark.parametrize("name", ["1ABC", "MY-VAR", "A B"])
def test_env_names_must_be_variable_names(name: str) -> None:
    assert_error(one_function(f'env:\n  "{name}": x\n'), f"functions.f.env.{name}", 6,
                 "is not an environment variable name")


def test_env_must_be_a_mapping() -> None:
    assert_error(one_function("env: [A=1]\n"), "functions.f.env", 5,
                 "must be a mapping of variable names to strings")


# ------------------------------------------------------------------ triggers


def test_triggers_must_be_a_list() -> None:
    assert_error(one_function("triggers:\n  http: GET /x\n"), "functions.f.triggers", 5,
                 "must be a list of triggers")


def test_trigger_must_be_a_mapping() -> None:
    assert_error(one_function("triggers:\n  - GET /x\n"), "functions.f.triggers[0]", 6,
                 "must be a mapping keyed by the trigger kind (http)")


def test_unknown_trigger_kind_suggests_the_close_one() -> None:
    body = "triggers:\n  - http: GET /a\n  - htp: GET /b\n"
    assert_error(one_function(body), "functions.f.triggers[1]", 7,
                 'has no trigger kind: expected one of the keys http (did you mean "http"?)')


def test_unknown_trigger_key() -> None:
    body = "triggers:\n  - http: GET /a\n    auht: {type: api_key, secret_env: K}\n"
    error = assert_error(one_function(body), "functions.f.triggers[0].auht", 7,
                         'unknown key "auht" (did you mean "auth"?)')
    assert "allowed keys: http, auth" in error.message


def test_http_must_be_a_string() -> None:
    assert_error(one_function("triggers:\n  - http: 5\n"), "functions.f.triggers[0].http", 6,
                 'must be a route "METHOD /path"')


@pytest.mark.parametrize("key, fragment", [
    ("GET", 'must read "METHOD /path"'),
    ("/status", 'must read "METHOD /path"'),
    ("", 'must read "METHOD /path"'),
    ("$DEFAULT", 'must read "METHOD /path"'),
    ("FETCH /x", '"FETCH" is not an HTTP method squall routes'),
    ("GTE /x", 'did you mean "GET"?'),
    ("GET status", 'must start with "/"'),
    ("GET /a//b", "has an empty segment"),
    ("GET /a/", "has an empty segment"),
    ("GET /{proxy+}/x", "must be the last segment"),
    ("GET /a/{id", "is not valid: a parameter is a whole segment"),
    ("GET /a/x{id}", "is not valid: a parameter is a whole segment"),
    ("GET /a/{1x}", "is not valid: a parameter is a whole segment"),
    ("GET /a/{}", "is not valid: a parameter is a whole segment"),
    ("GET /{a}/{a}", "repeats the parameter {a}"),
    ("GET /{a}/{a+}", "repeats the parameter {a}"),
    ("GET /a/../b", "may not be . or .."),
    ("GET /a b", "may not hold spaces"),
    ("GET /a?b=1", "may not hold spaces, ?, #"),
])
def test_invalid_route_keys(key: str, fragment: str) -> None:
    error = trigger_error(key)
    assert (error.field, error.line) == ("functions.f.triggers[0].http", 6)
    assert fragment in error.message, str(error)


@pytest.mark.parametrize("key", ["GET /_squall", "POST /_squall/api/x", "ANY /_SQUALL/{p+}"])
def test_reserved_paths_are_rejected(key: str) -> None:
    error = trigger_error(key)
    assert (error.field, error.line) == ("functions.f.triggers[0].http", 6)
    assert "reserved for the platform" in error.message


def test_duplicate_route_in_one_function() -> None:
    body = "triggers:\n  - http: GET /a/{x}\n  - http: GET /b\n  - http: get /a/{y}\n"
    assert_error(one_function(body), "functions.f.triggers[2].http", 8,
                 'duplicate route: a method and path are routed once, and "GET /a/{y}" is '
                 'already declared as "GET /a/{x}" at functions.f.triggers[0].http (line 6)')


def test_duplicate_route_across_functions_names_both_places() -> None:
    assert_error("""\
    functions:
      a:
        handler: app.a
        triggers:
          - http: POST /hooks/{name}
      b:
        handler: app.b
        triggers:
          - http: POST /hooks/{id}
    """, "functions.b.triggers[0].http", 9,
        "already declared as \"POST /hooks/{name}\" at functions.a.triggers[0].http (line 5)")


def test_duplicate_default_route() -> None:
    body = "triggers:\n  - http: $default\n  - http: $default\n"
    assert_error(one_function(body), "functions.f.triggers[1].http", 7, "duplicate route")


# ------------------------------------------------------------------ auth


def auth_error(auth: str) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(route("GET /x", auth))
    return caught.value


AUTH = "functions.f.triggers[0].auth"


@pytest.mark.parametrize("auth, field, fragment", [
    ("api_key", AUTH, "must be a mapping with the keys type, secret_env, header, prefix, preset"),
    ("{type: apikey, secret_env: K}", f"{AUTH}.type",
     'must be one of api_key, hmac, got "apikey" (did you mean "api_key"?)'),
    ("{secret_env: K}", f"{AUTH}.type", "is required: api_key or hmac"),
    ("{type: api_key}", f"{AUTH}.secret_env", "is required: the environment variable"),
    ("{type: api_key, secret_env: my-key}", f"{AUTH}.secret_env",
     "must be the name of the environment variable"),
    ("{type: api_key, secret_env: K, header: 'bad header'}", f"{AUTH}.header",
     "must be an HTTP header name"),
    ("{type: hmac, secret_env: K, preset: gihtub}", f"{AUTH}.preset",
     'must be one of github, got "gihtub" (did you mean "github"?)'),
    ("{type: api_key, secret_env: K, preset: github}", f"{AUTH}.preset",
     "is only used with type hmac"),
    ("{type: api_key, secret_env: K, prefix: 'Bearer '}", f"{AUTH}.prefix",
     "is only used with type hmac"),
    ("{type: hmac, secret_env: K, prefix: 5}", f"{AUTH}.prefix", "must be the text before"),
    ("{type: hmac, secret: K}", f"{AUTH}.secret", 'did you mean "secret_env"?'),
])
def test_invalid_auth(auth: str, field: str, fragment: str) -> None:
    error = auth_error(auth)
    assert (error.field, error.line) == (field, 7)
    assert fragment in error.message, str(error)


def test_auth_secret_env_need_not_be_in_env() -> None:
    trigger = parse_manifest(route("GET /x", "{type: api_key, secret_env: FROM_SECRETS}"))
    assert trigger.functions["f"].triggers[0].auth is not None


def test_error_renders_file_line_and_field() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(one_function("memory: 1\n"), file="proj/squall.yaml")
    assert str(caught.value).startswith("proj/squall.yaml:5: functions.f.memory: must be")
    assert caught.value.to_dict()["line"] == 5


# ------------------------------------------------------------------ load_manifest


def write_project(folder: Path, text: str = EXAMPLE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_NAME).write_text(text)
    return folder


def test_load_from_folder_and_from_file(tmp_path: Path) -> None:
    folder = write_project(tmp_path / "ci-cards", one_function(""))
    by_folder = load_manifest(folder)
    by_file = load_manifest(str(folder / MANIFEST_NAME))
    assert by_folder == by_file
    assert by_folder.path == (folder / MANIFEST_NAME).resolve()
    assert by_folder.root == folder.resolve()


def test_load_takes_the_default_name_from_the_folder(tmp_path: Path) -> None:
    folder = write_project(tmp_path / "my cards", "functions:\n  f: {handler: app.handler}\n")
    assert load_manifest(folder).name == "my-cards"


def test_load_missing_manifest_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert (caught.value.file, caught.value.line, caught.value.field) == (
        str(tmp_path / MANIFEST_NAME), None, None)
    assert str(tmp_path / MANIFEST_NAME) in caught.value.message
    assert "no squall.yaml found" in caught.value.message


def test_load_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no squall.yaml found"):
        load_manifest(tmp_path / "nowhere")


def test_load_hints_at_a_misnamed_manifest(tmp_path: Path) -> None:
    (tmp_path / "squall.yml").write_text(EXAMPLE)
    with pytest.raises(ManifestError, match="rename it to squall.yaml"):
        load_manifest(tmp_path)


def test_load_errors_show_the_path_as_given(tmp_path: Path) -> None:
    folder = write_project(tmp_path / "p", one_function("memory: 1\n"))
    with pytest.raises(ManifestError) as caught:
        load_manifest(folder)
    assert (caught.value.file, caught.value.line) == (str(folder / MANIFEST_NAME), 5)


def test_load_rejects_non_utf8(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ManifestError, match="is not UTF-8 text"):
        load_manifest(tmp_path)


def test_load_checks_that_code_is_a_folder(tmp_path: Path) -> None:
    folder = write_project(tmp_path / "p", one_function("code: src\n"))
    with pytest.raises(ManifestError) as caught:
        load_manifest(folder)
    assert (caught.value.field, caught.value.line) == ("functions.f.code", 5)
    assert '"src" does not exist' in caught.value.message
    (folder / "src").write_text("")
    with pytest.raises(ManifestError, match='"src" is not a folder'):
        load_manifest(folder)
    (folder / "src").unlink()
    (folder / "src").mkdir()
    assert load_manifest(folder).functions["f"].code == "src"


def test_load_rejects_code_escaping_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    folder = write_project(tmp_path / "p", one_function("code: link\n"))
    (folder / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ManifestError, match="leaves the project folder"):
        load_manifest(folder)


def test_load_rejects_code_escaping_with_dots(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    folder = write_project(tmp_path / "p", one_function("code: ../outside\n"))
    with pytest.raises(ManifestError) as caught:
        load_manifest(folder)
    assert (caught.value.field, caught.value.line) == ("functions.f.code", 5)
    assert "must stay inside the project folder" in caught.value.message


# ------------------------------------------------------------------ YAML edge cases


def test_load_takes_the_default_name_given_over_the_folder(tmp_path: Path) -> None:
    folder = write_project(tmp_path / "checkout", "functions:\n  f: {handler: app.handler}\n")
    assert load_manifest(folder, default_name="my app.v2").name == "my-app-v2"
    assert load_manifest(folder, default_name="").name == "project"
    named = write_project(tmp_path / "named", one_function(""))
    assert load_manifest(named, default_name="other").name == "demo"


def test_duplicate_key_in_a_list_item_names_the_item_with_brackets() -> None:
    body = "triggers:\n  - http: GET /a\n    http: GET /b\n"
    assert_error(one_function(body), "functions.f.triggers[0].http", 7,
                 'duplicate key "http": it is already set on line 6')


@pytest.mark.parametrize("written", ["1.10", "on", "01234", "1_000"])
def test_env_quote_hint_repeats_the_value_as_written(written: str) -> None:
    assert_error(one_function(f"env:\n  V: {written}\n"), "functions.f.env.V", 6,
                 f'quote it in YAML: V: "{written}"')


def test_self_referencing_trigger_list_is_a_manifest_error() -> None:
    error = assert_error(one_function("triggers: &t [*t]\n"), "functions.f.triggers[0]", 5,
                         "must be a mapping keyed by the trigger kind")
    assert error.message.endswith("got [[...]]")


def test_deeply_nested_yaml_is_a_manifest_error() -> None:
    text = "x: " + "[" * 3000 + "]" * 3000 + "\nfunctions:\n  f: {handler: a.b}\n"
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert caught.value.line == 1
    assert "nesting is too deep" in caught.value.message


def test_nesting_a_manifest_needs_is_read() -> None:
    deep = "[" * 90 + "]" * 90
    assert_error(f"x: {deep}\nfunctions:\n  f: {{handler: a.b}}\n", "x", 1, 'unknown key "x"')


def alias_bomb(levels: int, key: str = "x") -> list[str]:
    """YAML lines of `key:`, a list whose last item holds 10 ** (levels + 1) "a"s by alias."""
    lines = [f"{key}:", "  - &l0 [a, a, a, a, a, a, a, a, a, a]"]
    return lines + [f"  - &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]"
                    for i in range(1, levels + 1)]


def test_nested_aliases_are_walked_once() -> None:
    text = "\n".join([*alias_bomb(5), "functions:", "  f: {handler: a.b}", ""])
    started = time.perf_counter()
    assert_error(text, "x", 1, 'unknown key "x"')
    assert time.perf_counter() - started < 0.5


def test_a_huge_value_made_of_aliases_is_shown_briefly() -> None:
    value = "&l0 [" + ", ".join(["a"] * 10) + "]"
    for i in range(1, 13):
        value = f"&l{i} [{value}, " + ", ".join([f"*l{i - 1}"] * 9) + "]"
    started = time.perf_counter()
    error = assert_error(one_function(f"env: {{A: {value}}}\n"), "functions.f.env.A", 5,
                         'must be a string, got [[[[[[[[[[[[["a", "a", "a"')
    assert len(error.message) < 200
    assert time.perf_counter() - started < 0.5


def test_merge_keys_of_merge_keys_are_flattened_once() -> None:
    lines = ["base:", "  - &m0 {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}"]
    lines += [f"  - &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * 10) + "]}" for i in range(1, 9)]
    lines += ["functions:", "  f:", "    <<: *m8", "    handler: a.b"]
    started = time.perf_counter()
    assert_error("\n".join([*lines, ""]), "base", 1, 'unknown key "base"')
    assert time.perf_counter() - started < 0.5


def test_numeric_function_name_is_a_key_in_the_field() -> None:
    assert_error("functions:\n  1: {handler: app.f}\n", "functions.1", 2,
                 "a function name must start with a letter")


def test_yaml_boolean_keys_are_the_names_written() -> None:
    manifest = parse_manifest("functions:\n  on:\n    handler: app.f\n"
                              "    env: {ON: x, yes: y, Off: z}\n")
    assert list(manifest.functions) == ["on"]
    assert manifest.functions["on"].env == {"ON": "x", "Off": "z", "yes": "y"}


@pytest.mark.parametrize("text, field, line", [
    ("functions:\n  f: {handler: app.f}\n  on: {handler: app.g, memory: 1}\n",
     "functions.on.memory", 3),
    ("functions:\n  f:\n    handler: app.f\n    env:\n      ON: 5\n", "functions.f.env.ON", 5),
    ("functions:\n  f:\n    handler: app.f\n    1: x\n", "functions.f.1", 4),
])
def test_yaml_boolean_keys_point_at_their_line(text: str, field: str, line: int) -> None:
    error = error_of(text)
    assert (error.field, error.line) == (field, line), str(error)


def test_keys_must_not_be_lists_or_mappings() -> None:
    assert_error("functions:\n  f: {handler: app.f}\n  ? [a, b]\n  : {handler: app.g}\n",
                 "functions", 3, "a key must be a name")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("ephemeral_storage", 63, "whole number of MB from 64 to 10240"),
    ("network", "host", "must be one of default, none"),
    ("concurrency", 0, "whole number of instances from 1 to 1000"),
    ("min_instances", -1, "whole number of instances from 0 to 1000"),
    ("idle_timeout", 0, "seconds above 0"),
    ("initializer", "nodot", "module.function"),
    ("init_timeout", 901, "at most 900"),
    ("shutdown", 3, "module.function"),
])
def test_runtime_keys_are_checked(key: str, value: object, message: str) -> None:
    text = f"name: p\nfunctions:\n  f:\n    handler: app.h\n    {key}: {value}\n"
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert caught.value.field == f"functions.f.{key}"
    assert caught.value.line == 5
    assert message in caught.value.message


def test_runtime_keys_have_defaults_and_min_instances_fits_concurrency() -> None:
    spec = parse_manifest("name: p\nfunctions:\n  f:\n    handler: app.h\n").functions["f"]
    assert (spec.ephemeral_storage, spec.network, spec.concurrency, spec.min_instances) == (512, "default", 100, 0)
    assert (spec.idle_timeout, spec.initializer, spec.init_timeout, spec.shutdown) == (300.0, None, 10.0, None)
    with pytest.raises(ManifestError) as caught:
        parse_manifest("name: p\nfunctions:\n  f:\n    handler: app.h\n    concurrency: 2\n"
                       "    min_instances: 3\n")
    assert caught.value.field == "functions.f.min_instances"
    assert "concurrency (2)" in caught.value.message


@pytest.mark.parametrize("name", ["AWS_REGION", "AWS_SECRET_ACCESS_KEY", "SQUALL_FUNCTION_TOKEN", "LAMBDA_TASK_ROOT",
                                  "_HANDLER", "PATH", "TZ"])
def test_auth_may_not_name_a_platform_variable(name: str) -> None:
    error = auth_error(f"{{type: api_key, secret_env: {name}}}")
    assert (error.file, error.line, error.field) == ("squall.yaml", 7, "functions.f.triggers[0].auth.secret_env")
    assert name in error.message and "platform sets" in error.message


@pytest.mark.parametrize("number", ["9" * 100_000, "-" + "9" * 5000, "0x" + "f" * 3000, "0b" + "1" * 1200])
def test_a_huge_integer_is_a_manifest_error_at_its_line(number: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(one_function(f"timeout: 1\nmemory: {number}\n"), file="proj/squall.yaml")
    error = caught.value
    assert (error.file, error.line, error.field) == ("proj/squall.yaml", 6, "functions.f.memory")
    assert "too large" in error.message and len(str(error)) < 300


def test_a_date_that_is_no_date_is_a_manifest_error_at_its_line() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(one_function("env: {WHEN: 2026-13-45}\n"))
    assert (caught.value.line, caught.value.field) == (5, "functions.f.env.WHEN")
    assert "not a date" in caught.value.message


def test_a_lone_surrogate_is_a_manifest_error_at_its_line() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(one_function('env: {K: "\\ud800"}\n'))
    assert (caught.value.line, caught.value.field) == (5, "functions.f.env.K")


def test_a_control_character_is_a_manifest_error_at_its_line() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest("name: demo\nfunctions:\n  f: \x1f\n")
    assert caught.value.line == 3 and "not valid YAML" in caught.value.message
