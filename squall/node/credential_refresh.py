"""Fresh function credentials (squall/credentials.py) before the old ones expire: every
`refresh_interval()` seconds the node rebuilds its functions' instance specs, whose
environments carry newly issued credentials, and stops the idle instances that hold the old
ones (busy ones finish their call first)."""

from __future__ import annotations

import asyncio

from squall.credentials import CREDENTIAL_LIFETIME
from squall.node.core import Node


def refresh_interval(seconds: float) -> float:
    """The server's SQUALL_CREDENTIAL_REFRESH_SECONDS (CREDENTIAL_REFRESH unless set, shorter in
    tests), kept well under the lifetime."""
    return min(max(seconds, 0.5), CREDENTIAL_LIFETIME / 2)


async def refresh_credentials(node: Node) -> None:
    async with node.deploy_lock:
        node.renew(list(node.functions))


async def refresh_credentials_forever(node: Node) -> None:
    interval = refresh_interval(node.settings.server.credential_refresh_seconds)
    while True:
        await asyncio.sleep(interval)
        await refresh_credentials(node)
