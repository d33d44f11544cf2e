"""End to end: hostile deploys on a real `squall server`. A project's build backend runs in
the build sandbox (unprivileged, no data dir, no tokens, no keys, within time, memory and
disk limits, nothing left running); the dependency cache never hands one project another's
local packages; a decompression bomb is refused without the server's memory growing. In
every attack another function (the bystander, GET /steady) keeps serving, and nothing
already stored changes when a deploy is refused."""

from __future__ import annotations

import json
import tarfile
import textwrap
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Iterator

import psutil
import pytest

from tests.hostile.bystander import bystander
from tests.support import SquallServer, write_project

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
LIMITS = {"SQUALL_BUILD_TIMEOUT_SECONDS": "30", "SQUALL_BUILD_MEMORY_MB": "320", "SQUALL_BUILD_DISK_MB": "64"}
BUILD_UID = 65533
"""The build uid by default (SQUALL_BUILD_UID; squall/runtime/build.py): neither root nor nobody."""
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
import json, subprocess

DATA = {data!r}
SERVER_PID = {server_pid!r}


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
    data = root / "data"
    data.mkdir()
    token = data / "admin-token"
    token.write_text("admin-secret-on-disk\n")
    token.chmod(0o600)
    node = SquallServer(data, environ=LIMITS).start()
    node.cli("deploy", str(write_project(root / "steady", STEADY)), check=True)
    yield node
    node.stop()


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


def invoke(server: SquallServer, function: str) -> Any:
    with server.api() as api:
        response = api.post(f"/_squall/api/functions/{function}/invoke", json={}, timeout=60)
    response.raise_for_status()
    envelope = response.json()
    assert envelope["ok"], envelope
    return envelope["payload"]


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

def test_a_build_backend_runs_unprivileged_and_sees_no_data_dir_token_or_key(
        server: SquallServer, tmp_path: Path) -> None:
    assert server.process is not None
    data = str(server.data_dir.resolve())
    probe = PROBE.format(data=data, server_pid=server.process.pid, leftover=LEFTOVER)
    evil = project(tmp_path / "evil", "evil", package("evilpkg", {}, probe),
                   "__import__('json').loads(__import__('evil_seen').SEEN)")
    with bystander(server.url, "/steady"):
        result = deploy(server, evil)
        assert result.returncode == 0, result.stderr
    seen = invoke(server, "evil")
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
    everything = json.dumps(seen)
    assert token not in everything and key not in everything and server.token not in everything
    assert not (server.data_dir / "owned-by-the-build").exists()
    assert leftovers() == []


def test_installed_dependencies_are_root_owned_and_read_only(server: SquallServer, tmp_path: Path) -> None:
    lib = project(tmp_path / "ro", "readonly", package("rolib", {"rolib.py": "ANSWER = 42\n"}),
                  "__import__('rolib').ANSWER", folder="rolib")
    with bystander(server.url, "/steady"):
        assert deploy(server, lib).returncode == 0
    assert invoke(server, "readonly") == 42
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
    helpers = PROBE.format(data="/nonexistent", server_pid=0, leftover=LEFTOVER).split("def extra_files")[0]
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
    assert (invoke(server, "alpha"), invoke(server, "beta")) == ("alpha", "beta")
    (alpha / "vendor" / "vendored.py").write_text("VALUE = 'gamma'\n")
    with bystander(server.url, "/steady"):
        result = deploy(server, alpha)
    assert result.returncode == 0, result.stderr
    assert (invoke(server, "alpha"), invoke(server, "beta")) == ("gamma", "beta")


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


def tree_rss(pid: int) -> int:
    """Resident memory of a process and its descendants (the server, its zygote and instances)."""
    total = 0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def test_a_decompression_bomb_is_refused_and_the_server_stays_small(server: SquallServer) -> None:
    assert server.process is not None
    bomb = zero_bomb(2100 * MB)
    assert len(bomb) < 3 * MB
    before = stored(server)
    baseline = tree_rss(server.process.pid)
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        assert server.process is not None
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(server.process.pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with bystander(server.url, "/steady"), server.api() as api:
            response = api.post("/_squall/api/deploy", content=bomb, timeout=120)
    finally:
        done.set()
        sampler.join(10)
    assert response.status_code == 413, response.text
    message = response.json()["error"]["message"]
    assert "SQUALL_BUNDLE_MAX_UNPACKED_MB" in message and "big.bin" in message
    assert peak[0] - baseline < 100 * MB, f"the server grew by {(peak[0] - baseline) / MB:.0f} MB"
    assert stored(server) == before
    assert list((server.data_dir / "tmp").iterdir()) == []
    print(f"server tree RSS: baseline {baseline / MB:.0f} MB, peak {peak[0] / MB:.0f} MB")
