"""docs/cli.md is generated from the click commands; it must match them and cover them all."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import click

from squall.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent


def load_generator() -> ModuleType:
    """scripts/gen_cli_docs.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def all_commands() -> list[tuple[str, click.Command]]:
    return [(title, ctx.command) for title, ctx in load_generator().walk(cli)]


def test_committed_cli_reference_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == load_generator().render(), \
        "docs/cli.md is out of date: run python scripts/gen_cli_docs.py"


def test_every_command_and_option_has_help() -> None:
    for title, command in all_commands():
        assert (command.help or "").strip(), f"`{title}` has no help text"
        for param in command.params:
            if isinstance(param, click.Option):
                assert (param.help or "").strip(), f"`{title} {param.opts[0]}` has no help"


def test_every_command_is_in_the_reference() -> None:
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for title, _ in all_commands():
        assert f"## `{title}`" in committed
    assert {"init", "dev", "server", "deploy", "invoke", "ls", "logs"} <= set(cli.commands)
