"""Commands that work on a project folder: `squall init` and `squall deploy`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from squall.cli.options import client_from, json_option
from squall.cli.output import print_json, print_message, print_table, print_warning
from squall.scaffold import project_name_for, write_project

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
@json_option
@click.pass_context
def deploy(ctx: click.Context, directory: Path, as_json: bool) -> None:
    """Deploy the project in DIRECTORY (default: .) to the server.

    Prints each function's new version and routes, or that nothing changed.
    """
    from squall.bundle import pack_project

    bundle = pack_project(directory)
    result = client_from(ctx).deploy(bundle)
    if as_json:
        print_json(result)
        return
    print_deploy_result(result)


def print_deploy_result(result: dict[str, Any]) -> None:
    """The table of deployed functions, or the no-changes line; then removed ones."""
    functions = result.get("functions", [])
    removed = result.get("removed", [])
    for warning in result.get("warnings", []):
        print_warning(warning)
    if not result.get("changed"):
        print_message(NO_CHANGES)
        return
    print_message(f"Deployed project {result.get('project', '?')}:")
    rows = [(str(fn["name"]), str(fn["version"]), "yes" if fn.get("changed") else "no",
             "\n".join(fn.get("routes", [])) or "-") for fn in functions]
    print_table(["NAME", "VERSION", "CHANGED", "ROUTES"], rows)
    if removed:
        print_message(f"Removed: {', '.join(removed)}")
