"""Promoting a stage: deploy to one stage exactly the versions another one runs.

For every project of the source stage, each of its functions gets, in the target stage, the
code, dependencies and configuration of the version the source's `live` alias sends the most
traffic to (its code and dependency folders are copied into the target's data dir), as one
deploy of that project: checked to import, stored in one transaction, switched at once. The
target's own stage environment and secrets apply; functions of those projects that the source
does not have are removed from the target. Each promoted version records its origin.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from squall.exceptions import BadInput
from squall.provenance import Provenance
from squall.node.deploy import Deployer, StagedFunction, StagedProject
from squall.node.core import Node
from squall.store.base import BaseStore, FunctionVersion
from squall.store.resources import RESOURCE_KINDS

DEFAULT_KEEP_VERSIONS = 20


async def promote(source: Node, target: Node) -> dict[str, Any]:
    """Deploy to `target` what `source` runs; the per-function answer of every project."""
    projects = sorted({f.version.project for f in source.functions.values()})
    if not projects:
        raise BadInput(f"stage {source.settings.stage} runs no functions: there is nothing to promote")
    deployer = Deployer(target)
    functions: list[dict[str, Any]] = []
    removed: list[str] = []
    async with target.deploy_lock:
        for project in projects:
            staged = await asyncio.to_thread(staged_from, source, deployer, project)
            report = await deployer.apply(staged)
            from_versions = {f.name: f.code_hash for f in staged.functions}
            for function in report["functions"]:
                origin = source.functions[function["name"]].version
                functions.append({**function, "project": project, "from_version": origin.number,
                                  "same_code": function["code_hash"] == from_versions[function["name"]]})
            removed += report["removed"]
    return {"from": source.settings.stage, "to": target.settings.stage, "functions": functions,
            "removed": removed, "changed": any(f["changed"] for f in functions) or bool(removed)}


def staged_from(source: Node, deployer: Deployer, project: str) -> StagedProject:
    """`project` as `source` runs it, staged for the deployer's node (runs in a worker thread)."""
    target = deployer.node
    running = sorted((f.version for f in source.functions.values() if f.version.project == project),
                     key=lambda v: v.function)
    functions = [stage_version(source, deployer, version) for version in running]
    names = {v.function for v in running}
    removed = [f.name for f in target.store.list_functions(project=project) if f.name not in names]
    provenance = Provenance(deployed_by=f"promote from {source.settings.stage}")
    return StagedProject(project, functions, removed, project_resources(source.store, project), provenance,
                         DEFAULT_KEEP_VERSIONS)


def stage_version(source: Node, deployer: Deployer, version: FunctionVersion) -> StagedFunction:
    """One running version of `source`, its folders copied to the deployer's node's data dir;
    changed unless that node's `live` runs the same code already."""
    target = deployer.node
    copy_folder(source.settings.data_dir, target.settings.data_dir, version.code_path)
    deps = version.config.get("deps")
    if deps:
        copy_folder(source.settings.data_dir, target.settings.data_dir, f"deps/{deps}")
    latest = target.store.latest_version(version.function)
    if latest is not None and latest.project != version.project:
        raise BadInput(f'function "{version.function}" belongs to project "{latest.project}" in stage '
                       f'{target.settings.stage}')
    serving = deployer.serving_version(version.function, latest)
    unchanged = serving is not None and serving.code_hash == version.code_hash
    provenance = {**version.provenance, "promoted_from": source.settings.stage, "source_version": version.number}
    return StagedFunction(version.function, version.code_hash, version.config, version.code_path, not unchanged,
                          1 if latest is None else latest.number + 1, provenance)


def copy_folder(source_dir: Path, target_dir: Path, relative: str) -> None:
    """Copy a content-addressed folder (`code/<hash>`, `deps/<hash>`) unless the target has it."""
    target = target_dir / relative
    if target.is_dir():
        return
    staging = target.with_name(f".promote-{target.name}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source_dir / relative, staging, symlinks=True)
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


def project_resources(store: BaseStore, project: str) -> dict[str, Any]:
    """`project`'s topics, queues, buckets and tables as `Manifest.resources()` gives them."""
    found: dict[str, Any] = {f"{kind}s": {} for kind in RESOURCE_KINDS}
    for resource in store.list_resources():
        if resource.project == project:
            found[f"{resource.kind}s"][resource.name] = resource.config
    return found
