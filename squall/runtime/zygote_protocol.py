"""The messages between the node and a zygote (squall/runtime/zygote.py), on one
SOCK_SEQPACKET socket: one frame of squall/runtime/protocol.py per packet, no marker.

  node -> zygote   Spawn        spawn         with two fds attached (SCM_RIGHTS): the new
                                              instance's stdin (read end) and stdout (write end)
  zygote -> node   Spawned      spawned       the instance of request `request` runs as `pid`
                   SpawnFailed  spawn_failed  it could not be started, and why
                   Exited       exited        a child ended (whenever it does)

Apart from the instance protocol so that an instance started by a fresh interpreter does
not define these classes (each costs about a millisecond at import).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from squall.runtime.protocol import Message, decode, split_frame, wire_message

MAX_PACKET = 65536
"""The size of the buffer a packet is read into (a message is under 100 bytes)."""


@wire_message
@dataclass(frozen=True, slots=True)
class Spawn(Message):
    """Start an instance on the two fds that come with this message."""

    TAG: ClassVar[str] = "spawn"
    request: int
    """Numbers the request; the answer carries it back."""


@wire_message
@dataclass(frozen=True, slots=True)
class Spawned(Message):
    TAG: ClassVar[str] = "spawned"
    request: int
    pid: int
    """The instance's pid on the host."""


@wire_message
@dataclass(frozen=True, slots=True)
class SpawnFailed(Message):
    TAG: ClassVar[str] = "spawn_failed"
    request: int
    error: str


@wire_message
@dataclass(frozen=True, slots=True)
class Exited(Message):
    """A child of the zygote ended (reaped by it)."""

    TAG: ClassVar[str] = "exited"
    pid: int
    status: int
    """The waitpid status."""
    oom: bool
    """The kernel killed it for exceeding its memory limit."""


ZygoteReport = Spawned | SpawnFailed | Exited
TO_ZYGOTE: dict[str, type[Spawn]] = {Spawn.TAG: Spawn}
FROM_ZYGOTE: dict[str, type[ZygoteReport]] = {m.TAG: m for m in (Spawned, SpawnFailed, Exited)}


def request_from_node(packet: bytes) -> Spawn:
    """The message of a packet the node sent (read by the zygote)."""
    return decode(*split_frame(packet), TO_ZYGOTE, "the node")


def report_from_zygote(packet: bytes) -> ZygoteReport:
    """The message of a packet a zygote sent (read by the node)."""
    return decode(*split_frame(packet), FROM_ZYGOTE, "a zygote")
