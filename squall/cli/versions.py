"""`squall versions NAME` and `squall diff NAME A B`: a function's stored versions, where each
came from (provenance) and which aliases point at it, and what changed between two of them
(see docs/releases.md)."""

from __future__ import annotations

import time
from typing import Any

import click

from squall.cli.options import client_from, json_option
from squall.cli.output import print_json, print_message, print_table, relative_time

MESSAGE_WIDTH = 50
DIFF_STYLES = (("+++", "bold"), ("---", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"))


@click.command()
@click.argument("name")
@json_option
@click.pass_context
def versions(ctx: click.Context, name: str, as_json: bool) -> None:
    """List the stored versions of function NAME, newest first.

    Each row says where the version came from: the git commit it was deployed
    from (marked `-dirty` when the project folder had uncommitted changes),
    branch, author and commit message, and who deployed it. ALIASES names the
    aliases that point at the version (with their share of traffic when split);
    `live` is what unqualified calls reach. Exits with 1 for an unknown NAME.
    """
    history = client_from(ctx).list_versions(name)
    if as_json:
        print_json(history)
        return
    now = time.time()
    print_table(["VERSION", "CREATED", "CODE", "COMMIT", "BRANCH", "AUTHOR", "MESSAGE", "DEPLOYED BY", "ALIASES"],
                [version_row(v, now) for v in history.get("versions", [])])


def version_row(version: dict[str, Any], now: float) -> tuple[str, ...]:
    """One row of `squall versions`."""
    origin = version.get("provenance") or {}
    return (str(version["number"]), relative_time(float(version["created_at"]), now),
            str(version.get("code_hash", "")).removeprefix("sha256:")[:12], commit_label(origin),
            origin.get("branch") or "-", origin.get("author") or "-", shorten(origin.get("message") or "-"),
            origin.get("deployed_by") or "-", alias_label(version.get("aliases") or {}))


def commit_label(origin: dict[str, Any]) -> str:
    """`1a2b3c4d` (short sha), `1a2b3c4d-dirty` with uncommitted changes, `-` without git."""
    commit = origin.get("commit")
    if not commit:
        return "-"
    return commit[:8] + ("-dirty" if origin.get("dirty") else "")


def alias_label(aliases: dict[str, int]) -> str:
    return ", ".join(name if percent == 100 else f"{name} ({percent}%)" for name, percent in sorted(aliases.items())) \
        or "-"


def shorten(text: str, width: int = MESSAGE_WIDTH) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


@click.command()
@click.argument("name")
@click.argument("a", type=click.IntRange(min=1))
@click.argument("b", type=click.IntRange(min=1))
@click.option("--stat", is_flag=True, help="Print only which files changed and how many lines.")
@json_option
@click.pass_context
def diff(ctx: click.Context, name: str, a: int, b: int, stat: bool, as_json: bool) -> None:
    """Show how version B of function NAME differs from version A.

    First the configuration (every key of the function, dependencies included)
    as a unified diff of its JSON, then each changed file of the code as a
    unified diff; added and removed files are shown whole, binary files are
    said to differ. Exits with 1 when NAME or a version is unknown.
    """
    changes = client_from(ctx).diff_versions(name, a, b)
    if as_json:
        print_json(changes)
        return
    files = changes.get("files", [])
    if not changes["config"]["changed"] and not files:
        print_message(f"{name}: versions {a} and {b} have the same code and configuration.")
        return
    if stat:
        print_stat(changes)
        return
    if changes["config"]["changed"]:
        print_diff(changes["config"]["diff"])
    for change in files:
        if change.get("diff"):
            print_diff(change["diff"])
        else:
            print_message(f"{change['path']}: {describe_file(change, a, b)}", style="bold")


def describe_file(change: dict[str, Any], a: int, b: int) -> str:
    """How a file without a line diff differs."""
    why = "binary files differ" if change.get("binary") else \
        "files differ (too large to show)" if change.get("too_large") else "files differ"
    if change["status"] == "added":
        return f"added in v{b} ({why})"
    if change["status"] == "removed":
        return f"removed in v{b} ({why})"
    return why


def print_diff(text: str) -> None:
    for line in text.splitlines():
        style = next((s for prefix, s in DIFF_STYLES if line.startswith(prefix)), None)
        print_message(line, style=style)


def print_stat(changes: dict[str, Any]) -> None:
    rows = []
    config = changes["config"]
    if config["changed"]:
        rows.append(("(configuration)", "modified", str(config.get("insertions", 0)), str(config.get("deletions", 0))))
    for change in changes.get("files", []):
        rows.append((change["path"], change["status"] + (" (binary)" if change.get("binary") else ""),
                     str(change.get("insertions", 0)), str(change.get("deletions", 0))))
    print_table(["FILE", "CHANGE", "+", "-"], rows)
    summary = changes.get("summary", {})
    print_message(f"{summary.get('files_changed', 0)} file(s) changed, {summary.get('insertions', 0)} insertion(s), "
                  f"{summary.get('deletions', 0)} deletion(s)")
