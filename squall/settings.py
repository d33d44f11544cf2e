"""Every SQUALL_* environment setting, declared once: its name, type, default and what it does.

Three kinds of readers:

    server    `squall server` and `squall dev` read their settings once at start
              (`Settings.from_environ`) and hand the values down to the node, the pool,
              the launcher, the events, the HTTP doors, the logs, bundles and builds
    CLI       the `squall` command (click reads its options' variables) and SquallClient
    instance  squall sets these in every function instance, for squall.sdk and function code

A process that gets its environment from its parent (a zygote, an instance) reads what the
parent set through the declaration too (`Setting.read()`), never with a bare lookup.

Each type has one parser (`Kind`); a bad value raises SettingError naming the variable and
the value. A variable that is unset or blank takes the default. docs/settings.md is generated
from these declarations (scripts/gen_settings_docs.py). This module imports nothing of squall
but its exceptions, so that anything (the SDK, the zygote) may read its settings here.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, Generic, TypeVar

from squall.exceptions import SettingError

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

PREFIX = "SQUALL_"


class Kind(Generic[T_co]):
    """A type of setting: `parse` reads a value from its text (ValueError when it is not one),
    `expected` says what a good value looks like (in errors), `name` is the type in the docs,
    and `show` writes a value as the environment holds it (docs' defaults, children's env)."""

    def __init__(self, name: str, expected: str, parse: Callable[[str], T_co],
                 show: Callable[[Any], str] = str) -> None:
        self.name, self.expected, self.parse, self.show = name, expected, parse, show


def _whole(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise ValueError(text)
    return value


def _not_negative(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise ValueError(text)
    return value


MAX_UID = 2**32 - 2
"""The largest uid a process may take (2**32 - 1 means "no change" to setuid)."""


def _uid(text: str) -> int:
    value = _whole(text)
    if value > MAX_UID:
        raise ValueError(text)
    return value


def _uid_range(text: str) -> tuple[int, int]:
    first, dash, last = text.partition("-")
    if not dash:
        raise ValueError(text)
    low, high = _uid(first.strip()), _uid(last.strip())
    if low > high:
        raise ValueError(text)
    return low, high


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(text)
    return value


TRUE, FALSE = ("1", "true", "t", "yes", "y", "on"), ("0", "false", "f", "no", "n", "off")
"""What click (which reads the CLI's flags) takes as on and off."""


def _bool(text: str) -> bool:
    if text.lower() in TRUE:
        return True
    if text.lower() in FALSE:
        return False
    raise ValueError(text)


URL_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def _url(text: str) -> str:
    if not URL_SHAPE.fullmatch(text):
        raise ValueError(text)
    return text


def _modules(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not all(part.isidentifier() for name in names for part in name.split(".")):
        raise ValueError(text)
    return names


def _number_text(value: float) -> str:
    return f"{value:g}"


COUNT = Kind("count", "a whole number above 0", _whole)
BYTES = Kind("bytes", "a whole number of bytes above 0", _whole)
WHOLE_MB = Kind("MB", "a whole number of MB above 0", _whole)
MB = Kind("MB, fractions too", "a number of MB above 0", _positive, _number_text)
DAYS = Kind("days", "a number of days above 0", _positive, _number_text)
SECONDS = Kind("seconds", "a number of seconds above 0", _positive, _number_text)
SECONDS_OR_ZERO = Kind("seconds or 0", "a number of seconds (0 or more)", _not_negative, _number_text)
UID_NUMBER = Kind("uid", f"a uid from 1 to {MAX_UID}", _uid)
UIDS = Kind("uid range", "a range of uids FIRST-LAST such as 100000-165535", _uid_range,
                 lambda value: f"{value[0]}-{value[1]}")
TCP_PORT = Kind("port", "a TCP port from 0 to 65535", _port)
BOOL = Kind("bool", f"one of {', '.join(TRUE)} (on) or {', '.join(FALSE)} (off)", _bool,
            lambda value: "1" if value else "0")
ADDRESS = Kind("URL", "a URL such as http://127.0.0.1:8080", _url)
PATH = Kind("path", "a path", Path)
TEXT = Kind("text", "text", str)
MODULES = Kind("modules", "comma-separated module names such as json,boto3", _modules, ",".join)


class Reader(str, Enum):
    """Who reads a setting (the docs' "read by")."""

    SERVER = "server"
    CLI = "CLI"
    INSTANCE = "instance"


SERVER, CLI, INSTANCE = Reader.SERVER, Reader.CLI, Reader.INSTANCE


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable: `default` when unset or blank (`unset` says what that means
    in the docs when the default is None); `secret` ones never show their value."""

    name: str
    kind: Kind[T]
    default: T
    doc: str
    topic: str
    readers: tuple[Reader, ...] = (SERVER,)
    unset: str = ""
    secret: bool = False

    def read(self, environ: Mapping[str, str] | None = None) -> T:
        """The value in `environ` (this process's environment when None). Raises SettingError."""
        text = (os.environ if environ is None else environ).get(self.name, "").strip()
        if not text:
            return self.default
        try:
            return self.kind.parse(text)
        except ValueError:
            shown = "(its value not shown)" if self.secret else f"={text!r}"
            raise SettingError(self.name, f"{self.name}{shown} is not {self.kind.expected}; "
                                          f"unset it for the default ({self.shown_default})") from None

    def text(self, value: T) -> str:
        """`value` as this variable holds it (for a child process's environment)."""
        return self.kind.show(value)

    @property
    def shown_default(self) -> str:
        if self.default is None or self.default == ():
            return self.unset or "none"
        return self.text(self.default)


# -- the declarations -------------------------------------------------------------------
# Each server setting is also a field of `Settings` below, named after it.

NODE = "The node"
TOKEN: Setting[str | None] = Setting(
    "SQUALL_TOKEN", TEXT, None, "The admin token: the server takes it, the CLI and SquallClient send it.",
    NODE, (SERVER, CLI), unset="the server makes one and keeps it in DATA/admin-token", secret=True)
SECRET_KEY: Setting[str | None] = Setting(
    "SQUALL_SECRET_KEY", TEXT, None, "The key that encrypts stored secrets (32 random bytes in base64); "
    "nodes sharing a PostgreSQL store need the same one.", NODE,
    unset="made and kept in DATA/secret-key", secret=True)
REGION = Setting("SQUALL_REGION", TEXT, "us-east-1", "The AWS region of the node's ARNs and of its "
                 "instances' AWS_REGION.", NODE)
NODE_ID: Setting[str | None] = Setting(
    "SQUALL_NODE_ID", TEXT, None, "This node's name in event leases (keep it across restarts).", NODE,
    unset="the host name and a digest of the data dir")
CODE_GRACE_SECONDS = Setting(
    "SQUALL_CODE_GRACE_SECONDS", SECONDS_OR_ZERO, 600.0, "How long an unused code or dependency folder is "
    "kept before housekeeping deletes it.", NODE)
CREDENTIAL_REFRESH_SECONDS = Setting(
    "SQUALL_CREDENTIAL_REFRESH_SECONDS", SECONDS, 4 * 3600.0, "How often instances get a fresh function "
    "credential (held within 0.5 s and half the credential's 12 h lifetime).", NODE)

INSTANCES = "Instances"
MAX_INSTANCES = Setting("SQUALL_MAX_INSTANCES", COUNT, 512, "The most instances one node runs at once, "
                        "all functions together.", INSTANCES)
UID_RANGE = Setting(
    "SQUALL_UID_RANGE", UIDS, (100000, 165535), "The uids the functions' instances run as, one per "
    "function; nodes sharing a host need disjoint ranges.", INSTANCES)
ZYGOTE_PRELOAD = Setting(
    "SQUALL_ZYGOTE_PRELOAD", MODULES, (), "Modules every zygote imports before it forks instances, "
    "besides its profile's (the node passes each zygote its whole list in this variable).", INSTANCES,
    unset="none: each profile's own")

DOORS = "HTTP connections and bodies"
MAX_HEADER_BYTES = Setting("SQUALL_MAX_HEADER_BYTES", BYTES, 64 * 1024, "The largest request line and "
                           "headers (431 past it).", DOORS)
MAX_HEADERS = Setting("SQUALL_MAX_HEADERS", COUNT, 100, "The most headers of one request (431 past it).",
                      DOORS)
HEADER_TIMEOUT = Setting("SQUALL_HEADER_TIMEOUT", SECONDS, 10.0, "The time a client has to send the "
                         "request line and headers (408 past it).", DOORS)
BODY_IDLE_TIMEOUT = Setting("SQUALL_BODY_IDLE_TIMEOUT", SECONDS, 30.0, "How long a request body may "
                            "stall before the connection is closed.", DOORS)
MAX_CONNECTIONS = Setting("SQUALL_MAX_CONNECTIONS", COUNT, 10000, "The most open connections in all "
                          "(and at most the open-file limit minus 512).", DOORS)
MAX_CONNECTIONS_PER_CLIENT = Setting(
    "SQUALL_MAX_CONNECTIONS_PER_CLIENT", COUNT, 256, "The most open connections from one client address "
    "(loopback apart).", DOORS)
MAX_CONNECTIONS_LOOPBACK: Setting[int | None] = Setting(
    "SQUALL_MAX_CONNECTIONS_LOOPBACK", COUNT, None, "The most open connections from loopback, where the "
    "node's own instances call from (at most the whole cap).", DOORS,
    unset="a quarter of the connection cap")
ROUTE_BODY_BUDGET_MB = Setting(
    "SQUALL_ROUTE_BODY_BUDGET_MB", WHOLE_MB, 256, "The bytes of HTTP route bodies a node reads at once "
    "(one client address a quarter of them).", DOORS)

EVENTS = "Events"
RETRY_BASE_SECONDS = Setting(
    "SQUALL_RETRY_BASE_SECONDS", SECONDS_OR_ZERO, 1.0, "The wait before an event's first retry; each "
    "next one waits twice as long (jittered, at most 300 s).", EVENTS)
EVENT_POLL_SECONDS: Setting[float | None] = Setting(
    "SQUALL_EVENT_POLL_SECONDS", SECONDS_OR_ZERO, None, "How often an idle node looks for due events "
    "anyway (held within 0.05 s and 1 h).", EVENTS, unset="5 on SQLite, 30 on PostgreSQL")
QUEUE_POLL_SECONDS: Setting[float | None] = Setting(
    "SQUALL_QUEUE_POLL_SECONDS", SECONDS_OR_ZERO, None, "How often a consumer of an empty queue looks "
    "again anyway (held within 0.05 s and 1 h).", EVENTS, unset="1 on SQLite, 30 on PostgreSQL")
STORE_POLL_SECONDS: Setting[float | None] = Setting(
    "SQUALL_STORE_POLL_SECONDS", SECONDS_OR_ZERO, None, "How often a node looks for other nodes' deploys, "
    "secrets and resources anyway (held within 0.05 s and 1 h).", EVENTS,
    unset="2 on SQLite, 30 on PostgreSQL")

LOGS = "Logs"
LOG_RETENTION_DAYS = Setting("SQUALL_LOG_RETENTION_DAYS", DAYS, 30.0, "How long stored logs are kept.", LOGS)
LOG_MAX_MB = Setting("SQUALL_LOG_MAX_MB", MB, 1024.0, "The most stored logs of a server, all stages "
                     "together; the oldest go first.", LOGS)
LOG_SWEEP_SECONDS = Setting("SQUALL_LOG_SWEEP_SECONDS", SECONDS, 60.0, "How often old and excess logs "
                            "are deleted.", LOGS)

DEPLOYS = "Deploys and builds"
BUNDLE_MAX_UNPACKED_MB = Setting("SQUALL_BUNDLE_MAX_UNPACKED_MB", WHOLE_MB, 1024, "The most file content "
                                 "one deployed bundle unpacks to.", DEPLOYS)
BUNDLE_MAX_FILES = Setting("SQUALL_BUNDLE_MAX_FILES", COUNT, 50_000, "The most files and folders of one "
                           "deployed bundle.", DEPLOYS)
BUILD_TIMEOUT_SECONDS = Setting("SQUALL_BUILD_TIMEOUT_SECONDS", SECONDS, 600.0, "The longest a build of "
                                "requirements.txt may take.", DEPLOYS)
BUILD_MEMORY_MB = Setting("SQUALL_BUILD_MEMORY_MB", WHOLE_MB, 2048, "The memory a build may use.", DEPLOYS)
BUILD_DISK_MB = Setting("SQUALL_BUILD_DISK_MB", WHOLE_MB, 1024, "The disk a build may write.", DEPLOYS)
BUILD_UID = Setting("SQUALL_BUILD_UID", UID_NUMBER, 65533, "The uid builds run as; outside SQUALL_UID_RANGE.",
                    DEPLOYS)

COMMAND = "Command line and client"
URL = Setting("SQUALL_URL", ADDRESS, "http://127.0.0.1:8080", "The server the CLI (`--server`) and "
                      "SquallClient talk to.", COMMAND, (CLI,))
STAGE: Setting[str | None] = Setting(
    "SQUALL_STAGE", TEXT, None, "The stage the CLI (`--stage`) and SquallClient work on; in an instance, "
    "the stage its function runs in.", COMMAND, (CLI, INSTANCE), unset="the server's root stage")
DEPLOYER: Setting[str | None] = Setting(
    "SQUALL_DEPLOYER", TEXT, None, "Who deploys, as each new version's provenance records it.", COMMAND,
    (CLI,), unset="user@hostname")
ALLOW_DIRTY = Setting("SQUALL_ALLOW_DIRTY", BOOL, False, "`squall deploy` deploys the files on disk despite "
                      "uncommitted git changes (`--allow-dirty`).", COMMAND, (CLI,))
HOST = Setting("SQUALL_HOST", TEXT, "127.0.0.1", "The interface `squall server` and `squall dev` listen on "
               "(`--host`).", COMMAND, (CLI,))
PORT = Setting("SQUALL_PORT", TCP_PORT, 8080, "The port `squall server` and `squall dev` listen on "
                       "(`--port`).", COMMAND, (CLI,))
DATA: Setting[Path | None] = Setting(
    "SQUALL_DATA", PATH, None, "The data directory of `squall server` (`--data`).", COMMAND, (CLI,),
    unset="none: `--data` is required")
STORE: Setting[str | None] = Setting(
    "SQUALL_STORE", ADDRESS, None, "The store of `squall server` (`--store`): postgresql://... to share it "
    "between nodes.", COMMAND, (CLI,), unset="SQLite in the data directory")

INSIDE = "Inside an instance (set by squall)"
FUNCTION: Setting[str | None] = Setting(
    "SQUALL_FUNCTION", TEXT, None, "The name of the function the instance runs.", INSIDE, (INSTANCE,))
API_URL: Setting[str | None] = Setting(
    "SQUALL_API_URL", ADDRESS, None, "Where squall.sdk reaches the node that runs the instance.", INSIDE,
    (INSTANCE,), unset="not set: the node offers no SDK")
FUNCTION_TOKEN: Setting[str | None] = Setting(
    "SQUALL_FUNCTION_TOKEN", TEXT, None, "The function's own short-lived credential, which squall.sdk "
    "sends.", INSIDE, (INSTANCE,), unset="not set: the node offers no SDK", secret=True)

DECLARED: dict[str, Setting[Any]] = {s.name: s for s in list(globals().values()) if isinstance(s, Setting)}
"""Every setting by name, in the order declared."""


def field_name(setting: Setting[Any]) -> str:
    """The name of a server setting's field of `Settings`: SQUALL_MAX_INSTANCES -> max_instances."""
    return setting.name.removeprefix(PREFIX).lower()


@dataclass(frozen=True)
class Settings:
    """The server's settings, one field per server setting (named after it, `field_name`),
    read once at start and handed down (the defaults when built without the environment)."""

    token: str | None = field(default=TOKEN.default, repr=False)
    secret_key: str | None = field(default=SECRET_KEY.default, repr=False)
    region: str = REGION.default
    node_id: str | None = NODE_ID.default
    code_grace_seconds: float = CODE_GRACE_SECONDS.default
    credential_refresh_seconds: float = CREDENTIAL_REFRESH_SECONDS.default
    max_instances: int = MAX_INSTANCES.default
    uid_range: tuple[int, int] = UID_RANGE.default
    zygote_preload: tuple[str, ...] = ZYGOTE_PRELOAD.default
    max_header_bytes: int = MAX_HEADER_BYTES.default
    max_headers: int = MAX_HEADERS.default
    header_timeout: float = HEADER_TIMEOUT.default
    body_idle_timeout: float = BODY_IDLE_TIMEOUT.default
    max_connections: int = MAX_CONNECTIONS.default
    max_connections_per_client: int = MAX_CONNECTIONS_PER_CLIENT.default
    max_connections_loopback: int | None = MAX_CONNECTIONS_LOOPBACK.default
    route_body_budget_mb: int = ROUTE_BODY_BUDGET_MB.default
    retry_base_seconds: float = RETRY_BASE_SECONDS.default
    event_poll_seconds: float | None = EVENT_POLL_SECONDS.default
    queue_poll_seconds: float | None = QUEUE_POLL_SECONDS.default
    store_poll_seconds: float | None = STORE_POLL_SECONDS.default
    log_retention_days: float = LOG_RETENTION_DAYS.default
    log_max_mb: float = LOG_MAX_MB.default
    log_sweep_seconds: float = LOG_SWEEP_SECONDS.default
    bundle_max_unpacked_mb: int = BUNDLE_MAX_UNPACKED_MB.default
    bundle_max_files: int = BUNDLE_MAX_FILES.default
    build_timeout_seconds: float = BUILD_TIMEOUT_SECONDS.default
    build_memory_mb: int = BUILD_MEMORY_MB.default
    build_disk_mb: int = BUILD_DISK_MB.default
    build_uid: int = BUILD_UID.default

    def __post_init__(self) -> None:
        first, last = self.uid_range
        if first <= self.build_uid <= last:
            raise SettingError(BUILD_UID.name, f"{BUILD_UID.name} {self.build_uid} is inside "
                               f"{UID_RANGE.name} {first}-{last}: a function running as that uid could "
                               f"trace or signal the builds; choose a build uid outside the range")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Every server setting from `environ` (this process's environment when None).
        Raises SettingError for the first bad value."""
        return cls(**{name: setting.read(environ) for name, setting in SERVER_SETTINGS.items()})


SERVER_SETTINGS: dict[str, Setting[Any]] = {field_name(s): s for s in DECLARED.values() if SERVER in s.readers}
"""The server settings by their field of `Settings`."""

if [f.name for f in fields(Settings)] != list(SERVER_SETTINGS):
    raise AssertionError("Settings must have one field per server setting, in the order declared")
