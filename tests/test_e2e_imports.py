"""What a function can import (squall/runtime/lambda_path.py): what Lambda's Python runtime has
(the standard library, boto3 and its dependencies, squall.sdk) and what it bundles, never
the server's own packages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from tests.support import SquallServer, write_project

pytestmark = pytest.mark.e2e

PROBE = """
import importlib

def handler(event, context):
    found = {}
    for name in event["modules"]:
        try:
            module = importlib.import_module(name)
            found[name] = getattr(module, "__file__", None) or "built in"
        except ImportError as exc:
            found[name] = "missing: " + str(exc)
    return found
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    node = SquallServer(tmp_path_factory.mktemp("imports") / "data").start()
    try:
        yield node
    finally:
        node.stop()


def deploy(server: SquallServer, root: Path, files: dict[str, str]) -> None:
    server.cli("deploy", str(write_project(root, files)), check=True, timeout=300)


def imported(server: SquallServer, function: str, *modules: str) -> dict[str, str]:
    result = server.cli("invoke", function, "--data", json.dumps({"modules": list(modules)}), "--json", check=True)
    return dict(json.loads(result.stdout)["payload"])


def test_the_standard_library_boto3_and_the_sdk_import_and_the_servers_packages_do_not(
        server: SquallServer, tmp_path: Path) -> None:
    deploy(server, tmp_path / "probe", {"squall.yaml": "name: probe\nfunctions:\n  probe:\n    handler: app.handler\n",
                                        "app.py": PROBE})

    found = imported(server, "probe", "json", "sqlite3", "boto3", "botocore.session", "dateutil", "squall.sdk",
                     "starlette", "uvicorn", "pydantic", "click", "orjson", "httpx", "requests", "simplejson")

    for available in ("json", "sqlite3", "boto3", "botocore.session", "dateutil", "squall.sdk"):
        assert not found[available].startswith("missing"), found
    for server_only in ("starlette", "uvicorn", "pydantic", "click", "orjson", "httpx", "requests", "simplejson"):
        assert found[server_only] == f"missing: No module named '{server_only}'", found


def test_a_module_the_code_imports_without_listing_it_fails_the_deploy(server: SquallServer, tmp_path: Path) -> None:
    result = server.cli("deploy", str(write_project(tmp_path / "web", {
        "squall.yaml": "name: web\nfunctions:\n  web:\n    handler: app.handler\n",
        "app.py": "import starlette\n\ndef handler(event, context):\n    return starlette.__version__\n",
    })), timeout=300)

    assert result.returncode != 0
    assert "Runtime.ImportModuleError" in result.stderr and "No module named 'starlette'" in result.stderr


def test_a_module_listed_in_requirements_is_the_functions_own(server: SquallServer, tmp_path: Path) -> None:
    deploy(server, tmp_path / "web", {
        "squall.yaml": "name: web\nfunctions:\n  web:\n    handler: app.handler\n",
        "app.py": "import starlette\n\ndef handler(event, context):\n    return starlette.__file__\n",
        "requirements.txt": "starlette\n",
    })

    result = server.cli("invoke", "web", "--json", check=True)
    where = json.loads(result.stdout)["payload"]
    assert str(server.data_dir.resolve() / "deps") in where  # its own copy, not the server's
