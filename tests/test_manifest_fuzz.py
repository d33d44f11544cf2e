"""Fuzzing the manifest loader: any squall.yaml text is either a Manifest or a ManifestError
naming the file, never another exception (the doors' fuzzing, against a real server, is
tests/hostile/test_fuzz.py)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from squall.exceptions import ManifestError
from squall.manifest import Manifest, parse_manifest

odd_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)

yaml_keys = st.sampled_from(["handler", "timeout", "memory", "env", "triggers", "concurrency", "min_instances",
                             "retries", "max_event_age", "tables", "secrets", "runtime", "code", "network",
                             "idle_timeout", "on_failure", "ephemeral_storage"])
yaml_scalars = st.one_of(st.sampled_from(["9" * 5000, "0x" + "f" * 3000, "1e999", ".nan", "-.inf", "~", "yes",
                                          "'\u2603'", '"\\ud800"', "&a [*a]", "!!binary AA==", "!!python/none",
                                          "2026-13-45", "0o777777777777", "1_000", "[", "{", "- - -",
                                          "app.handler", "GET /x", "{http: GET /x}", "AWS_REGION"]),
                         st.integers().map(str), odd_text.map(json.dumps))
triggers = st.sampled_from([
    "[{http: GET /a, auth: {type: api_key, secret_env: %s}}]",
    "[{schedule: 'rate(%s minutes)'}]", "[{queue: %s}]", "[{http: '%s'}]", "[{topic: q, filter: {a: [%s]}}]",
])


@st.composite
def manifests(draw: st.DrawFn) -> str:
    lines = ["functions:", "  f:", "    handler: app.handler"]
    for key, value in draw(st.dictionaries(yaml_keys, yaml_scalars, max_size=4)).items():
        lines.append(f"    {key}: {value}")
    if draw(st.booleans()):
        lines.append("    triggers: " + draw(triggers) % draw(yaml_scalars))
    text = "\n".join(lines) + "\n"
    if draw(st.booleans()):
        position = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:position] + draw(odd_text) + text[position:]
    return text


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(manifests(), odd_text))
def test_the_manifest_loader_answers_bad_input_with_a_manifest_error(text: str) -> None:
    try:
        result = parse_manifest(text, file="fuzz/squall.yaml")
    except ManifestError as exc:
        assert exc.file == "fuzz/squall.yaml" and str(exc).strip(), repr(exc)
        return
    assert isinstance(result, Manifest)
