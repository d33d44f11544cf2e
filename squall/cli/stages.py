"""`squall stages` and `squall promote`: the server's stages (separate namespaces; see
docs/releases.md) and moving exactly what one runs to another."""

from __future__ import annotations

import click

from squall.cli.options import client_from, json_option
from squall.cli.output import print_json, print_message, print_table


@click.command()
@json_option
@click.pass_context
def stages(ctx: click.Context, as_json: bool) -> None:
    """List the server's stages: how requests reach each, and how many functions it has."""
    found = client_from(ctx).list_stages()
    if as_json:
        print_json(found)
        return
    print_table(("STAGE", "REACHED BY", "ENV", "FUNCTIONS"),
                ((s["name"], reached_by(s), ", ".join(s.get("env") or []) or "-", str(s.get("functions", 0)))
                 for s in found))


def reached_by(stage: dict[str, object]) -> str:
    if stage.get("host"):
        return f"host {stage['host']}"
    if stage.get("path_prefix"):
        return f"path {stage['path_prefix']}/..."
    return "/ (root)"


@click.command()
@click.argument("source")
@click.argument("target")
@json_option
@click.pass_context
def promote(ctx: click.Context, source: str, target: str, as_json: bool) -> None:
    """Deploy to stage TARGET exactly the versions stage SOURCE runs.

    Each function of SOURCE's projects gets, in TARGET, the code and configuration of the
    version SOURCE's live alias points at (TARGET's own stage env and secrets apply);
    functions TARGET has in those projects that SOURCE does not are removed. The stage
    `default` is the server's root.
    """
    result = client_from(ctx).promote(source, target)
    if as_json:
        print_json(result)
        return
    changed = [f for f in result.get("functions", []) if f.get("changed")]
    if not changed and not result.get("removed"):
        print_message(f"{target} already runs what {source} runs")
        return
    print_message(f"Promoted {source} -> {target}:")
    print_table(("NAME", f"{source.upper()} VERSION", f"{target.upper()} VERSION", "CHANGED"),
                ((f["name"], str(f["from_version"]), str(f["version"]), "yes" if f.get("changed") else "no")
                 for f in result.get("functions", [])))
    if result.get("removed"):
        print_message(f"Removed from {target}: {', '.join(result['removed'])}")
