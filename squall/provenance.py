"""Where a deploy comes from (its provenance), recorded with every version the deploy creates,
and the two things a deploy can be packed from: the project folder as it is on disk, or a
committed git ref of it (`squall deploy --ref`).

The client collects, from the git repository the project folder is in (with `git`):

    commit        the full sha of HEAD (or of --ref)
    branch        the branch checked out (or given as --ref); null when detached
    dirty         whether files the bundle holds, under the project folder, differ from the commit
    author        `name <email>` of the commit's author
    message       the subject line of the commit's message
    ref           the --ref given, if any
    deployed_by   SQUALL_DEPLOYER, else `user@hostname`

Outside a git repository the git fields are null. The client puts it into the bundle's
BUNDLE_INFO (squall/bundle.py); the server validates it (`Provenance.from_bundle`: unknown
keys dropped, strings capped, a malformed one is a 400), adds `manifest_digest` (sha256 of
the squall.yaml bytes deployed) and writes `deployed_by: "api"` when the bundle has none.
When a version was made is its `created_at`, the server's clock.
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import io
import os
import re
import socket
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from squall.bundle import BundleRules, pack_project
from squall.exceptions import BadInput, BundleError
from squall.settings import DEPLOYER

SERVER_DEPLOYER = "api"
"""`deployed_by` of a deploy whose bundle names nobody (a script's own bundle, `squall dev`)."""
GIT_TIMEOUT = 60
TEXT_LIMITS = {"branch": 255, "author": 255, "message": 500, "ref": 255, "deployed_by": 255}
"""Longest stored value of each text field, in characters; longer ones are cut."""
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHOWN_FILES = 5


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where one deploy came from (see the module docstring for each field)."""

    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    author: str | None = None
    message: str | None = None
    ref: str | None = None
    deployed_by: str | None = None
    manifest_digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_bundle(cls, raw: Any) -> Provenance:
        """The provenance a client sent (None: none), checked: BundleError (400) when a field
        has the wrong type or `commit` is not a full sha; unknown keys and `manifest_digest`
        (the server computes it) are dropped, text is cut to TEXT_LIMITS and stripped of
        control characters."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise BundleError(f"the bundle's provenance must be a JSON object, not {type(raw).__name__}")
        commit = raw.get("commit")
        if commit is not None and not (isinstance(commit, str) and _COMMIT.fullmatch(commit)):
            raise BundleError(f"the bundle's provenance has commit {str(commit)[:80]!r}: a commit must be "
                              "a full git sha (40 or 64 lowercase hex digits) or null")
        dirty = raw.get("dirty")
        if dirty is not None and not isinstance(dirty, bool):
            raise BundleError(f"the bundle's provenance has dirty {str(dirty)[:80]!r}: it must be true, "
                              "false or null")
        texts = {name: _clean_text(name, raw.get(name), limit) for name, limit in TEXT_LIMITS.items()}
        return cls(commit=commit, dirty=dirty, **texts)


def _clean_text(name: str, value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BundleError(f"the bundle's provenance has {name} {str(value)[:80]!r}: it must be text or null")
    return _CONTROL.sub(" ", value)[:limit]


def manifest_digest(manifest_bytes: bytes) -> str:
    """`sha256:<hex>` of the squall.yaml bytes deployed."""
    return "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()


def deployer() -> str:
    """Who deploys: SQUALL_DEPLOYER when set, else `user@hostname` of this machine."""
    named = DEPLOYER.read()
    if named:
        return named
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


# -- git ------------------------------------------------------------------------------


def _git(folder: Path, *args: str) -> str | None:
    """`git args...` run in `folder`: its output, or None when it fails (not a repository,
    an unknown ref, git missing)."""
    environ = {**os.environ, "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(["git", *args], check=False, cwd=folder, env=environ, capture_output=True,
                              encoding="utf-8", errors="replace", timeout=GIT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def repository_prefix(folder: Path) -> str | None:
    """The path of `folder` inside its git repository (`""` at the top, else ending in `/`);
    None when `folder` is not inside a git work tree."""
    prefix = _git(folder, "rev-parse", "--show-prefix")
    return None if prefix is None else prefix.strip("\n")


def _commit_of(folder: Path, ref: str) -> str | None:
    found = _git(folder, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    return found.strip() if found else None


def _current_branch(folder: Path) -> str | None:
    found = _git(folder, "symbolic-ref", "--quiet", "--short", "HEAD")
    return found.strip() if found and found.strip() else None


def _commit_facts(folder: Path, commit: str) -> tuple[str | None, str | None]:
    """`(author, subject)` of `commit`."""
    found = _git(folder, "log", "-1", "--no-show-signature", "--format=%an <%ae>%x00%s", commit, "--")
    if not found or "\0" not in found:
        return None, None
    author, subject = found.rstrip("\n").split("\0", 1)
    return author, subject


def uncommitted_files(folder: Path) -> list[str]:
    """Files under `folder` that its bundle would hold (or did hold) and that differ from the
    commit checked out: changed, staged, deleted, or new and not ignored by git. Changes to
    what the bundle leaves out (`.squall/`, `.squallignore` patterns...) do not count."""
    changed = _git(folder, "diff", "HEAD", "--name-only", "--no-renames", "--no-ext-diff", "--ignore-submodules",
                   "--relative", "-z", "--", ".")
    if changed is None:  # no commit yet: everything is uncommitted
        changed = _git(folder, "ls-files", "--cached", "-z", "--", ".") or ""
    untracked = _git(folder, "ls-files", "--others", "--exclude-standard", "-z", "--", ".") or ""
    rules = BundleRules(folder)
    paths = {p for p in (changed + untracked).split("\0") if p}
    return sorted(p for p in paths if not rules.left_out(PurePath(p)))


def working_tree_provenance(folder: Path) -> Provenance:
    """The provenance of deploying `folder` as it is on disk."""
    folder = folder.resolve()
    if repository_prefix(folder) is None:
        return Provenance(deployed_by=deployer())
    commit = _commit_of(folder, "HEAD")
    author, message = _commit_facts(folder, commit) if commit else (None, None)
    return Provenance(commit=commit, branch=_current_branch(folder), dirty=bool(uncommitted_files(folder)),
                      author=author, message=message, deployed_by=deployer())


def ref_provenance(folder: Path, ref: str, commit: str) -> Provenance:
    """The provenance of deploying `commit` (what `ref` names): never dirty. The branch is
    `ref` when it names a local branch (the one checked out for HEAD), else null."""
    if _git(folder, "show-ref", "--verify", "--quiet", f"refs/heads/{ref}") is not None:
        branch: str | None = ref
    else:
        branch = _current_branch(folder) if ref == "HEAD" else None
    author, message = _commit_facts(folder, commit)
    return Provenance(commit=commit, branch=branch, dirty=False, author=author, message=message, ref=ref,
                      deployed_by=deployer())


def export_ref(folder: Path, ref: str, dest: Path) -> tuple[Path, str]:
    """Write the project folder `folder` as committed in `ref` to `dest/<folder's name>` (with
    `git archive`: export-ignore attributes apply, submodules and symbolic links are left
    out); returns that path and the commit's sha. BadInput when `folder` is not in a git
    repository, `ref` names no commit, or the commit has no such folder."""
    folder = folder.resolve()
    prefix = repository_prefix(folder)
    if prefix is None:
        raise BadInput(f"--ref needs a git repository, and {folder} is not inside one")
    commit = _commit_of(folder, ref)
    if commit is None:
        raise BadInput(f"{ref!r} is not a commit, branch or tag of the git repository of {folder}")
    top = (_git(folder, "rev-parse", "--show-toplevel") or "").strip("\n")
    subfolder = prefix.rstrip("/")
    if _git(folder, "cat-file", "-e", f"{commit}:{subfolder}") is None:
        raise BadInput(f"commit {commit[:12]} ({ref}) has no folder {subfolder or '.'} (the project folder)")
    # Run at the top: in a subfolder, git archive would only export what is under it, again.
    archive = subprocess.run(["git", "archive", "--format=tar", f"{commit}:{subfolder}"], check=False, cwd=top,
                             capture_output=True, timeout=GIT_TIMEOUT)
    if archive.returncode != 0:
        raise BadInput(f"git archive of {ref} failed: {archive.stderr.decode(errors='replace').strip()}")
    target = dest / folder.name
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout), mode="r:") as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
        tar.extractall(target, members=members, filter="data")
    return target, commit


# -- what a deploy sends ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PackedDeploy:
    """A bundle ready for `SquallClient.deploy`, and the provenance packed into it."""

    bundle: bytes
    provenance: Provenance
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The stages the manifest declares, as the server keeps them (squall.manifest.stages.stage_settings)."""


def pack_deploy(folder: Path, *, ref: str | None = None, allow_dirty: bool = False) -> PackedDeploy:
    """Pack the project in `folder` with its provenance: the committed `ref` of it exactly when
    given, else the folder as it is on disk. A folder inside a git repository with uncommitted
    changes (see `uncommitted_files`) is refused with BadInput unless `allow_dirty`: a version
    should be what its recorded commit holds."""
    if ref is not None:
        with tempfile.TemporaryDirectory(prefix="squall-ref-") as tmp:
            exported, commit = export_ref(folder, ref, Path(tmp))
            provenance = ref_provenance(folder.resolve(), ref, commit)
            return PackedDeploy(pack_project(exported, provenance.to_dict()), provenance, declared_stages(exported))
    provenance = working_tree_provenance(folder)
    if provenance.dirty and not allow_dirty:
        raise BadInput(dirty_message(folder))
    return PackedDeploy(pack_project(folder, provenance.to_dict()), provenance, declared_stages(folder))


def declared_stages(folder: Path) -> dict[str, dict[str, Any]]:
    """The settings of each stage the project's squall.yaml declares under `stages:`."""
    from squall.manifest import load_manifest
    from squall.manifest.stages import stage_settings

    manifest = load_manifest(folder)
    return {name: stage_settings(name, spec) for name, spec in manifest.stages.items()}


def dirty_message(folder: Path) -> str:
    files = uncommitted_files(folder.resolve())
    shown = ", ".join(files[:_SHOWN_FILES]) + (f" and {len(files) - _SHOWN_FILES} more" if len(files) > _SHOWN_FILES
                                               else "")
    return (f"{folder} has uncommitted changes ({shown}); nothing was deployed. Commit them, deploy a "
            "commit with --ref (e.g. --ref HEAD), or deploy the files as they are with --allow-dirty")
