"""End to end: `squall dev` deploys a folder, prints its routes and redeploys on change."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support import SquallServer, wait_until, write_project

pytestmark = pytest.mark.e2e

PROJECT = {
    "squall.yaml": """
        name: devloop
        functions:
          page:
            handler: app.handler
            triggers:
              - http: "GET /page"
    """,
    "app.py": """
        import time

        def handler(event, context):
            if (event.get("queryStringParameters") or {}).get("slow"):
                time.sleep(1.5)
            return {"statusCode": 200, "body": "old"}
    """,
}


def test_dev_redeploys_on_change_and_lets_inflight_requests_finish(tmp_path: Path) -> None:
    project = write_project(tmp_path / "devloop", PROJECT)
    node = SquallServer(tmp_path / "data", command="dev", project=project)
    node.start()
    try:
        wait_until(lambda: httpx.get(f"{node.url}/page").status_code == 200, timeout=20)
        assert f"{node.url}/page" in node.output()
        assert f"export SQUALL_URL={node.url}" in node.output()
        assert httpx.get(f"{node.url}/page").text == "old"
        slow: dict[str, str] = {}
        in_flight = threading.Thread(target=lambda: slow.update(
            text=httpx.get(f"{node.url}/page", params={"slow": "1"}, timeout=30).text))
        in_flight.start()
        time.sleep(0.3)
        (project / "app.py").write_text(
            'def handler(event, context):\n    return {"statusCode": 200, "body": "new"}\n')
        wait_until(lambda: httpx.get(f"{node.url}/page").text == "new", timeout=15)
        in_flight.join(timeout=30)
        assert slow["text"] == "old", "a request in flight finishes on the code it started with"
        (project / "app.py").write_text("this is not python(\n")
        wait_until(lambda: "deploy failed" in node.output(), timeout=15)
        assert httpx.get(f"{node.url}/page").text == "new", "a broken save keeps the last good version"
    finally:
        node.stop()
