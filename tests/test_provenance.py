"""Provenance (squall/provenance.py) with real git repositories in temporary folders: what is
collected, what counts as dirty, exporting a committed ref, the server-side check of what a
bundle claims, the stores keeping it, and the deploy's folder sweep."""

from __future__ import annotations

import getpass
import hashlib
import io
import json
import os
import socket
import subprocess
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

from squall.bundle import BUNDLE_INFO, BundleRules, project_files
from squall.exceptions import BadInput, BundleError
from squall.provenance import (
    TEXT_LIMITS,
    Provenance,
    deployer,
    export_ref,
    pack_deploy,
    uncommitted_files,
    working_tree_provenance,
)
from squall.node.deploy import remove_unused_folders
from squall.store.base import BaseStore, NewVersion
from tests.support import write_project

PROJECT = {
    "squall.yaml": """
        name: origin
        functions:
          hello:
            handler: app.handler
    """,
    "app.py": """
        def handler(event, context):
            return "committed"
    """,
}


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True,
                          env={**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"})
    return done.stdout.strip()


def make_repo(root: Path, files: dict[str, str] = PROJECT, *, project: str = "") -> Path:
    """A git repository at `root` with `files` committed under `root/project` (on branch main);
    returns the project folder."""
    folder = write_project(root / project if project else root, files)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Ada Lovelace")
    git(root, "config", "user.email", "ada@example.com")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "First version\n\nA longer body that is not recorded.")
    return folder


def bundle_info(bundle: bytes) -> dict:
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
        member = tar.extractfile(BUNDLE_INFO)
        assert member is not None
        return dict(json.loads(member.read()))


def bundle_file(bundle: bytes, name: str) -> str:
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read().decode()


# -- collecting ----------------------------------------------------------------------------
def test_outside_git_only_the_deployer_is_known(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SQUALL_DEPLOYER", raising=False)
    folder = write_project(tmp_path / "plain", PROJECT)
    found = working_tree_provenance(folder)
    assert found == Provenance(deployed_by=f"{getpass.getuser()}@{socket.gethostname()}")
    assert uncommitted_files(folder) == []


def test_squall_deployer_names_who_deploys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQUALL_DEPLOYER", "release-bot")
    assert deployer() == "release-bot"


def test_a_clean_checkout_gives_commit_branch_author_and_subject(tmp_path: Path) -> None:
    folder = make_repo(tmp_path / "repo")
    found = working_tree_provenance(folder)
    assert found.commit == git(folder, "rev-parse", "HEAD") and len(found.commit) == 40
    assert (found.branch, found.dirty) == ("main", False)
    assert found.author == "Ada Lovelace <ada@example.com>"
    assert found.message == "First version"
    assert found.ref is None and found.manifest_digest is None


def test_a_detached_head_has_no_branch(tmp_path: Path) -> None:
    folder = make_repo(tmp_path / "repo")
    git(folder, "checkout", "-q", "--detach")
    assert working_tree_provenance(folder).branch is None


def test_changed_staged_new_and_deleted_files_make_the_tree_dirty(tmp_path: Path) -> None:
    folder = make_repo(tmp_path / "repo")
    (folder / "app.py").write_text("changed\n")
    (folder / "new.py").write_text("new\n")
    git(folder, "rm", "-q", "squall.yaml")
    assert uncommitted_files(folder) == ["app.py", "new.py", "squall.yaml"]
    assert working_tree_provenance(folder).dirty is True


def test_what_the_bundle_leaves_out_and_other_folders_do_not_count(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    folder = make_repo(repo, {**PROJECT, ".squallignore": "notes/\n"}, project="services/api")
    write_project(repo, {"README.md": "elsewhere in the repository\n"})
    write_project(folder, {".squall/squall.db": "x", "__pycache__/app.pyc": "x", "notes/todo.txt": "x"})
    assert uncommitted_files(folder) == []
    assert working_tree_provenance(folder).dirty is False


def test_git_ignored_files_do_not_count(tmp_path: Path) -> None:
    folder = make_repo(tmp_path / "repo", {**PROJECT, ".gitignore": "*.log\n"})
    (folder / "debug.log").write_text("x")
    assert uncommitted_files(folder) == []


def test_a_repository_without_commits_is_dirty(tmp_path: Path) -> None:
    folder = write_project(tmp_path / "fresh", PROJECT)
    git(folder, "init", "-q")
    found = working_tree_provenance(folder)
    assert (found.commit, found.dirty) == (None, True)


def test_bundle_rules_agree_with_project_files(tmp_path: Path) -> None:
    folder = write_project(tmp_path / "p", {**PROJECT, ".squallignore": "docs/\n*.md\n", "docs/a.txt": "x",
                                            "lib/b.md": "x", "lib/c.py": "x", "venv/d.py": "x"})
    rules = BundleRules(folder)
    every = [p.relative_to(folder) for p in folder.rglob("*") if p.is_file()]
    assert sorted(p for p in every if not rules.left_out(p)) == project_files(folder)


# -- packing a deploy ------------------------------------------------------------------------
def test_a_dirty_tree_is_refused_unless_allowed(tmp_path: Path) -> None:
    folder = make_repo(tmp_path / "repo")
    (folder / "app.py").write_text("def handler(event, context):\n    return 'edited'\n")
    with pytest.raises(BadInput, match=r"uncommitted changes \(app.py\).*--ref.*--allow-dirty"):
        pack_deploy(folder)
    packed = pack_deploy(folder, allow_dirty=True)
    assert packed.provenance.dirty is True
    assert bundle_info(packed.bundle)["provenance"]["dirty"] is True
    assert "edited" in bundle_file(packed.bundle, "app.py")


def test_a_folder_outside_git_is_packed_as_it_is(tmp_path: Path) -> None:
    packed = pack_deploy(write_project(tmp_path / "plain", PROJECT))
    assert bundle_info(packed.bundle)["provenance"]["commit"] is None
    assert bundle_info(packed.bundle)["project"] == "origin"


def test_a_ref_packs_what_is_committed_not_the_working_tree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    folder = make_repo(repo, project="services/api")
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1")
    (folder / "app.py").write_text("def handler(event, context):\n    return 'second'\n")
    git(repo, "commit", "-q", "-am", "Second version")
    (folder / "app.py").write_text("def handler(event, context):\n    return 'not committed'\n")
    packed = pack_deploy(folder, ref="v1")
    assert bundle_file(packed.bundle, "app.py") == textwrap.dedent(PROJECT["app.py"]).lstrip("\n")
    assert (packed.provenance.commit, packed.provenance.dirty) == (first, False)
    assert (packed.provenance.ref, packed.provenance.branch, packed.provenance.message) == ("v1", None,
                                                                                          "First version")
    on_main = pack_deploy(folder, ref="main").provenance
    assert (on_main.branch, on_main.message) == ("main", "Second version")
    assert "second" in bundle_file(pack_deploy(folder, ref="HEAD").bundle, "app.py")


def test_an_exported_ref_keeps_the_project_folders_name(tmp_path: Path) -> None:
    folder = make_repo(tmp_path / "repo", {**PROJECT, "squall.yaml": PROJECT["squall.yaml"].replace(
        "name: origin", "")}, project="my-service")
    target, _ = export_ref(folder, "HEAD", tmp_path / "out")
    assert target.name == "my-service" and (target / "app.py").is_file()
    assert bundle_info(pack_deploy(folder, ref="HEAD").bundle)["project"] == "my-service"


@pytest.mark.parametrize("ref, message", [("no-such-branch", "is not a commit, branch or tag"),
                                          ("--upload-pack=evil", "is not a commit")])
def test_an_unknown_ref_is_bad_input(tmp_path: Path, ref: str, message: str) -> None:
    folder = make_repo(tmp_path / "repo")
    with pytest.raises(BadInput, match=message):
        pack_deploy(folder, ref=ref)


def test_a_ref_without_the_project_folder_is_bad_input(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_project(repo, {"README.md": "x"})
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=A", "-c", "user.email=a@b", "add", "-A")
    git(repo, "-c", "user.name=A", "-c", "user.email=a@b", "commit", "-q", "-m", "readme")
    folder = write_project(repo / "later", PROJECT)
    with pytest.raises(BadInput, match="has no folder later"):
        pack_deploy(folder, ref="HEAD")


def test_a_ref_outside_git_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="needs a git repository"):
        pack_deploy(write_project(tmp_path / "plain", PROJECT), ref="HEAD")


# -- the server's check --------------------------------------------------------------------
def test_from_bundle_drops_unknown_keys_and_caps_text() -> None:
    found = Provenance.from_bundle({"commit": "a" * 40, "branch": "x" * 1000, "dirty": True, "surprise": 1,
                                    "message": "two\nlines\x1b[31m", "manifest_digest": "sha256:forged"})
    assert found.commit == "a" * 40 and found.dirty is True
    assert found.branch == "x" * TEXT_LIMITS["branch"]
    assert found.message == "two lines [31m"
    assert found.manifest_digest is None
    assert Provenance.from_bundle(None) == Provenance()


@pytest.mark.parametrize("raw, message", [
    (["a"], "must be a JSON object"),
    ({"commit": "abc123"}, "full git sha"),
    ({"commit": "A" * 40}, "full git sha"),
    ({"dirty": "yes"}, "true, false or null"),
    ({"author": 42}, "must be text or null"),
])
def test_from_bundle_refuses_malformed_fields(raw: object, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        Provenance.from_bundle(raw)


# -- the stores keep it ----------------------------------------------------------------------
def test_each_store_keeps_a_versions_provenance(store: BaseStore) -> None:
    origin = {"commit": "b" * 40, "branch": None, "dirty": False, "author": "Ada <a@b>", "message": "Ünïcode ✓",
              "ref": None, "deployed_by": "ci", "manifest_digest": "sha256:" + hashlib.sha256(b"x").hexdigest()}
    [created] = store.commit_deploy("shop", [NewVersion("checkout", "h1", {"handler": "a.b"}, "code/h1", origin)])
    assert created.provenance == origin
    assert store.get_version("checkout", 1).provenance == origin  # type: ignore[union-attr]
    assert [v.provenance for v in store.list_versions("checkout")] == [origin]


# -- the deploy's folder sweep -----------------------------------------------------------------
def stored_folder(data: Path, relative: str, age: float) -> Path:
    folder = data / relative
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg" / "mod.py").write_text("x")
    for path in (folder / "pkg" / "mod.py", folder / "pkg", folder):
        path.chmod(0o444 if path.is_file() else 0o555)
    os.utime(folder, (time.time() - age, time.time() - age))
    return folder


def test_unused_folders_older_than_the_grace_period_are_deleted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    used = stored_folder(data, "code/used", 3600)
    old = stored_folder(data, "code/old", 3600)
    fresh = stored_folder(data, "code/fresh", 5)
    deps = stored_folder(data, "deps/abc", 3600)
    staging = stored_folder(data, "code/.code-staging", 3600)
    removed = remove_unused_folders(data, {"code/used"}, 600, time.time())
    assert removed == ["code/old", "deps/abc"]
    assert used.is_dir() and fresh.is_dir() and staging.is_dir()
    assert not old.exists() and not deps.exists()
    assert sorted(p.name for p in (data / "code").iterdir()) == [".code-staging", "fresh", "used"]
