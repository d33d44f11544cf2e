"""End to end: provenance recorded by deploys and listed by `squall versions`, `squall diff`,
`squall deploy --ref` and the dirty-tree refusal, and housekeeping after deploys (old versions
pruned, unused code folders deleted); the store side of housekeeping on both backends."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from squall.bundle import pack_project
from squall.store.base import BaseStore, NewVersion
from squall.store.sqlite import SqliteStore
from tests.support import SQUALL, SquallServer, write_project
from tests.test_provenance import git, make_repo

pytestmark = pytest.mark.e2e

MANIFEST = """
    name: shop
    keep_versions: {keep}
    functions:
      cart:
        handler: app.handler
        memory: {memory}
        triggers:
          - http: "GET /cart"
"""


def project_files(body: str = "one", memory: int = 128, keep: int = 20) -> dict[str, str]:
    return {"squall.yaml": MANIFEST.format(keep=keep, memory=memory),
            "app.py": f"def handler(event, context):\n    return {{'statusCode': 200, 'body': '{body}'}}\n"}


def set_body(folder: Path, body: str) -> None:
    (folder / "app.py").write_text(project_files(body)["app.py"])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SquallServer]:
    node = SquallServer(tmp_path / "data", environ={"SQUALL_CODE_GRACE_SECONDS": "0"}).start()
    yield node
    node.stop()


def squall(server: SquallServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI against `server`, with extra environment variables."""
    return subprocess.run([*SQUALL, *args], check=False, env=server.env(**env), capture_output=True, text=True,
                          timeout=120)


def deployed(server: SquallServer, folder: Path, *extra: str, **env: str) -> dict[str, Any]:
    result = squall(server, "deploy", str(folder), "--json", *extra, **env)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def history(server: SquallServer, name: str = "cart") -> dict[str, Any]:
    result = squall(server, "versions", name, "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


# -- provenance and `squall versions` --------------------------------------------------------
def test_a_deploy_from_git_records_where_it_came_from(tmp_path: Path, server: SquallServer) -> None:
    folder = make_repo(tmp_path / "repo", project_files())
    answer = deployed(server, folder, SQUALL_DEPLOYER="release-bot")
    commit = git(folder, "rev-parse", "HEAD")
    assert answer["provenance"]["commit"] == commit
    [version] = history(server)["versions"]
    origin = version["provenance"]
    assert (origin["commit"], origin["branch"], origin["dirty"]) == (commit, "main", False)
    assert (origin["author"], origin["message"]) == ("Ada Lovelace <ada@example.com>", "First version")
    assert origin["deployed_by"] == "release-bot"
    assert origin["manifest_digest"] == "sha256:" + hashlib.sha256((folder / "squall.yaml").read_bytes()).hexdigest()
    assert version["aliases"] == {"live": 100} and version["number"] == 1
    table = squall(server, "versions", "cart")
    assert table.returncode == 0, table.stderr
    row = table.stdout.splitlines()[1]
    for shown in ("1", commit[:8], "main", "Ada Lovelace", "First version", "release-bot", "live"):
        assert shown in row


def test_a_deploy_outside_git_and_one_through_the_api_record_what_is_known(tmp_path: Path,
                                                                           server: SquallServer) -> None:
    folder = write_project(tmp_path / "plain", project_files())
    deployed(server, folder, SQUALL_DEPLOYER="someone@laptop")
    set_body(folder, "two")
    with server.api() as api:
        assert api.post("/_squall/api/deploy", content=pack_project(folder)).status_code == 200
    second, first = history(server)["versions"]
    assert first["provenance"]["commit"] is None and first["provenance"]["deployed_by"] == "someone@laptop"
    assert second["provenance"]["deployed_by"] == "api"
    assert second["provenance"]["manifest_digest"] == (
        "sha256:" + hashlib.sha256((folder / "squall.yaml").read_bytes()).hexdigest())
    assert (second["aliases"], first["aliases"]) == ({"live": 100}, {})
    row = squall(server, "versions", "cart").stdout.splitlines()[2]
    assert row.split()[:1] == ["1"] and " - " in row


def test_a_malformed_provenance_is_a_400_and_changes_nothing(tmp_path: Path, server: SquallServer) -> None:
    folder = write_project(tmp_path / "plain", project_files())
    with server.api() as api:
        answer = api.post("/_squall/api/deploy", content=pack_project(folder, {"commit": "not-a-sha"}))
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "BundleError"
    assert "full git sha" in answer.json()["error"]["message"]
    assert json.loads(squall(server, "ls", "--json").stdout) == []


def test_versions_of_an_unknown_function_exit_1(server: SquallServer) -> None:
    result = squall(server, "versions", "nobody")
    assert result.returncode == 1
    assert "Function not found: nobody" in result.stderr
    with server.api() as api:
        answer = api.get("/_squall/api/functions/nobody/versions")
    assert answer.status_code == 404 and answer.json()["error"]["type"] == "NotFound"


# -- `squall diff` ----------------------------------------------------------------------------
def test_diff_shows_a_code_line_and_a_config_change(tmp_path: Path, server: SquallServer) -> None:
    folder = write_project(tmp_path / "plain", project_files())
    deployed(server, folder)
    write_project(folder, project_files("two", memory=256))
    (folder / "logo.bin").write_bytes(b"\x00\x01binary")
    (folder / "extra.py").write_text("ADDED = True\n")
    deployed(server, folder)
    result = squall(server, "diff", "cart", "1", "2", "--json")
    assert result.returncode == 0, result.stderr
    changes = json.loads(result.stdout)
    assert changes["config"]["changed"] is True
    assert '-  "memory": 128,' in changes["config"]["diff"] and '+  "memory": 256,' in changes["config"]["diff"]
    files = {f["path"]: f for f in changes["files"]}
    assert set(files) == {"app.py", "extra.py", "logo.bin"}
    assert files["app.py"]["status"] == "modified"
    assert "-    return {'statusCode': 200, 'body': 'one'}" in files["app.py"]["diff"]
    assert "+    return {'statusCode': 200, 'body': 'two'}" in files["app.py"]["diff"]
    assert (files["extra.py"]["status"], files["extra.py"]["insertions"]) == ("added", 1)
    assert (files["logo.bin"]["status"], files["logo.bin"]["binary"]) == ("added", True)
    text = squall(server, "diff", "cart", "1", "2")
    assert text.returncode == 0, text.stderr
    assert "--- v1/config" in text.stdout and "+++ v2/app.py" in text.stdout
    assert "+    return {'statusCode': 200, 'body': 'two'}" in text.stdout
    assert "logo.bin: added in v2 (binary files differ)" in text.stdout
    stat = squall(server, "diff", "cart", "1", "2", "--stat")
    assert "3 file(s) changed" in stat.stdout and "(configuration)" in stat.stdout
    back = json.loads(squall(server, "diff", "cart", "2", "1", "--json").stdout)
    assert {f["path"]: f["status"] for f in back["files"]}["extra.py"] == "removed"
    same = squall(server, "diff", "cart", "2", "2")
    assert same.returncode == 0 and "same code and configuration" in same.stdout


def test_diff_with_unknown_function_or_version_exits_1_and_bad_numbers_2(tmp_path: Path,
                                                                         server: SquallServer) -> None:
    deployed(server, write_project(tmp_path / "plain", project_files()))
    unknown = squall(server, "diff", "cart", "1", "9")
    assert unknown.returncode == 1 and "function cart has no version 9" in unknown.stderr
    nobody = squall(server, "diff", "nobody", "1", "2")
    assert nobody.returncode == 1 and "Function not found: nobody" in nobody.stderr
    assert squall(server, "diff", "cart", "0", "1").returncode == 2
    with server.api() as api:
        answer = api.get("/_squall/api/functions/cart/diff", params={"a": "x", "b": "1"})
    assert answer.status_code == 400 and "`a` must be a version number" in answer.json()["error"]["message"]


# -- `squall deploy --ref` and dirty trees -------------------------------------------------------
def test_deploy_ref_deploys_the_committed_content_not_the_working_tree(tmp_path: Path,
                                                                        server: SquallServer) -> None:
    repo = tmp_path / "repo"
    folder = make_repo(repo, project_files("committed"), project="services/shop")
    git(repo, "tag", "v1")
    set_body(folder, "second")
    git(repo, "commit", "-q", "-am", "Second")
    set_body(folder, "on disk only")
    answer = deployed(server, folder, "--ref", "v1")
    assert httpx.get(f"{server.url}/cart").text == "committed"
    origin = answer["provenance"]
    assert (origin["commit"], origin["dirty"], origin["ref"], origin["branch"]) == (
        git(repo, "rev-parse", "v1"), False, "v1", None)
    deployed(server, folder, "--ref", "main")
    assert httpx.get(f"{server.url}/cart").text == "second"
    assert history(server)["versions"][0]["provenance"]["branch"] == "main"
    bad = squall(server, "deploy", str(folder), "--ref", "no-such-ref")
    assert bad.returncode == 2 and "'no-such-ref' is not a commit, branch or tag" in bad.stderr


def test_deploy_ref_of_a_project_at_the_top_of_its_repository(tmp_path: Path, server: SquallServer) -> None:
    folder = make_repo(tmp_path / "repo", project_files("top"))
    set_body(folder, "on disk only")
    deployed(server, folder, "--ref", "HEAD")
    assert httpx.get(f"{server.url}/cart").text == "top"


def test_a_dirty_tree_is_refused_with_exit_2_unless_allowed(tmp_path: Path, server: SquallServer) -> None:
    folder = make_repo(tmp_path / "repo", project_files("committed"))
    deployed(server, folder)
    set_body(folder, "edited")
    refused = squall(server, "deploy", str(folder))
    assert refused.returncode == 2
    assert "uncommitted changes (app.py)" in refused.stderr and "--allow-dirty" in refused.stderr
    assert len(history(server)["versions"]) == 1
    assert httpx.get(f"{server.url}/cart").text == "committed"
    answer = deployed(server, folder, "--allow-dirty")
    assert answer["provenance"]["dirty"] is True
    assert httpx.get(f"{server.url}/cart").text == "edited"
    set_body(folder, "edited again")
    deployed(server, folder, SQUALL_ALLOW_DIRTY="1")
    latest = history(server)["versions"][0]
    assert (latest["number"], latest["provenance"]["dirty"]) == (3, True)
    row = squall(server, "versions", "cart").stdout.splitlines()[1]
    assert git(folder, "rev-parse", "HEAD")[:8] + "-dirty" in row


# -- housekeeping --------------------------------------------------------------------------------
def code_folders(server: SquallServer) -> set[str]:
    return {f"code/{p.name}" for p in (server.data_dir / "code").iterdir() if not p.name.startswith(".")}


def test_housekeeping_keeps_the_newest_and_aliased_versions_and_deletes_unused_code(
        tmp_path: Path, server: SquallServer) -> None:
    folder = write_project(tmp_path / "plain", project_files("v1", keep=2))
    deployed(server, folder)
    store = SqliteStore(server.data_dir / "squall.db")
    try:
        store.set_alias("cart", "stable", {1: 100}, reason="set", now=time.time())
        paths = {1: store.get_version("cart", 1).code_path}  # type: ignore[union-attr]
        for number in (2, 3, 4):
            write_project(folder, project_files(f"v{number}", keep=2))
            answer = deployed(server, folder)
            paths[number] = store.get_version("cart", number).code_path  # type: ignore[union-attr]
            assert answer["pruned"] == ({"cart": [2]} if number == 4 else {})
        assert [v.number for v in store.list_versions("cart")] == [1, 3, 4]
        assert code_folders(server) == {paths[1], paths[3], paths[4]}
    finally:
        store.close()
    listed = history(server)["versions"]
    assert [(v["number"], v["aliases"]) for v in listed] == [(4, {"live": 100}), (3, {}), (1, {"stable": 100})]
    write_project(folder, project_files("v5", keep=1))
    result = squall(server, "deploy", str(folder))
    assert result.returncode == 0, result.stderr
    assert "Pruned old versions: cart 3, 4" in result.stdout
    assert [v["number"] for v in history(server)["versions"]] == [5, 1]
    assert httpx.get(f"{server.url}/cart").text == "v5"


def test_code_folders_within_the_grace_period_are_kept(tmp_path: Path) -> None:
    node = SquallServer(tmp_path / "data").start()  # the default grace period: 600 s
    try:
        folder = write_project(tmp_path / "plain", project_files("v1", keep=1))
        deployed(node, folder)
        write_project(folder, project_files("v2", keep=1))
        assert deployed(node, folder)["pruned"] == {"cart": [1]}
        assert len(code_folders(node)) == 2
    finally:
        node.stop()


def test_a_bad_grace_period_stops_the_server_with_a_clear_message(tmp_path: Path) -> None:
    node = SquallServer(tmp_path / "data", environ={"SQUALL_CODE_GRACE_SECONDS": "soon"})
    with pytest.raises(RuntimeError, match="SQUALL_CODE_GRACE_SECONDS='soon' is not a number of seconds"):
        node.start()
    node.stop()


# -- the store side of housekeeping (each backend) -----------------------------------------------
def test_prune_keeps_the_newest_and_the_aliased_and_code_in_use_follows(store: BaseStore) -> None:
    for number in range(1, 6):
        store.commit_deploy("shop", [NewVersion("cart", f"h{number}", {"deps": f"d{number % 2}"},
                                                f"code/c{number}")])
    store.set_alias("cart", "stable", {2: 90, 1: 10}, reason="set", now=time.time())
    assert store.prune_versions("cart", keep=2) == [3]
    assert [v.number for v in store.list_versions("cart")] == [1, 2, 4, 5]
    assert store.code_in_use() == {"code/c1", "code/c2", "code/c4", "code/c5", "deps/d0", "deps/d1"}
    assert store.prune_versions("cart", keep=2) == []
