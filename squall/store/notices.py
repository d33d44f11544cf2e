"""The notices part of the Store contract: how a write tells the other nodes on the same
store, at once, that there is something for them to look at.

A notice is a hint ("look now"), never data: its topic says where to look, and whoever
gets one reads the store as it would have on its next poll. Topics:

    events        an event was stored (or handed back) that any node's dispatcher may claim
    queue:NAME    messages of the queue NAME became visible
    deploy        a deploy was committed: functions, versions, the project's resources
    secrets       a secret was set or removed
    resources     a topic, queue, bucket or table was made, changed or removed by the API
    *             (RESYNC) not a write: the listener was reconnected and may have missed
                  notices meanwhile; look at everything

What a backend guarantees:
* the transaction that makes a change sends its notice: the notice is delivered if and
  only if that transaction commits, and only after it has (a reader woken by it sees the
  change);
* listeners get the notices of every other store object on the same data (other nodes,
  other processes), each distinct topic of a burst once; a store object's own notices
  are not given to its own listeners (its process woke itself already);
* a listener whose connection breaks reconnects by itself and then delivers RESYNC.
Delivery is best effort beyond that (a listener can be cut off for a while), so whoever
waits for notices also looks at the store now and then: the polls stay as a safety net.

SQLite keeps one node per file, whose wake-ups stay in its process: notices are not
sent there, and `listen` delivers nothing. PostgreSQL sends them with NOTIFY on a channel
private to the store's schema (squall/store/pg_notices.py).
"""

from __future__ import annotations

from collections.abc import Callable

EVENTS = "events"
DEPLOY = "deploy"
SECRETS = "secrets"
RESOURCES = "resources"
RESYNC = "*"
QUEUE_PREFIX = "queue:"

NoticeCallback = Callable[[str], None]
"""`callback(topic)`, called on the listener's own thread: hand the work to your event loop
(`loop.call_soon_threadsafe`) rather than doing it there."""


def queue_topic(queue: str) -> str:
    """The topic of notices about the queue `queue`."""
    return QUEUE_PREFIX + queue


class Listener:
    """A running subscription to a store's notices (as `listen` returns it)."""

    def close(self) -> None:
        """Stop listening and release the connection; no callback runs after this returns."""


class NoticeChannel:
    """The notice methods of a store (see the module docstring). The defaults are SQLite's:
    nothing leaves the process."""

    notices_reach_other_nodes = False
    """True when notices travel between nodes, so that waiting for them can replace short
    polls (the polls can then be long safety nets)."""

    def notify(self, topic: str) -> None:
        """Send a notice of `topic` in a transaction of its own (the store's writes send
        theirs inside their own transactions)."""

    def listen(self, callback: NoticeCallback) -> Listener:
        """Start delivering the notices of other store objects to `callback` on a thread of
        the listener's own; returns once listening (a notice committed afterwards is
        delivered). Raises StoreError when the store cannot be reached."""
        return Listener()
