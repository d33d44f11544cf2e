"""End to end: init, deploy from another shell, versions, bad input, restart, requirements, PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.support import SQUALL, SquallServer, write_project

pytestmark = pytest.mark.e2e

HELLO = {
    "squall.yaml": """
        name: hello
        functions:
          hello:
            handler: app.handler
            triggers:
              - http: "GET /hello"
    """,
    "app.py": """
        def handler(event, context):
            return {"statusCode": 200, "body": "v1"}
    """,
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SquallServer]:
    node = SquallServer(tmp_path / "data").start()
    yield node
    node.stop()


def deploy_json(server: SquallServer, project: Path) -> dict:
    result = server.cli("deploy", str(project), "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_init_project_runs_as_is(tmp_path: Path, server: SquallServer) -> None:
    project = tmp_path / "myapp"
    server.cli("init", str(project), check=True)
    assert (project / "squall.yaml").is_file() and (project / "test_app.py").is_file()
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
                            capture_output=True, text=True, cwd=project)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    server.cli("deploy", str(project), check=True)
    response = httpx.get(f"{server.url}/hello", params={"name": "you"})
    assert response.status_code == 200
    assert "hello, you" in response.text


def test_versions_change_only_with_the_code(tmp_path: Path, server: SquallServer) -> None:
    project = write_project(tmp_path / "hello", HELLO)
    first = deploy_json(server, project)
    assert first["changed"] is True
    assert first["functions"][0]["version"] == 1
    assert first["functions"][0]["code_hash"].startswith("sha256:")
    again = server.cli("deploy", str(project))
    assert again.returncode == 0
    assert "No changes" in again.stdout
    assert deploy_json(server, project)["functions"][0]["version"] == 1
    (project / "app.py").write_text('def handler(event, context):\n    return {"statusCode": 200, "body": "v2"}\n')
    second = deploy_json(server, project)
    assert second["functions"][0]["version"] == 2
    assert second["functions"][0]["code_hash"] != first["functions"][0]["code_hash"]
    assert httpx.get(f"{server.url}/hello").text == "v2"


def test_server_restart_serves_everything_it_had(tmp_path: Path, server: SquallServer) -> None:
    project = write_project(tmp_path / "hello", HELLO)
    server.cli("deploy", str(project), check=True)
    server.restart()
    assert httpx.get(f"{server.url}/hello").text == "v1"
    listed = json.loads(server.cli("ls", "--json", check=True).stdout)
    assert [f["name"] for f in listed] == ["hello"]


def test_bad_manifest_exits_2_naming_file_line_and_field(tmp_path: Path, server: SquallServer) -> None:
    project = write_project(tmp_path / "bad", {
        "squall.yaml": """
            name: bad
            functions:
              hello:
                handler: app.handler
                timeout: soon
        """,
        "app.py": "def handler(e, c):\n    return 1\n",
    })
    result = server.cli("deploy", str(project))
    assert result.returncode == 2
    assert "squall.yaml:5" in result.stderr
    assert "functions.hello.timeout" in result.stderr


def test_import_error_is_rejected_and_previous_version_keeps_serving(tmp_path: Path,
                                                                     server: SquallServer) -> None:
    project = write_project(tmp_path / "hello", HELLO)
    server.cli("deploy", str(project), check=True)
    (project / "app.py").write_text("import no_such_module_anywhere\n\ndef handler(e, c):\n    return 1\n")
    result = server.cli("deploy", str(project))
    assert result.returncode == 2
    assert "no_such_module_anywhere" in result.stderr
    assert "Runtime.ImportModuleError" in result.stderr
    assert httpx.get(f"{server.url}/hello").text == "v1"
    info = json.loads(server.cli("ls", "--json", check=True).stdout)
    assert info[0]["version"] == 1


def test_requirements_are_installed_into_the_bundle(tmp_path: Path, server: SquallServer) -> None:
    project = write_project(tmp_path / "deps", {
        "squall.yaml": """
            name: deps
            functions:
              uses-lib:
                handler: app.handler
                triggers: [{http: "GET /lib"}]
        """,
        "app.py": """
            import tinylib_for_squall

            def handler(event, context):
                return {"answer": tinylib_for_squall.ANSWER, "where": tinylib_for_squall.__file__}
        """,
        "requirements.txt": "./vendor/tinylib\n",
        "vendor/tinylib/pyproject.toml": """
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "tinylib-for-squall"
            version = "1.0"
            [tool.setuptools]
            py-modules = ["tinylib_for_squall"]
        """,
        "vendor/tinylib/tinylib_for_squall.py": "ANSWER = 42\n",
    })
    server.cli("deploy", str(project), check=True, timeout=300)
    body = httpx.get(f"{server.url}/lib").json()
    assert body["answer"] == 42
    assert str(server.data_dir.resolve() / "deps") in body["where"]


def test_deploy_without_token_is_refused(tmp_path: Path, server: SquallServer) -> None:
    project = write_project(tmp_path / "hello", HELLO)
    env = server.env()
    env["SQUALL_TOKEN"] = "wrong"
    result = subprocess.run([*SQUALL, "deploy", str(project)], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "token" in result.stderr


def test_postgres_store_serves_after_restart(tmp_path: Path, fresh_postgres_url: str) -> None:
    import psycopg

    node = SquallServer(tmp_path / "data", store=fresh_postgres_url).start()
    try:
        project = write_project(tmp_path / "pg-hello", {**HELLO, "squall.yaml": HELLO["squall.yaml"].replace(
            "name: hello", "name: pg-hello").replace("hello:", "pg-hello:").replace("/hello", "/pg-hello")})
        assert deploy_json(node, project)["functions"][0]["version"] == 1
        assert httpx.get(f"{node.url}/pg-hello").text == "v1"
        node.restart()
        assert httpx.get(f"{node.url}/pg-hello").text == "v1"
        with psycopg.connect(fresh_postgres_url) as conn:
            row = conn.execute("SELECT count(*) FROM versions WHERE function = 'pg-hello'").fetchone()
        assert row == (1,)
    finally:
        node.stop()


def test_project_without_name_is_named_after_its_folder(tmp_path: Path, server: SquallServer) -> None:
    project = write_project(tmp_path / "folder-named", {
        **HELLO, "squall.yaml": "\n".join(line for line in HELLO["squall.yaml"].splitlines()
                                           if "name: hello" not in line)})
    first = deploy_json(server, project)
    assert first["project"] == "folder-named"
    again = server.cli("deploy", str(project))
    assert again.returncode == 0, again.stderr
    assert "No changes" in again.stdout


def test_editing_one_function_leaves_the_others_unchanged(tmp_path: Path, server: SquallServer) -> None:
    manifest = """
        name: pair
        functions:
          first:
            handler: app.handler
          second:
            handler: app.handler
            env: {COLOR: "red"}
    """
    project = write_project(tmp_path / "pair", {"squall.yaml": manifest, "app.py": HELLO["app.py"]})
    deploy_json(server, project)
    write_project(project, {"squall.yaml": manifest.replace('"red"', '"blue"')})
    report = {f["name"]: f for f in deploy_json(server, project)["functions"]}
    assert report["first"]["changed"] is False and report["first"]["version"] == 1
    assert report["second"]["changed"] is True and report["second"]["version"] == 2
