"""How a stored function version becomes an InstanceSpec on this node: code and dependency
paths, limits, hooks, which zygote forks it, its sandbox (with the function's own uid, see
`FunctionUids`) and its whole environment."""

from __future__ import annotations

import grp
import pwd
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from squall import credentials
from squall.exceptions import BadInput, SquallError
from squall.runtime.context import function_arn
from squall.runtime.instance import InstanceSpec
from squall.runtime.lambda_path import build_runtime_folder
from squall.runtime.launcher import choose_profile
from squall.secrets import SecretKey
from squall.settings import API_URL, FUNCTION, FUNCTION_TOKEN, STAGE, UID_RANGE, Settings
from squall.store.base import BaseStore, FunctionVersion


UID_RANGE_ENV = UID_RANGE.name


class FunctionUids:
    """The uid (and the gid of the same number) each function's instances run as: one per
    (stage, function), handed out in order from a range (SQUALL_UID_RANGE, `FIRST-LAST`,
    default 100000-165535) for the life of the server process, never twice. Numbers that
    name a user or group of the host are skipped. One object serves the root node and all its
    stage nodes, so no two functions of one server share a uid: none can ptrace, signal or
    read the /proc files of another's processes. Nodes sharing a host need disjoint ranges."""

    def __init__(self, first: int, last: int) -> None:
        if not 0 < first <= last or last >= 2**32 - 1:
            raise BadInput(f"{UID_RANGE_ENV}: {first}-{last} is not a range of uids (FIRST-LAST, 0 < FIRST <= LAST)")
        self.first, self.last = first, last
        self._next = first
        self._given: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> FunctionUids:
        """The range of the server's SQUALL_UID_RANGE (its default when built without one)."""
        return cls(*settings.uid_range)

    def uid_of(self, stage: str, function: str) -> int:
        """The uid of `function` in `stage`: the one it got before, else the next free one."""
        key = (stage, function)
        with self._lock:
            uid = self._given.get(key)
            if uid is None:
                uid = self._given[key] = self._take()
            return uid

    def _take(self) -> int:
        while self._next <= self.last:
            uid, self._next = self._next, self._next + 1
            if not _names_an_account(uid):
                return uid
        raise SquallError(f"no uid left in {UID_RANGE_ENV} {self.first}-{self.last} for another function "
                          f"({len(self._given)} have one): give the server a larger range")


def _names_an_account(number: int) -> bool:
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(number)
            return True
        except KeyError:
            pass
    return False


@dataclass(frozen=True)
class NodeSettings:
    """What a node is configured with: where its data lives, and the AWS identity it reports."""

    data_dir: Path
    region: str = "us-east-1"
    account_id: str = "000000000000"
    api_url: str = ""
    """Where instances reach the node (the SDK); empty: the SDK is not offered."""
    sdk_key: bytes = b""
    """Signs the credential each function's instances get (squall/server/sdk_api.py)."""
    secret_key: SecretKey | None = None
    """Encrypts the stored secrets (squall/secrets.py); None: this node cannot read or set them."""
    stage: str = "default"
    """The stage this node serves (squall/server/stages.py); `default` is the server's root."""
    stage_env: Mapping[str, str] = field(default_factory=dict)
    """What every function of the stage gets in its environment (its own env wins)."""
    code_grace_seconds: float = 600.0
    """How long an unused code or dependency folder is kept after its last use (a deploy
    through another node sharing the data dir may be about to refer to it)."""
    server_data_dir: Path | None = None
    """The server's whole data dir when this node serves a stage (its `data_dir` is then
    DATA/stages/NAME inside it); None for the root node, whose data_dir it is."""
    uids: FunctionUids = field(default_factory=lambda: FunctionUids(*UID_RANGE.default), compare=False,
                               repr=False)
    """Hands out the functions' uids; stage nodes share the root node's."""
    server: Settings = field(default_factory=Settings, compare=False, repr=False)
    """The server's SQUALL_* settings (squall/settings.py), read once at start; stage nodes
    share the root node's (the defaults when a node is built without them)."""

    @property
    def hidden_dir(self) -> Path:
        """What every instance of this node hides: the server's whole data dir (store, token,
        keys, buckets, every stage's code), of which only its own code and deps come back, and
        the runtime folder (links to installed packages: squall/runtime/lambda_path.py)."""
        return self.server_data_dir or self.data_dir


_runtime_folders: dict[Path, Path] = {}


def runtime_folder(data_dir: Path) -> Path:
    """The node's folder of what Lambda's runtime lets a function import (made once per run:
    squall/runtime/lambda_path.py)."""
    if data_dir not in _runtime_folders:
        _runtime_folders[data_dir] = build_runtime_folder(data_dir / "runtime" / "python")
    return _runtime_folders[data_dir]


def instance_spec(settings: NodeSettings, version: FunctionVersion) -> InstanceSpec:
    """What the pool needs to run `version` on this node: paths, limits, hooks, sandbox, environment."""
    config = version.config
    code_dir = str(settings.data_dir / version.code_path)
    deps = config.get("deps")
    own_path = (code_dir,) + ((str(settings.data_dir / "deps" / deps),) if deps else ())
    sys_path = own_path + (str(runtime_folder(settings.data_dir)),)
    log_stream = f"{time.strftime('%Y/%m/%d')}/[{version.number}]{secrets.token_hex(16)}"
    spec = InstanceSpec(
        function=version.function, version=version.number, handler=config["handler"],
        code_dir=code_dir, memory=int(config["memory"]), timeout=float(config["timeout"]),
        sys_path=sys_path, log_group=f"/aws/lambda/{version.function}", log_stream=log_stream,
        concurrency=int(config.get("concurrency", 100)), min_instances=int(config.get("min_instances", 0)),
        idle_timeout=float(config.get("idle_timeout", 300)), init_timeout=float(config.get("init_timeout", 10)),
        initializer=config.get("initializer"), shutdown=config.get("shutdown"),
        zygote=choose_profile(own_path),
        sandbox=sandbox(settings, version, sys_path),
        arn=function_arn(version.function, settings.region, settings.account_id))
    return replace(spec, environ=environment(settings, version, spec))


def sandbox(settings: NodeSettings, version: FunctionVersion, sys_path: tuple[str, ...]) -> dict[str, Any]:
    """What the instance locks itself into (see squall/runtime/sandbox.py)."""
    config = version.config
    uid = settings.uids.uid_of(settings.stage, version.function)
    return {
        "memory_mb": int(config["memory"]), "tmp_mb": int(config.get("ephemeral_storage", 512)),
        "network": config.get("network", "default"), "code_dirs": list(sys_path),
        "hidden_dirs": [str(settings.hidden_dir)], "nofile": 1024, "nproc": 1024, "uid": uid, "gid": uid,
    }


def platform_access(settings: NodeSettings, function: str) -> dict[str, str]:
    """How an instance reaches the platform: the SDK's URL and token, and what boto3 reads
    (its own scoped credential, and the DynamoDB and Lambda endpoints of this node)."""
    credential = credentials.issue(settings.sdk_key, function, time.time())
    return {
        API_URL.name: settings.api_url, FUNCTION_TOKEN.name: credential.token,
        "AWS_ACCESS_KEY_ID": credential.access_key_id, "AWS_SECRET_ACCESS_KEY": credential.secret_access_key,
        "AWS_SESSION_TOKEN": credential.session_token,
        "AWS_ENDPOINT_URL_DYNAMODB": f"{settings.api_url}/_squall/aws/dynamodb",
        "AWS_ENDPOINT_URL_LAMBDA": f"{settings.api_url}/_squall/aws/lambda",
    }


def environment(settings: NodeSettings, version: FunctionVersion, spec: InstanceSpec) -> dict[str, str]:
    """The instance's whole environment: Lambda's reserved variables, then the function's env."""
    config = version.config
    base = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC", "HOME": "/tmp",
        "AWS_REGION": settings.region, "AWS_DEFAULT_REGION": settings.region,
        "AWS_LAMBDA_FUNCTION_NAME": version.function,
        "AWS_LAMBDA_FUNCTION_VERSION": str(version.number),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group, "AWS_LAMBDA_LOG_STREAM_NAME": spec.log_stream,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.get('runtime', 'python3.11')}",
        "LAMBDA_TASK_ROOT": spec.code_dir, "LAMBDA_RUNTIME_DIR": spec.code_dir,
        "_HANDLER": spec.handler, FUNCTION.name: version.function, STAGE.name: settings.stage,
    }
    if settings.api_url and settings.sdk_key:
        base.update(platform_access(settings, version.function))
    own = {str(k): str(v) for k, v in (config.get("env") or {}).items()}
    return {**base, **settings.stage_env, **own}


SDK_KEY = "sdk_signing_key"


def sdk_key(store: BaseStore) -> bytes:
    """The key that signs function credentials, shared by every node on the store."""
    key = store.get_meta(SDK_KEY)
    if key is None:
        store.set_meta(SDK_KEY, secrets.token_hex(32))
        key = store.get_meta(SDK_KEY) or ""
    return bytes.fromhex(key)
