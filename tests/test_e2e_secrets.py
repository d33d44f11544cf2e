"""Secrets end to end: the real CLI against real servers. Set from stdin and from a file,
listed without values, injected only into the functions that list them, masked in logs,
encrypted on disk, kept over a restart, refused clearly under a wrong key, shared by nodes."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.support import SquallServer, wait_until, write_project

pytestmark = pytest.mark.e2e

FIRST = "tok-from-stdin-7Qx91"
SECOND = "tok-from-file-Zp3k8"
NOT_SET = "secret TRACKER_TOKEN is not set: squall secret set TRACKER_TOKEN"

PROJECT = {
    "squall.yaml": """
        name: vault
        functions:
          reader:
            handler: app.reader
            secrets: [TRACKER_TOKEN]
          outsider:
            handler: app.outsider
    """,
    "app.py": """
        import logging, os, sys

        def reader(event, context):
            value = os.environ.get("TRACKER_TOKEN")
            print("token is", value)
            print("on stderr:", value, file=sys.stderr)
            logging.getLogger().error("logged %s", value)
            return {"token": value}

        def outsider(event, context):
            return {"environ": dict(os.environ)}
    """,
}


def invoke(node: SquallServer, function: str) -> Any:
    result = node.cli("invoke", function, check=True)
    return json.loads(result.stdout)


def key_text() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def data_bytes(data_dir: Path) -> bytes:
    """Every byte of every file under the data dir (the SQLite files, WAL included)."""
    return b"".join(path.read_bytes() for path in sorted(data_dir.rglob("*")) if path.is_file())


def test_secrets_set_listed_injected_masked_replaced_and_removed(tmp_path: Path) -> None:
    node = SquallServer(tmp_path / "data").start()
    try:
        created = node.cli("secret", "set", "TRACKER_TOKEN", input=FIRST + "\n")
        assert created.returncode == 0, created.stderr
        assert "created secret TRACKER_TOKEN" in created.stdout and FIRST not in created.stdout + created.stderr
        deployed = node.cli("deploy", str(write_project(tmp_path / "project", PROJECT)), check=True)
        assert "warning" not in deployed.stderr

        # injected into the function that lists it (one trailing newline of stdin dropped) ...
        assert invoke(node, "reader") == {"token": FIRST}
        # ... and into no other; nor does the admin token reach any instance
        environ = invoke(node, "outsider")["environ"]
        assert "TRACKER_TOKEN" not in environ and FIRST not in environ.values()
        assert node.token not in json.dumps(environ)

        # masked in the stored logs, whatever way the function printed it
        logs = node.cli("logs", "reader", check=True).stdout
        assert "token is ***" in logs and "on stderr: ***" in logs and "logged ***" in logs
        assert FIRST not in logs

        # listed by name, never by value
        listed = node.cli("secret", "ls", check=True).stdout
        assert "TRACKER_TOKEN" in listed and "reader" in listed and FIRST not in listed
        as_json = node.cli("secret", "ls", "--json", check=True).stdout
        [entry] = json.loads(as_json)
        assert entry["name"] == "TRACKER_TOKEN" and entry["status"] == "set" and entry["functions"] == ["reader"]
        assert FIRST not in as_json

        # replaced from a file: the next call sees the new value without a redeploy
        (tmp_path / "token.txt").write_text(SECOND + "\n")
        replaced = node.cli("secret", "set", "TRACKER_TOKEN", "--file", str(tmp_path / "token.txt"), check=True)
        assert "replaced secret TRACKER_TOKEN; used by reader" in replaced.stdout
        assert invoke(node, "reader") == {"token": SECOND}

        # encrypted at rest: neither value is anywhere in the data dir, nor in the server's output
        stored = data_bytes(node.data_dir)
        assert b"TRACKER_TOKEN" in stored  # the name is there: the bytes were read
        assert FIRST.encode() not in stored and SECOND.encode() not in stored
        assert FIRST not in node.output() and SECOND not in node.output()
        key_file = node.data_dir / "secret-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

        # removed: the function now fails with an error that says what to do
        removed = node.cli("secret", "rm", "TRACKER_TOKEN")
        assert removed.returncode == 0 and "removed secret TRACKER_TOKEN" in removed.stdout
        assert "reader lists TRACKER_TOKEN" in removed.stderr
        failed = node.cli("invoke", "reader")
        assert failed.returncode == 1
        assert json.loads(failed.stdout)["errorType"] == "Runtime.SecretNotSet"
        assert NOT_SET in failed.stdout + failed.stderr
        again = node.cli("secret", "rm", "TRACKER_TOKEN")
        assert again.returncode == 1 and "secret TRACKER_TOKEN is not set" in again.stderr
        [entry] = json.loads(node.cli("secret", "ls", "--json", check=True).stdout)
        assert entry["status"] == "not set" and entry["updated_at"] is None
    finally:
        node.stop()


def test_the_lambda_log_tail_is_masked_too(tmp_path: Path) -> None:
    node = SquallServer(tmp_path / "data").start()
    try:
        node.cli("secret", "set", "TRACKER_TOKEN", input=FIRST, check=True)
        node.cli("deploy", str(write_project(tmp_path / "project", PROJECT)), check=True)
        client = boto3.client("lambda", endpoint_url=f"{node.url}/_squall/aws/lambda", region_name="us-east-1",
                              aws_access_key_id="admin", aws_secret_access_key=node.token,
                              config=Config(retries={"max_attempts": 0}))

        response = client.invoke(FunctionName="reader", Payload=b"{}", LogType="Tail")

        assert json.loads(response["Payload"].read()) == {"token": FIRST}
        tail = base64.b64decode(response["LogResult"]).decode()
        assert "token is ***" in tail and FIRST not in tail
    finally:
        node.stop()


def test_a_deploy_before_the_secret_is_set_warns_and_the_set_makes_it_work(tmp_path: Path) -> None:
    node = SquallServer(tmp_path / "data").start()
    try:
        deployed = node.cli("deploy", str(write_project(tmp_path / "project", PROJECT)), check=True)
        assert f'warning: function "reader": {NOT_SET}' in deployed.stderr

        failed = node.cli("invoke", "reader")
        assert failed.returncode == 1 and NOT_SET in failed.stdout
        logs = node.cli("logs", "reader", check=True).stdout
        assert NOT_SET in logs

        node.cli("secret", "set", "TRACKER_TOKEN", input=FIRST, check=True)
        assert invoke(node, "reader") == {"token": FIRST}
    finally:
        node.stop()


def test_bad_names_and_values_are_refused_with_exit_code_2(tmp_path: Path) -> None:
    node = SquallServer(tmp_path / "data").start()
    try:
        bad_name = node.cli("secret", "set", "MY-TOKEN", input="value")
        empty = node.cli("secret", "set", "TOKEN", input="\n")
        too_big = node.cli("secret", "set", "TOKEN", input="x" * (32 * 1024 + 1))

        assert bad_name.returncode == 2 and "is not a secret name" in bad_name.stderr
        assert empty.returncode == 2 and "empty" in empty.stderr
        assert too_big.returncode == 2 and "32768 bytes" in too_big.stderr
        assert json.loads(node.cli("secret", "ls", "--json", check=True).stdout) == []
    finally:
        node.stop()


def test_secrets_survive_a_restart_and_a_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    key = key_text()
    node = SquallServer(tmp_path / "data", environ={"SQUALL_SECRET_KEY": key}).start()
    try:
        node.cli("secret", "set", "TRACKER_TOKEN", input=FIRST, check=True)
        node.cli("deploy", str(write_project(tmp_path / "project", PROJECT)), check=True)
        assert not (node.data_dir / "secret-key").exists()  # the key came from the environment

        node.restart()
        assert invoke(node, "reader") == {"token": FIRST}

        node.environ["SQUALL_SECRET_KEY"] = key_text()
        node.restart()
        failed = node.cli("invoke", "reader")
        assert failed.returncode == 1
        error = json.loads(failed.stdout)
        assert error["errorType"] == "Runtime.SecretUnreadable"
        assert "set with another secret key than this node's (SQUALL_SECRET_KEY)" in error["errorMessage"]
        assert "the key changed" in error["errorMessage"]
        [entry] = json.loads(node.cli("secret", "ls", "--json", check=True).stdout)
        assert entry["status"] == "unreadable"
        assert "secret TRACKER_TOKEN cannot be decrypted" in node.output()  # said at start-up too

        node.environ["SQUALL_SECRET_KEY"] = key
        node.restart()
        assert invoke(node, "reader") == {"token": FIRST}
    finally:
        node.stop()


def test_a_malformed_key_stops_the_server_with_a_clear_error(tmp_path: Path) -> None:
    node = SquallServer(tmp_path / "data", environ={"SQUALL_SECRET_KEY": "hunter2"})
    with pytest.raises(RuntimeError) as error:
        node.start()
    assert "SQUALL_SECRET_KEY is not a secret key" in str(error.value)


def test_a_secret_set_through_one_node_reaches_the_other(tmp_path: Path, fresh_postgres_url: str) -> None:
    key = key_text()
    # one data dir (the code), the key from the environment (as separate hosts would have it)
    nodes = [SquallServer(tmp_path / "data", store=fresh_postgres_url,
                          environ={"SQUALL_SECRET_KEY": key, "SQUALL_NODE_ID": name}).start()
             for name in ("first", "second")]
    first, second = nodes
    try:
        first.cli("secret", "set", "TRACKER_TOKEN", input=FIRST, check=True)
        first.cli("deploy", str(write_project(tmp_path / "project", PROJECT)), check=True)
        wait_until(lambda: (r := second.cli("invoke", "reader")).returncode == 0
                   and json.loads(r.stdout) == {"token": FIRST}, timeout=15)

        first.cli("secret", "set", "TRACKER_TOKEN", input=SECOND, check=True)

        wait_until(lambda: invoke(second, "reader") == {"token": SECOND}, timeout=15)
        logs = second.cli("logs", "reader", check=True).stdout
        assert FIRST not in logs and SECOND not in logs and "token is ***" in logs
    finally:
        for node in nodes:
            node.stop()


def test_a_route_key_can_be_a_secret_and_follows_its_changes(tmp_path: Path) -> None:
    project = {
        "squall.yaml": """
            name: guarded
            functions:
              status:
                handler: app.status
                secrets: [STATUS_KEY]
                triggers:
                  - http: "GET /status"
                    auth: {type: api_key, secret_env: STATUS_KEY}
        """,
        "app.py": "def status(event, context):\n    return {'ok': True}\n",
    }
    node = SquallServer(tmp_path / "data").start()
    try:
        node.cli("secret", "set", "STATUS_KEY", input="key-number-one", check=True)
        node.cli("deploy", str(write_project(tmp_path / "project", project)), check=True)

        def status(key: str) -> int:
            return httpx.get(f"{node.url}/status", headers={"x-api-key": key}, timeout=10).status_code

        assert (status("key-number-one"), status("key-number-two")) == (200, 403)
        node.cli("secret", "set", "STATUS_KEY", input="key-number-two", check=True)
        assert (status("key-number-one"), status("key-number-two")) == (403, 200)
    finally:
        node.stop()
