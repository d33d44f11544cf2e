"""Commands that work on a project folder: `squall init` and `squall deploy`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from squall.cli.options import client_from, json_option
from squall.cli.output import print_json, print_message, print_table, print_warning
from squall.cli.versions import commit_label
from squall.client import SquallClient
from squall.scaffold import project_name_for, write_project
from squall.manifest.stages import DEFAULT_STAGE
from squall.settings import ALLOW_DIRTY

NO_CHANGES = "No changes: every function is already at its latest version."

@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", metavar="NAME", help="Project name (default: made from DIRECTORY's name).")
@click.option("--force", is_flag=True, help="Write into DIRECTORY even if it is not empty.")
def init(directory: Path, name: str | None, force: bool) -> None:
    """Create a runnable project in DIRECTORY.

    The project has one HTTP function (GET and POST /hello) and its pytest test.

    Refuses a DIRECTORY that is not empty unless --force is given.
    """
    written = write_project(directory, name or project_name_for(directory), force=force)
    print_message(f"Created project in {directory}:")
    for path in written:
        print_message(f"  {path}")
    print_message("\nNext:")
    print_message(f"  squall dev {directory}")
    print_message("  curl 'http://127.0.0.1:8080/hello?name=you'")


@click.command()
@click.argument("directory", default=".",
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--ref", metavar="REF",
              help="Deploy the project as committed in git REF (a commit, branch or tag), not the files on disk.")
@click.option("--allow-dirty", is_flag=True, envvar=ALLOW_DIRTY.name, show_envvar=True,
              help="Deploy the files on disk although the project folder has uncommitted git changes.")
@json_option
@click.pass_context
def deploy(ctx: click.Context, directory: Path, ref: str | None, allow_dirty: bool, as_json: bool) -> None:
    """Deploy the project in DIRECTORY (default: .) to the server.

    Prints each function's new version and routes, or that nothing changed, then
    the old versions that housekeeping deleted (squall.yaml's keep_versions).

    Each new version records where it came from: the git commit, branch, author
    and message when DIRECTORY is in a git repository, and who deployed
    (SQUALL_DEPLOYER, else user@host). When the project folder has uncommitted
    changes, the deploy is refused (exit 2): commit them, deploy a commit with
    --ref, or pass --allow-dirty. With --ref, the project folder as committed in
    REF is deployed, whatever the files on disk hold.
    """
    from squall.provenance import pack_deploy

    packed = pack_deploy(directory, ref=ref, allow_dirty=allow_dirty)
    client = client_from(ctx)
    prepare_stages(client, packed.stages)
    result = client.deploy(packed.bundle)
    if as_json:
        print_json(result)
        return
    print_deploy_result(result)


def prepare_stages(client: SquallClient, declared: dict[str, dict[str, Any]]) -> None:
    """Create or update every stage squall.yaml declares, and the stage deployed to (with the
    default settings when squall.yaml does not declare it) if the server does not have it yet."""
    for name, settings in declared.items():
        client.put_stage(name, settings)
    target = client.stage
    if (target and target != DEFAULT_STAGE and target not in declared
            and target not in {s["name"] for s in client.list_stages()}):
        client.put_stage(target, {})


def print_deploy_result(result: dict[str, Any]) -> None:
    """The table of deployed functions, or the no-changes line; then removed ones, where the
    deploy came from, and the versions pruned."""
    functions = result.get("functions", [])
    removed = result.get("removed", [])
    for warning in result.get("warnings", []):
        print_warning(warning)
    if not result.get("changed"):
        print_message(NO_CHANGES)
    else:
        print_message(f"Deployed project {result.get('project', '?')}{origin(result.get('provenance') or {})}:")
        rows = [(str(fn["name"]), str(fn["version"]), "yes" if fn.get("changed") else "no",
                 "\n".join(fn.get("routes", [])) or "-") for fn in functions]
        print_table(["NAME", "VERSION", "CHANGED", "ROUTES"], rows)
        if removed:
            print_message(f"Removed: {', '.join(removed)}")
    pruned = result.get("pruned") or {}
    if pruned:
        listed = "; ".join(f"{name} {', '.join(map(str, numbers))}" for name, numbers in sorted(pruned.items()))
        print_message(f"Pruned old versions: {listed}")


def origin(provenance: dict[str, Any]) -> str:
    """` from 1a2b3c4d (main)`, with `-dirty` for uncommitted changes; empty without git."""
    if not provenance.get("commit"):
        return ""
    branch = f" ({provenance['branch']})" if provenance.get("branch") else ""
    return f" from {commit_label(provenance)}{branch}"
