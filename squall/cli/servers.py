"""Commands that run a node in the foreground: `squall server` and `squall dev`.

The server modules are imported inside the commands so that the rest of the CLI
starts fast and works without them.
"""

from __future__ import annotations

from pathlib import Path

import click

from squall.settings import DATA, HOST, PORT, STORE

host_option = click.option("--host", metavar="HOST", default=HOST.default, show_default=True,
                           envvar=HOST.name, show_envvar=True, help="Interface to listen on.")
port_option = click.option("--port", metavar="PORT", default=PORT.default, show_default=True,
                           type=click.IntRange(0, 65535), envvar=PORT.name, show_envvar=True,
                           help="TCP port to listen on.")


@click.command()
@click.option("--data", "data_dir", required=True, envvar=DATA.name, show_envvar=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Directory of the node's data (SQLite store, code, admin token).")
@port_option
@host_option
@click.option("--store", "store_url", envvar=STORE.name, show_envvar=True, metavar="URL",
              help="Store URL, e.g. postgresql://... (default: SQLite in --data).")
def server(data_dir: Path, port: int, host: str, store_url: str | None) -> None:
    """Run a squall node until Ctrl-C."""
    from squall.server.run import serve

    try:
        serve(data_dir, host, port, store_url)
    except KeyboardInterrupt:
        pass


@click.command()
@click.argument("directory", default=".",
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@port_option
@host_option
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory of the node's data (default: DIRECTORY/.squall).")
def dev(directory: Path, port: int, host: str, data_dir: Path | None) -> None:
    """Run a local node for the project in DIRECTORY (default: .).

    The project is deployed at start and again on every file change; Ctrl-C
    stops the node.
    """
    from squall.server.dev import run_dev

    try:
        run_dev(directory, data_dir or directory / ".squall", host, port)
    except KeyboardInterrupt:
        pass
