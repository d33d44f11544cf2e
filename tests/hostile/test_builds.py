"""End to end: hostile deploys on a real `squall server`. A project's build backend runs in
the build sandbox (unprivileged, no data dir, no tokens, no keys, within time, memory and
disk limits, nothing left running); the dependency cache never hands one project another's
local packages; a decompression bomb is refused without the server's memory growing. In
every attack another function (the bystander, GET /steady) keeps serving, and nothing
already stored changes when a deploy is refused."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import socket
import tarfile
import tempfile
import textwrap
import uuid
import zlib
from pathlib import Path
from typing import Any, Iterator

import psutil
import pytest

from squall.deps import install_requirements
from squall.exceptions import BundleError
from squall.runtime.build import BuildLimits
from squall.settings import Settings
from tests.hostile.bystander import bystander
from tests.support import PeakMemory, SquallServer, plant_admin_token, serving, write_project

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # measures a server under attack: runs alone

MB = 1024 * 1024
LIMITS = {"SQUALL_BUILD_TIMEOUT_SECONDS": "30", "SQUALL_BUILD_MEMORY_MB": "320", "SQUALL_BUILD_DISK_MB": "64"}
BUILD_UID = 65533
"""The build uid by default (SQUALL_BUILD_UID; squall/settings.py): neither root nor nobody."""
LEFTOVER = "6131"
"""The argument of the `sleep` a hostile build leaves running: how the tests find it afterwards."""

BACKEND = '''
import os, zipfile

NAME = {name!r}


def extra_files():
    return {{}}


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    """A PEP 517 backend in the package's own folder: packs its other .py files into a wheel."""
    here = os.path.dirname(os.path.abspath(__file__))
    files = {{n: open(os.path.join(here, n)).read() for n in sorted(os.listdir(here))
              if n.endswith(".py") and n != "backend.py"}}
    files.update(extra_files())
    info = f"{{NAME}}-1.0.dist-info"
    files[f"{{info}}/METADATA"] = f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: 1.0\\n"
    files[f"{{info}}/WHEEL"] = "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    files[f"{{info}}/RECORD"] = "".join(f"{{p}},,\\n" for p in files) + f"{{info}}/RECORD,,\\n"
    wheel = f"{{NAME}}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel
'''

PYPROJECT = """
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]
"""

PROBE = '''
import ctypes, json, socket, subprocess

DATA = {data!r}
SERVER_PID = {server_pid!r}
SOCKETS = {sockets!r}
SHM_KEY = {shm_key!r}


def attempt(action):
    try:
        return {{"ok": True, "value": action()}}
    except OSError as exc:
        return {{"ok": False, "errno": exc.errno}}


def read(path):
    with open(path, "rb") as handle:
        return handle.read(4096).decode(errors="replace")


def write(path):
    with open(path, "w") as handle:
        handle.write("owned")


def connect(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        sock.connect(path)
        return "connected"


def shm_segment(key):
    """The id of the System V shared memory segment `key`, if this IPC namespace has one."""
    libc = ctypes.CDLL(None, use_errno=True)
    ident = libc.shmget(key, 0, 0)
    if ident < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return ident


def leave_a_process_running():
    """A detached `sleep` that outlives the backend, its output away from pip's pipes."""
    subprocess.Popen(["sleep", {leftover!r}], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)


def extra_files():
    leave_a_process_running()
    status = dict(line.split(":", 1) for line in read("/proc/self/status").splitlines() if ":" in line)
    here = os.path.dirname(os.path.abspath(__file__))
    seen = {{
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "no_new_privs": status["NoNewPrivs"].strip(), "cap_eff": status["CapEff"].strip(),
        "token": attempt(lambda: read(DATA + "/admin-token")),
        "key": attempt(lambda: read(DATA + "/secret-key")),
        "store": attempt(lambda: read(DATA + "/squall.db")),
        "data_listing": attempt(lambda: os.listdir(DATA)),
        "write_data": attempt(lambda: write(DATA + "/owned-by-the-build")),
        "server_cmdline": attempt(lambda: read(f"/proc/{{SERVER_PID}}/cmdline")),
        "server_environ": attempt(lambda: read(f"/proc/{{SERVER_PID}}/environ")),
        "project": sorted(os.listdir(os.path.dirname(here))),
        "sockets": {{path: attempt(lambda path=path: connect(path)) for path in SOCKETS}},
        "shm": attempt(lambda: shm_segment(SHM_KEY)) if SHM_KEY else None,
        "environ": dict(os.environ),
    }}
    return {{"evil_seen.py": f"SEEN = {{json.dumps(seen)!r}}\\n"}}
'''

STEADY = {
    "squall.yaml": """
        name: bystanders
        functions:
          steady:
            handler: app.steady
            triggers: [{http: "GET /steady"}]
    """,
    "app.py": """
        def steady(event, context):
            return {"statusCode": 200, "body": "steady"}
    """,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    root = tmp_path_factory.mktemp("builds")
    plant_admin_token(root / "data")
    with serving(root, STEADY, environ=LIMITS) as node:
        yield node


def package(name: str, modules: dict[str, str], backend_extra: str = "") -> dict[str, str]:
    """The files of a local package folder built by its own in-tree backend."""
    return {"pyproject.toml": PYPROJECT, "backend.py": BACKEND.format(name=name) + backend_extra, **modules}


def project(root: Path, name: str, vendor: dict[str, str], handler: str, folder: str = "vendor") -> Path:
    """Project `name`: function `name` (handler `handler`, an expression), its
    requirements.txt `./<folder>`, and `<folder>/` holding `vendor` (package files)."""
    files = {
        "squall.yaml": f"name: {name}\nfunctions:\n  {name}:\n    handler: app.handler\n",
        "app.py": f"def handler(event, context):\n    return {handler}\n",
        "requirements.txt": f"./{folder}\n",
    }
    write_project(root, files)
    for rel, text in vendor.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / rel).write_text(text)
    return root


def stored(server: SquallServer) -> dict[str, Any]:
    """What the server has stored: functions and versions, and the code and deps folders."""
    listed = json.loads(server.cli("ls", "--json", check=True).stdout)
    folders = {kind: sorted(p.name for p in (server.data_dir / kind).iterdir())
               for kind in ("code", "deps")}
    return {"functions": sorted((f["name"], f["version"], f["code_hash"]) for f in listed), **folders}


def leftovers() -> list[int]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if (process.info["cmdline"] or [])[-1:] == [LEFTOVER]:
            found.append(process.pid)
    return found


def deploy(server: SquallServer, path: Path) -> Any:
    return server.cli("deploy", str(path), timeout=240)


# -- hole 3: builds run sandboxed ------------------------------------------------

@pytest.fixture
def host_services() -> Iterator[dict[str, Any]]:
    """What a build must not reach of the host: a Unix socket any uid may connect to where
    services keep theirs (/run), an abstract one, and a System V shared memory segment any
    uid may open."""
    tag = uuid.uuid4().hex[:8]
    run_path, abstract = f"/run/squall-builds-{tag}.sock", f"\0squall-builds-{tag}"
    listeners = []
    for address in (run_path, abstract):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(address)
        listener.listen(16)
        listeners.append(listener)
    os.chmod(run_path, 0o777)
    libc = ctypes.CDLL(None, use_errno=True)
    key = 0x5B11D000 + os.getpid() % 4096
    segment = libc.shmget(key, 4096, 0o1000 | 0o666)  # IPC_CREAT, any uid
    assert segment >= 0, ctypes.get_errno()
    try:
        yield {"run": run_path, "abstract": abstract, "shm_key": key}
    finally:
        libc.shmctl(segment, 0, None)  # IPC_RMID
        for listener in listeners:
            listener.close()
        os.unlink(run_path)


def test_a_build_backend_runs_unprivileged_and_sees_no_data_dir_token_or_key(
        server: SquallServer, tmp_path: Path, host_services: dict[str, Any]) -> None:
    assert server.process is not None
    data = str(server.data_dir.resolve())
    probe = PROBE.format(data=data, server_pid=server.process.pid, leftover=LEFTOVER,
                         sockets=[host_services["run"], host_services["abstract"]], shm_key=host_services["shm_key"])
    evil = project(tmp_path / "evil", "evil", package("evilpkg", {}, probe),
                   "__import__('json').loads(__import__('evil_seen').SEEN)")
    with bystander(server.url, "/steady"):
        result = deploy(server, evil)
        assert result.returncode == 0, result.stderr
    seen = server.payload("evil")
    token = (server.data_dir / "admin-token").read_text().strip()
    key = (server.data_dir / "secret-key").read_text().strip()
    assert (seen["uid"], seen["euid"], seen["gid"], seen["groups"]) == (BUILD_UID, BUILD_UID, BUILD_UID, [])
    assert seen["no_new_privs"] == "1" and int(seen["cap_eff"], 16) == 0
    assert not seen["token"]["ok"] and not seen["key"]["ok"] and not seen["store"]["ok"]
    assert not seen["data_listing"]["ok"] or seen["data_listing"]["value"] == []
    assert not seen["write_data"]["ok"]
    assert not seen["server_cmdline"]["ok"] and not seen["server_environ"]["ok"]
    assert seen["project"] == ["requirements.txt", "vendor"]  # the build's inputs, not the function's code
    assert not [name for name in seen["environ"] if name.startswith("SQUALL_")]
    run_socket, abstract = seen["sockets"][host_services["run"]], seen["sockets"][host_services["abstract"]]
    assert not run_socket["ok"] and run_socket["errno"] == errno.ENOENT, run_socket  # a private /run
    assert not abstract["ok"] and abstract["errno"] == errno.EPERM, abstract  # the Landlock scope
    assert not seen["shm"]["ok"] and seen["shm"]["errno"] == errno.ENOENT, seen["shm"]  # its own IPC namespace
    everything = json.dumps(seen)
    assert token not in everything and key not in everything and server.token not in everything
    assert not (server.data_dir / "owned-by-the-build").exists()
    assert leftovers() == []


def test_installed_dependencies_are_root_owned_and_read_only(server: SquallServer, tmp_path: Path) -> None:
    lib = project(tmp_path / "ro", "readonly", package("rolib", {"rolib.py": "ANSWER = 42\n"}),
                  "__import__('rolib').ANSWER", folder="rolib")
    with bystander(server.url, "/steady"):
        assert deploy(server, lib).returncode == 0
    assert server.payload("readonly") == 42
    installed = [p for p in (server.data_dir / "deps").glob("*/rolib.py")]
    assert len(installed) == 1
    folder = installed[0].parent
    for path in [folder, *folder.rglob("*")]:
        info = path.stat()
        assert info.st_uid == 0 and info.st_gid == 0, path
        assert info.st_mode & 0o222 == 0, f"{path} is writable: {oct(info.st_mode)}"


ATTACKS = {
    "time": ("import time\ntime.sleep(3600)\n",
             "longer than the 30 s build time limit (SQUALL_BUILD_TIMEOUT_SECONDS)"),
    "memory": ("hoard = []\nwhile True:\n    hoard.append(b'x' * (16 * 1024 * 1024))\n",
               "ran out of memory: a build may use 320 MB (the build memory limit, SQUALL_BUILD_MEMORY_MB"),
    "disk": ("with open('/tmp/fill', 'wb') as f:\n    for _ in range(256):\n        f.write(b'x' * (1024 * 1024))\n",
             "ran out of disk space: a build may write 64 MB (the build disk limit, SQUALL_BUILD_DISK_MB)"),
}
"""What a hostile build backend does, and what the refused deploy must say."""


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_a_build_over_a_limit_fails_the_deploy_naming_the_limit(server: SquallServer, tmp_path: Path,
                                                              kind: str) -> None:
    attack, limit = ATTACKS[kind]
    hook = f"\n\ndef extra_files():\n    leave_a_process_running()\n{textwrap.indent(attack, '    ')}    return {{}}\n"
    helpers = PROBE.format(data="/nonexistent", server_pid=0, leftover=LEFTOVER, sockets=[], shm_key=0).split("def extra_files")[0]
    hostile = project(tmp_path / "hostile", "hostile", package("hostilepkg", {}, helpers + hook), "1",
                      folder=f"hostile-{kind}")  # a line of its own: no cached install to fall back on
    before = stored(server)
    with bystander(server.url, "/steady"):
        result = deploy(server, hostile)
    assert result.returncode == 2, result.stdout + result.stderr
    assert limit in result.stderr
    assert "nothing was deployed" in result.stderr
    assert stored(server) == before
    assert not [p for p in (server.data_dir / "deps").iterdir() if p.name.startswith(".")]
    assert leftovers() == []


LINK_PROBE = '''
import json


def extra_files():
    """What the build can do with the links the project put in this folder."""
    here = os.path.dirname(os.path.abspath(__file__))
    seen = {}
    for name in ("token", "root-only"):
        path = os.path.join(here, name)
        try:
            with open(path) as handle:
                seen[name] = {"exists": os.path.lexists(path), "read": handle.read()}
        except OSError as exc:
            seen[name] = {"exists": os.path.lexists(path), "errno": exc.errno}
    return {"linked_seen.py": f"SEEN = {json.dumps(seen)!r}\\n"}
'''


@pytest.fixture
def root_only_file() -> Iterator[Path]:
    """A file only root may read, outside the data dir (which builds do not see at all)."""
    folder = Path(tempfile.mkdtemp(prefix="squall-test-", dir="/var/lib"))
    folder.chmod(0o755)
    secret = folder / "root-only"
    secret.write_text(f"root-only-secret-{uuid.uuid4().hex[:8]}\n")
    secret.chmod(0o600)
    try:
        yield secret
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_links_in_a_builds_inputs_are_neither_followed_nor_copied(
        server: SquallServer, tmp_path: Path, root_only_file: Path) -> None:
    """Bundles carry no links (squall/bundle.py), so this calls the node's build entry point
    on a folder as a project checked out on the node would be: a link in a local requirement
    folder to the data dir's admin token and one to a root-only file, and a requirements.txt
    that is itself a link. The build's root part copies no link and follows none."""
    linked = project(tmp_path / "linked", "linked", package("linkedpkg", {}, LINK_PROBE), "1")
    (linked / "vendor" / "token").symlink_to(server.data_dir.resolve() / "admin-token")
    (linked / "vendor" / "root-only").symlink_to(root_only_file)
    deps = tmp_path / "deps"
    deps.mkdir()
    limits = BuildLimits.from_settings(Settings.from_environ(LIMITS))
    hidden = [server.data_dir.resolve()]
    with bystander(server.url, "/steady"):
        key = install_requirements(linked, deps, hidden, limits)
    assert key is not None
    text = (deps / key / "linked_seen.py").read_text()
    seen = json.loads(text.split("=", 1)[1].strip().strip("'"))
    for name in ("token", "root-only"):
        assert seen[name] == {"exists": False, "errno": errno.ENOENT}, (name, seen[name])
    assert root_only_file.read_text().strip() not in text

    relinked = write_project(tmp_path / "relinked", {"squall.yaml": "name: relinked\n", "app.py": ""})
    (relinked / "requirements.txt").symlink_to(root_only_file)
    with bystander(server.url, "/steady"), pytest.raises(BundleError) as refused:
        install_requirements(relinked, deps, hidden, limits)
    assert "requirements.txt is a symbolic link" in str(refused.value)
    assert root_only_file.read_text().strip() not in str(refused.value)


# -- hole 4: the deps cache is keyed by what it installs -------------------------

def test_the_same_vendor_line_with_different_contents_runs_each_projects_own_code(
        server: SquallServer, tmp_path: Path) -> None:
    def vendored(name: str, value: str) -> Path:
        return project(tmp_path / name, name, package("vendored", {"vendored.py": f"VALUE = {value!r}\n"}),
                       "__import__('vendored').VALUE")

    alpha, beta = vendored("alpha", "alpha"), vendored("beta", "beta")
    with bystander(server.url, "/steady"):
        assert deploy(server, alpha).returncode == 0
        assert deploy(server, beta).returncode == 0
    assert (server.payload("alpha"), server.payload("beta")) == ("alpha", "beta")
    (alpha / "vendor" / "vendored.py").write_text("VALUE = 'gamma'\n")
    with bystander(server.url, "/steady"):
        result = deploy(server, alpha)
    assert result.returncode == 0, result.stderr
    assert (server.payload("alpha"), server.payload("beta")) == ("gamma", "beta")


# -- hole 13: a decompression bomb -----------------------------------------------

def zero_bomb(size: int) -> bytes:
    """A tar.gz of a valid project plus `big.bin`, `size` bytes of zeros: about size / 1000 bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = []
    for name, text in (("squall.yaml", b"name: bomb\nfunctions:\n  bomb:\n    handler: app.handler\n"),
                       ("app.py", b"def handler(event, context):\n    return 1\n")):
        info = tarfile.TarInfo(name)
        info.size = len(text)
        parts.append(compressor.compress(info.tobuf(format=tarfile.PAX_FORMAT) + text
                                         + bytes(-len(text) % tarfile.BLOCKSIZE)))
    big = tarfile.TarInfo("big.bin")
    big.size = size
    parts.append(compressor.compress(big.tobuf(format=tarfile.PAX_FORMAT)))
    zeros = bytes(MB)
    for _ in range(size // MB):
        parts.append(compressor.compress(zeros))
    parts.append(compressor.compress(bytes(size % MB + 2 * tarfile.RECORDSIZE)) + compressor.flush())
    return b"".join(parts)


def test_a_decompression_bomb_is_refused_and_the_server_stays_small(server: SquallServer) -> None:
    assert server.process is not None
    bomb = zero_bomb(2100 * MB)
    assert len(bomb) < 3 * MB
    before = stored(server)
    with PeakMemory(server.process.pid, tree=True, interval=0.01) as memory:  # the server, zygotes, instances
        with bystander(server.url, "/steady"), server.api() as api:
            response = api.post("/_squall/api/deploy", content=bomb, timeout=120)
    assert response.status_code == 413, response.text
    message = response.json()["error"]["message"]
    assert "SQUALL_BUNDLE_MAX_UNPACKED_MB" in message and "big.bin" in message
    assert memory.growth_mb < 100, f"the server grew by {memory.growth_mb:.0f} MB"
    assert stored(server) == before
    assert list((server.data_dir / "tmp").iterdir()) == []
    print(f"server tree RSS: baseline {memory.before / MB:.0f} MB, peak {memory.peak / MB:.0f} MB")
