"""Deploying a project bundle: unpack, validate, install requirements, hash each function,
check that changed handlers import, then store the new versions and switch traffic at once.

Nothing is applied unless every step succeeds: a function that cannot be imported
rejects the whole deploy and the previous versions keep serving.

Each new version records the deploy's provenance (squall/provenance.py). After a deploy,
housekeeping keeps each function's newest `keep_versions` versions and those an alias points
at, and deletes the code and dependency folders no stored version refers to any more (once
they are older than the node's grace period: another node sharing the data dir may be
storing a deploy that reuses them).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from squall.bundle import (
    UnpackLimits,
    bundle_project_name,
    bundle_provenance,
    hash_tree,
    project_files,
    touch_folder,
    unpack_bundle,
)
from squall.deps import install_requirements
from squall.exceptions import Conflict, DeployRejected, Throttled
from squall.manifest import Manifest, load_manifest
from squall.provenance import SERVER_DEPLOYER, Provenance, manifest_digest
from squall.runtime.build import BuildLimits
from squall.runtime.instance import InvokeOutcome
from squall.node.core import Node, build_route_table
from squall.settings import MAX_INSTANCES
from squall.store.base import FunctionVersion, NewVersion
from squall.releases import LIVE_ALIAS


@dataclass(frozen=True)
class StagedFunction:
    """A function of the uploaded project, its code copied to its content-addressed folder."""

    name: str
    code_hash: str
    config: dict[str, Any]
    code_path: str
    changed: bool
    next_number: int
    provenance: dict[str, Any] | None = None
    """This function's own provenance (a promoted version keeps its origin); None: the project's."""


@dataclass(frozen=True)
class StagedProject:
    project: str
    functions: list[StagedFunction]
    removed: list[str]
    resources: dict[str, Any]
    provenance: Provenance
    keep_versions: int


def code_hash(tree_hash: str, deps: str | None, config: dict[str, Any]) -> str:
    """A version's identity: its code, its dependencies and its configuration."""
    digest = hashlib.sha256()
    for part in (tree_hash, deps or "", orjson.dumps(config, option=orjson.OPT_SORT_KEYS).decode()):
        digest.update(part.encode() + b"\0")
    return "sha256:" + digest.hexdigest()


def store_code(source: Path, data_dir: Path, manifest_file: Path) -> str:
    """Copy a code folder to `code/<tree hash>` (once; immutable afterwards); returns its path.
    The manifest itself is left out: editing one function's entry must not change the others."""
    source = source.resolve()
    files = [rel for rel in project_files(source) if source / rel != manifest_file]
    tree = hash_tree(source, files)
    relative = f"code/{tree[:40]}"
    target = data_dir / relative
    if not touch_folder(target):
        staging = Path(tempfile.mkdtemp(prefix=".code-", dir=data_dir / "code"))
        for rel in files:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, staging / rel)
        for path in sorted(staging.rglob("*"), reverse=True):
            path.chmod(0o555 if path.is_dir() else 0o444)
        staging.chmod(0o555)
        try:
            staging.rename(target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    return relative


class Deployer:
    """Applies bundles to a node, one deploy at a time."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.data_dir = node.settings.data_dir
        for folder in ("code", "deps", "tmp"):
            (self.data_dir / folder).mkdir(parents=True, exist_ok=True)

    async def deploy(self, bundle: bytes) -> dict[str, Any]:
        async with self.node.deploy_lock:
            staged = await asyncio.to_thread(self.stage, bundle)
            return await self.apply(staged)

    async def apply(self, staged: StagedProject) -> dict[str, Any]:
        """Check, store and switch to a staged project, then clean up; the deploy's answer. The
        caller holds the node's deploy lock."""
        changed = [f for f in staged.functions if f.changed]
        self.check_routes(staged)
        await self.node.sync_secrets()  # secrets set through other nodes, for the checks below
        probes = await self.check_imports(staged.project, changed)
        try:
            provenance = staged.provenance.to_dict()
            versions = await asyncio.to_thread(
                self.node.store.commit_deploy, staged.project,
                [NewVersion(f.name, f.code_hash, f.config, f.code_path, f.provenance or provenance) for f in changed],
                staged.removed, staged.resources)
        except BaseException:
            for key in probes:
                self.node.pool.retire(key)
            raise
        for key in probes - {(v.function, v.number) for v in versions}:
            self.node.pool.retire(key)
        # Serve what the store now says: the new versions, and the unchanged ones this node did
        # not serve yet (deployed through another node whose code was not on this disk until now).
        await self.node.sync_from_store()
        pruned, failure = await asyncio.to_thread(self.housekeeping, staged)
        return self.report(staged, versions, pruned, failure)

    # -- staging (runs in a worker thread) ------------------------------------
    def stage(self, bundle: bytes) -> StagedProject:
        with tempfile.TemporaryDirectory(dir=self.data_dir / "tmp") as tmp:
            root = Path(tmp)
            unpack_bundle(bundle, root, UnpackLimits.from_settings(self.node.settings.server))
            manifest = load_manifest(root, default_name=bundle_project_name(root))
            provenance = Provenance.from_bundle(bundle_provenance(root))
            provenance = replace(provenance, manifest_digest=manifest_digest(manifest.path.read_bytes()),
                                 deployed_by=provenance.deployed_by or SERVER_DEPLOYER)
            deps = install_requirements(root, self.data_dir / "deps", [self.node.settings.hidden_dir],
                                        self.build_limits())
            functions = [self.stage_function(manifest, name, deps) for name in manifest.functions]
            return StagedProject(manifest.name, functions, self.removed_functions(manifest), manifest.resources(),
                                 provenance, manifest.keep_versions)

    def build_limits(self) -> BuildLimits:
        """The limits of a requirements build (the server's SQUALL_BUILD_* settings)."""
        return BuildLimits.from_settings(self.node.settings.server)

    def stage_function(self, manifest: Manifest, name: str, deps: str | None) -> StagedFunction:
        spec = manifest.functions[name]
        config = {**spec.config(), "deps": deps}
        code_path = store_code(manifest.root / spec.code, self.data_dir, manifest.path.resolve())
        digest = code_hash(code_path.rsplit("/", 1)[-1], deps, config)
        latest = self.node.store.latest_version(name)
        if latest is not None and latest.project != manifest.name:
            raise Conflict(f'function "{name}" belongs to project "{latest.project}"; '
                           f'rename it or remove it from that project first')
        serving = self.serving_version(name, latest)
        unchanged = serving is not None and serving.code_hash == digest
        next_number = 1 if latest is None else latest.number + 1
        return StagedFunction(name, digest, config, code_path, not unchanged, next_number)

    def serving_version(self, name: str, latest: FunctionVersion | None) -> FunctionVersion | None:
        """The version all unqualified calls of `name` reach: its `live` alias's (after a
        rollback, not the latest), or None while live splits traffic (a deploy then makes a
        version that takes it all)."""
        live = next((a for a in self.node.store.list_aliases(name) if a.name == LIVE_ALIAS), None)
        if live is None:
            return latest
        if len(live.weights) > 1:
            return None
        return latest if latest is not None and latest.number == live.version else \
            self.node.store.get_version(name, live.version)

    def removed_functions(self, manifest: Manifest) -> list[str]:
        owned = self.node.store.list_functions(project=manifest.name)
        return [f.name for f in owned if f.name not in manifest.functions]

    # -- checks ---------------------------------------------------------------
    def check_routes(self, staged: StagedProject) -> None:
        """Refuse routes that another project's functions already serve."""
        mine = {f.name for f in staged.functions} | set(staged.removed)
        others = [(name, f.version.config) for name, f in self.node.functions.items() if name not in mine]
        try:
            build_route_table([*others, *((f.name, f.config) for f in staged.functions)])
        except ValueError as exc:
            raise Conflict(f"route clash with another project: {exc}") from exc

    async def check_imports(self, project: str, changed: list[StagedFunction]) -> set[tuple[str, int]]:
        """Start one instance of each changed function, numbered as the version it will
        become, so that it serves the first request warm. Any init error rejects the deploy, but
        for a function that cannot start yet because a secret it lists is not set (no process
        is started for it; `warnings()` reports it). Whatever fails, every instance the check
        started is retired before the error leaves: a rejected deploy holds no instance."""
        self.check_room(len(changed))
        probes = [self.node.make_active(_unsaved_version(project, f)) for f in changed]
        keys = {p.spec.key for p in probes}
        try:
            outcomes = await asyncio.gather(*(self.node.pool.prewarm(p.spec) for p in probes), return_exceptions=True)
        except BaseException:  # the deploy itself was cancelled
            self.retire(keys)
            raise
        raised = [o for o in outcomes if isinstance(o, BaseException)]
        # A function that cannot start yet (a secret it lists is not set) is reported, not refused.
        failures = [(p.name, o.error()) for p, o in zip(probes, outcomes)
                    if isinstance(o, InvokeOutcome) and not o.ok and not p.spec.init_error]
        if raised or failures:
            self.retire(keys)
        if raised:
            raise _check_failure(raised, len(probes))
        if failures:
            lines = [f'function "{name}": {err.get("errorType")}: {err.get("errorMessage")}'
                     for name, err in failures]
            raise DeployRejected("deploy rejected, nothing was changed:\n" + "\n".join(lines))
        return keys

    def retire(self, keys: set[tuple[str, int]]) -> None:
        """Stop the check's instances of a rejected deploy (those still starting stop when they are up)."""
        for key in keys:
            self.node.pool.retire(key)

    def check_room(self, changed: int) -> None:
        """Refuse at once a deploy whose import check needs more instances than this node may run."""
        cap = self.node.pool.limits.per_node
        if changed > cap:
            raise DeployRejected(f"deploy rejected, nothing was changed: its import check starts one instance "
                                 f"per changed function ({changed}), and this node runs at most {cap} instances "
                                 f"({MAX_INSTANCES.name}); deploy the project in parts")

    # -- housekeeping (runs in a worker thread, after the deploy is stored) ------
    def housekeeping(self, staged: StagedProject) -> tuple[dict[str, list[int]], str | None]:
        """Prune each function's old versions, then delete the folders no version uses:
        `({function: [pruned numbers]}, None)`, or what failed (the deploy stands regardless)."""
        pruned: dict[str, list[int]] = {}
        try:
            for function in staged.functions:
                numbers = self.node.store.prune_versions(function.name, keep=staged.keep_versions)
                if numbers:
                    pruned[function.name] = numbers
            remove_unused_folders(self.data_dir, self.node.store.code_in_use(),
                                  self.node.settings.code_grace_seconds, time.time())
        except Exception as exc:  # noqa: BLE001 - the deploy is stored: report it, do not fail it
            return pruned, f"housekeeping failed (the deploy is applied): {type(exc).__name__}: {exc}"
        return pruned, None

    # -- the answer -----------------------------------------------------------
    def report(self, staged: StagedProject, versions: list[FunctionVersion], pruned: dict[str, list[int]],
               failure: str | None = None) -> dict[str, Any]:
        created = {v.function: v for v in versions}
        functions = []
        for f in staged.functions:
            active = self.node.functions.get(f.name)
            version = created.get(f.name) or (active.version if active is not None else None)
            routes = [t["http"] for t in f.config.get("triggers", []) if "http" in t]
            functions.append({"name": f.name, "version": version.number if version else None,
                              "code_hash": version.code_hash if version else f.code_hash,
                              "changed": f.changed, "routes": routes})
        warnings = self.warnings(staged) + ([failure] if failure else [])
        return {"project": staged.project, "changed": bool(versions or staged.removed),
                "functions": functions, "removed": staged.removed, "warnings": warnings,
                "provenance": staged.provenance.to_dict(), "pruned": pruned}

    def warnings(self, staged: StagedProject) -> list[str]:
        """What keeps a deployed function from starting although the deploy was accepted: a
        secret it lists that is not set (or does not decrypt); its calls fail until it is."""
        found = []
        for staged_function in staged.functions:
            active = self.node.functions.get(staged_function.name)
            if active is not None and active.spec.init_error is not None:
                found.append(f'function "{active.name}": {active.spec.init_error[1]}')
        return found


def _check_failure(raised: list[BaseException], checked: int) -> BaseException:
    """The error of an import check that could not start every instance: a clear 429 when the node
    had no room (busy with other calls: trying again later may pass), else the first error."""
    throttled = [exc for exc in raised if isinstance(exc, Throttled)]
    if not throttled:
        return raised[0]
    return Throttled(f"deploy rejected, nothing was changed: {len(throttled)} of the {checked} changed functions "
                     f"could not start for their import check ({throttled[0]}); try again when the node is less busy")


def _unsaved_version(project: str, staged: StagedFunction) -> FunctionVersion:
    return FunctionVersion(staged.name, staged.next_number, project, staged.code_hash, staged.config,
                           staged.code_path, 0.0)


STORED_FOLDERS = ("code", "deps")
"""The folders of the data dir that hold content-addressed code and dependency folders."""


def remove_unused_folders(data_dir: Path, in_use: set[str], grace_seconds: float, now: float) -> list[str]:
    """Delete every `code/<hash>` and `deps/<hash>` folder that is not in `in_use` (as
    `code_in_use()` names them) and was last used more than `grace_seconds` ago; returns the
    deleted ones. Hidden folders (a deploy's staging) are left alone. A folder is first
    renamed aside, so a deploy reusing it at that moment (which touches it first, see
    `touch_folder`) either sees it gone and stores it again, or keeps it."""
    removed = []
    for kind in STORED_FOLDERS:
        root = data_dir / kind
        for folder in sorted(root.iterdir()) if root.is_dir() else ():
            relative = f"{kind}/{folder.name}"
            if folder.name.startswith(".") or relative in in_use or not folder.is_dir():
                continue
            if now - folder.stat().st_mtime >= grace_seconds and _delete_folder(folder, grace_seconds, now):
                removed.append(relative)
    return removed


def _delete_folder(folder: Path, grace_seconds: float, now: float) -> bool:
    aside = folder.with_name(f".delete-{folder.name}-{os.getpid()}")
    try:
        folder.rename(aside)
    except FileNotFoundError:
        return False
    if now - aside.stat().st_mtime < grace_seconds:  # touched just before the rename: in use again
        aside.rename(folder)
        return False
    for path in (aside, *(p for p in aside.rglob("*") if p.is_dir() and not p.is_symlink())):
        path.chmod(0o700)
    shutil.rmtree(aside)
    return True
