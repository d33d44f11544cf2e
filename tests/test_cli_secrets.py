"""`squall secret` without a server: what is sent, what is printed (httpx.MockTransport)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from squall.cli.main import cli
from squall.cli.options import Settings
from squall.cli.secrets import strip_newline

Sent = list[tuple[str, str, bytes]]


def run(args: list[str], answer: httpx.Response, input: str | None = None) -> tuple[Result, Sent]:
    sent: Sent = []

    def transport(request: httpx.Request) -> httpx.Response:
        sent.append((request.method, request.url.path, request.read()))
        return answer

    settings = Settings(transport=httpx.MockTransport(transport))
    result = CliRunner().invoke(cli, args, obj=settings, input=input, env={"SQUALL_URL": None, "SQUALL_TOKEN": None})
    return result, sent


@pytest.mark.parametrize(("given", "kept"), [(b"tok\n", b"tok"), (b"tok\r\n", b"tok"), (b"tok", b"tok"),
                                             (b"tok\n\n", b"tok\n"), (b"a\nb\n", b"a\nb")])
def test_one_trailing_newline_is_dropped(given: bytes, kept: bytes) -> None:
    assert strip_newline(given) == kept


def test_set_sends_stdin_without_its_newline_and_prints_no_value() -> None:
    result, sent = run(["secret", "set", "TOKEN"],
                       httpx.Response(200, json={"name": "TOKEN", "created": True, "functions": ["api"]}),
                       input="tok-123456\n")

    assert result.exit_code == 0, result.output
    assert sent == [("PUT", "/_squall/api/secrets/TOKEN", b"tok-123456")]
    assert result.stdout == "created secret TOKEN; used by api\n"


def test_set_reads_a_file_and_says_when_it_replaced_a_value(tmp_path: Path) -> None:
    (tmp_path / "value").write_bytes(b"-----BEGIN KEY-----\nabc\n-----END KEY-----\n")

    result, sent = run(["secret", "set", "PEM", "--file", str(tmp_path / "value")],
                       httpx.Response(200, json={"name": "PEM", "created": False, "functions": []}))

    assert result.exit_code == 0, result.output
    assert sent[0][2] == b"-----BEGIN KEY-----\nabc\n-----END KEY-----"
    assert "replaced secret PEM; no function lists it yet" in result.stdout


def test_an_empty_value_is_refused_before_anything_is_sent() -> None:
    result, sent = run(["secret", "set", "TOKEN"], httpx.Response(500), input="\n")

    assert result.exit_code == 2 and "empty" in result.stderr
    assert sent == []


def test_ls_prints_a_table_or_json_of_names() -> None:
    secrets = [{"name": "GH_SECRET", "status": "set", "created_at": 1.0, "updated_at": 2.0, "functions": ["hooks"]},
               {"name": "MISSING", "status": "not set", "created_at": None, "updated_at": None,
                "functions": ["a", "b"]}]
    answer = httpx.Response(200, json={"secrets": secrets})

    table, _ = run(["secret", "ls"], answer)
    as_json, _ = run(["secret", "ls", "--json"], answer)

    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "UPDATED", "USED", "BY"]
    assert lines[1].split()[:2] == ["GH_SECRET", "set"] and lines[1].endswith("hooks")
    assert lines[2].startswith("MISSING") and "not set" in lines[2] and lines[2].endswith("a, b")
    assert json.loads(as_json.stdout) == secrets


def test_rm_warns_about_the_functions_that_still_list_the_secret() -> None:
    result, sent = run(["secret", "rm", "TOKEN"], httpx.Response(200, json={"name": "TOKEN", "functions": ["api"]}))

    assert result.exit_code == 0
    assert sent == [("DELETE", "/_squall/api/secrets/TOKEN", b"")]
    assert "removed secret TOKEN" in result.stdout
    assert "api lists TOKEN: its calls fail until it is set again" in result.stderr


def test_rm_of_an_unknown_secret_exits_1() -> None:
    result, _ = run(["secret", "rm", "NOPE"],
                    httpx.Response(404, json={"error": {"type": "NotFound", "message": "secret NOPE is not set"}}))

    assert result.exit_code == 1 and "error: secret NOPE is not set" in result.stderr
