"""`squall alias set|ls|rm` and `squall rollback`: move the named pointers at a function's
versions that routes, triggers and qualified calls reach (see docs/releases.md)."""

from __future__ import annotations

import time

import click

from squall.cli.options import client_from, json_option
from squall.cli.output import print_json, print_message, print_table, relative_time
from squall.releases import LIVE_ALIAS


def parse_weights(text: str) -> dict[int, int]:
    """`7=90,8=10` as {7: 90, 8: 10}; a usage error (exit 2) that names the bad part otherwise."""
    weights: dict[int, int] = {}
    for part in text.split(","):
        number, sep, weight = part.strip().partition("=")
        if not sep or not number.strip().isdigit() or not weight.strip().isdigit():
            raise click.BadParameter(f"{part.strip()!r} is not VERSION=PERCENT (as in 7=90,8=10)",
                                     param_hint="--weights")
        if int(number) in weights:
            raise click.BadParameter(f"version {number.strip()} is given twice", param_hint="--weights")
        weights[int(number)] = int(weight)
    return weights  # the server checks the rest (a sum of 100, existing versions): one rule, one place


def shown_weights(weights: dict[str, int]) -> str:
    if len(weights) == 1:
        return next(iter(weights))
    return ", ".join(f"{number} ({weight}%)" for number, weight in weights.items())


@click.group()
def alias() -> None:
    """Aliases: named pointers at versions of a function (live is what unqualified calls reach)."""


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", type=click.IntRange(min=1), required=False)
@click.option("--weights", metavar="V=P,...", help="Split calls between versions by percentage, "
              "as in 7=90,8=10 (they must sum to 100).")
@json_option
@click.pass_context
def set_alias(ctx: click.Context, name: str, alias_name: str, version: int | None, weights: str | None,
              as_json: bool) -> None:
    """Point ALIAS of function NAME at VERSION, or split it with --weights.

    Calls of NAME:ALIAS (routes and triggers that name the alias, `squall invoke NAME:ALIAS`,
    boto3's Qualifier) go to the new version at once; nothing is rebuilt. Setting `live`
    moves what unqualified calls reach.
    """
    if (version is None) == (weights is None):
        raise click.UsageError("give VERSION or --weights (not both)")
    split = parse_weights(weights) if weights is not None else {version or 0: 100}
    moved = client_from(ctx).set_alias(name, alias_name, split)
    if as_json:
        print_json(moved)
        return
    print_message(f"{name}:{alias_name} -> {shown_weights(moved['weights'])}")


@alias.command("ls")
@click.argument("name")
@json_option
@click.pass_context
def list_aliases(ctx: click.Context, name: str, as_json: bool) -> None:
    """List the aliases of function NAME and the versions they point at."""
    aliases = client_from(ctx).list_aliases(name)
    if as_json:
        print_json(aliases)
        return
    now = time.time()
    print_table(("ALIAS", "VERSIONS", "MOVED"),
                ((a["name"], shown_weights(a["weights"]), relative_time(a["updated_at"], now)) for a in aliases))


@alias.command("rm")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.pass_context
def remove_alias(ctx: click.Context, name: str, alias_name: str) -> None:
    """Remove ALIAS of function NAME (`live` cannot be removed)."""
    client_from(ctx).delete_alias(name, alias_name)
    print_message(f"removed alias {name}:{alias_name}")


@click.command()
@click.argument("name")
@click.option("--alias", "alias_name", default=LIVE_ALIAS, show_default=True, help="The alias to move back.")
@click.option("--to", "to", type=click.IntRange(min=1), help="The version to go back to "
              "(default: the alias's previous version).")
@json_option
@click.pass_context
def rollback(ctx: click.Context, name: str, alias_name: str, to: int | None, as_json: bool) -> None:
    """Move an alias of function NAME back to an earlier version, at once (nothing is rebuilt).

    Without --to it goes back to the alias's previous state: a canary split of 7=90,8=10 goes
    back to 7, and a second rollback goes further back.
    """
    moved = client_from(ctx).rollback(name, alias=alias_name, to=to)
    if as_json:
        print_json(moved)
        return
    print_message(f"{name}:{alias_name} rolled back: {shown_weights(moved['from'])} -> {shown_weights(moved['to'])}")
