"""The build sandbox: `pip install` of a project's requirements (and every build step it
runs: PEP 517 backends, setup.py, compilers) runs here, never as root on the node's view
of the machine (see docs/manifest.md, "Dependencies").

The node calls `run_build(...)`, which starts `python -m squall.runtime.build JOB` and
waits for it at most `BuildLimits.seconds` (then it is killed). That process, still
root:

1. joins the build's cgroup v1 `memory` and `pids` groups (`…/squall/build-<id>`, made
   by the node with `memory.limit_in_bytes` = `memory_mb` and `pids.max` = `nproc`);
2. unshares a PID namespace and forks its first process, which dies with it (and takes
   every process of the build with it: a PID namespace ends when its first process does);
3. that process enters private mount and IPC namespaces, opens the project and the output
   folder, covers `/run` with an empty read-only tmpfs and `/dev` with a minimal one
   (`private_run`, `private_dev`, as instances: no host service's Unix socket by path, no
   device but null, zero, full, random, urandom, tty, ptmx and the ptys), mounts a private `/tmp` tmpfs of `disk_mb`
   (everything the build writes lives there, which is the disk limit), covers the node's
   data dirs with empty read-only tmpfs (`hide_dirs` of squall/runtime/sandbox.py, as
   instances), mounts a `/proc` of its own, and copies the build's inputs (requirements
   files and local packages: only what the cache key covers, squall/deps.py) to
   `/tmp/build/project`, owned by the build uid, opening every path with O_NOFOLLOW:
   links are not followed, nor copied (`copy_inputs`);
4. forks pip's process, which makes itself (and its children) the out-of-memory killer's
   first choice (`oom_score_adj` 1000), sets its rlimits (`RLIMIT_FSIZE`, `RLIMIT_CPU`,
   `RLIMIT_NOFILE`, `RLIMIT_CORE` 0; `RLIMIT_AS` and `RLIMIT_NPROC` where the cgroups are
   not writable), closes every inherited descriptor, drops to the build uid (no groups,
   `no_new_privs`), enters a Landlock domain scoping abstract Unix sockets and signals
   (`scope_landlock`, where the kernel has Landlock ABI >= 6; else a note in the log) and execs `python -m pip install --target /tmp/build/target -r
   requirements.txt` with an environment of its own (no SQUALL_* variable);
5. once pip has exited, kills every process left in the namespace, and only then copies
   the installed files (regular files and folders; links and anything else are left out)
   into the output folder through the descriptor opened in step 3, as root: read-only
   files in a folder only root can write.

The build uid (`SQUALL_BUILD_UID`, default 65533) is none of the functions' uids
(`SQUALL_UID_RANGE`, default 100000-165535): instances can neither signal nor trace a
build, and a build cannot touch an instance.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Callable, Mapping

from squall.exceptions import BundleError, SquallError
from squall.runtime.cgroups import cgroup_roots, group_oom_killed, kill_members, write_setting
from squall.runtime.sandbox import (
    CLONE_NEWPID,
    PR_SET_NO_NEW_PRIVS,
    PR_SET_PDEATHSIG,
    StepUnsupported,
    check,
    close_inherited_fds,
    hide_dirs,
    libc,
    platform_dirs,
    private_dev,
    private_mount_namespace,
    private_proc,
    private_run,
    private_tmp,
    scope_landlock,
)
from squall.settings import BUILD_DISK_MB, BUILD_MEMORY_MB, BUILD_TIMEOUT_SECONDS, BUILD_UID, Settings

MB = 1024 * 1024
WORK = "/tmp/build"
PROJECT = f"{WORK}/project"
TARGET = f"{WORK}/target"
EXIT_SANDBOX = 71
"""Exit status of a build whose sandbox could not be set up (the server's fault, not the project's)."""
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
              "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
"""What pip gets of the node's environment, with every PIP_* variable (the node's pip configuration)."""
DISK_FULL = ("No space left on device", "File too large")
TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class BuildLimits:
    """What one build may use; `from_settings` takes the server's settings."""

    seconds: float = BUILD_TIMEOUT_SECONDS.default
    memory_mb: int = BUILD_MEMORY_MB.default
    disk_mb: int = BUILD_DISK_MB.default
    nproc: int = 512
    nofile: int = 4096
    uid: int = BUILD_UID.default

    @classmethod
    def from_settings(cls, settings: Settings) -> BuildLimits:
        """SQUALL_BUILD_TIMEOUT_SECONDS, _MEMORY_MB, _DISK_MB and _UID (squall/settings.py, which
        also keeps the build uid out of the functions' SQUALL_UID_RANGE)."""
        return cls(seconds=settings.build_timeout_seconds, memory_mb=settings.build_memory_mb,
                   disk_mb=settings.build_disk_mb, uid=settings.build_uid)


# -- the node's side ----------------------------------------------------------

def run_build(source: Path, inputs: list[str], output: Path, hidden: list[Path], limits: BuildLimits) -> None:
    """Install the requirements of the project at `source` into the empty folder `output`
    in the build sandbox (see the module docstring): `inputs` are the paths of the project
    the build sees. Raises BundleError naming the limit a build broke, or with the end of
    pip's output; SquallError when the sandbox cannot be set up on this machine."""
    groups = make_groups(limits)
    job = {"source": str(source), "inputs": inputs, "output": str(output), "hidden": [str(p) for p in hidden],
           "limits": asdict(limits), "groups": groups}
    with tempfile.TemporaryFile(dir=output.parent) as log:
        try:
            status, timed_out = _run(job, log, limits.seconds, groups)
        finally:
            oom = out_of_memory(groups)
            remove_groups(groups)
        tail = _tail(log)
    failure = _failure(status, timed_out, oom, tail, limits, groups)
    if failure is not None:
        raise failure


def _run(job: dict[str, Any], log: IO[bytes], seconds: float, groups: dict[str, str]) -> tuple[int, bool]:
    command = [sys.executable, "-P", "-m", "squall.runtime.build", json.dumps(job)]
    env = {**build_environment(os.environ), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(command, cwd="/", env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                               start_new_session=True)
    try:
        return process.wait(timeout=seconds), False
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for group in groups.values():
            kill_members(group)
        return process.wait(), True
    except BaseException:
        process.kill()
        process.wait()
        raise


def _failure(status: int, timed_out: bool, oom: bool, tail: str, limits: BuildLimits,
             groups: dict[str, str]) -> SquallError | None:
    """What the deploy answers for a build that ended with `status` (None: it succeeded)."""
    if timed_out or status == 128 + signal.SIGXCPU:
        return BundleError(f"installing requirements.txt took longer than the {limits.seconds:g} s build time "
                           f"limit ({BUILD_TIMEOUT_SECONDS.name}); nothing was deployed")
    if oom or ("memory" not in groups and status != 0 and "MemoryError" in tail):
        return BundleError(f"installing requirements.txt ran out of memory: a build may use {limits.memory_mb} MB "
                           f"(the build memory limit, {BUILD_MEMORY_MB.name}; the files it writes count too); "
                           f"nothing was deployed")
    if status == EXIT_SANDBOX:
        return SquallError("the build sandbox could not be set up on this server, nothing was deployed:\n"
                           + _last_lines(tail))
    if status != 0 and (status == 128 + signal.SIGXFSZ or any(text in tail for text in DISK_FULL)):
        return BundleError(f"installing requirements.txt ran out of disk space: a build may write {limits.disk_mb} MB "
                           f"(the build disk limit, {BUILD_DISK_MB.name}); nothing was deployed\n"
                           + _last_lines(tail))
    if status != 0:
        return BundleError("installing requirements.txt failed:\n" + _last_lines(tail))
    return None


def build_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What the build gets of the node's environment: PASSED_ENV and PIP_*, nothing else."""
    return {k: v for k, v in environ.items() if k in PASSED_ENV or k.startswith("PIP_")}


def _tail(log: IO[bytes]) -> str:
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - TAIL_BYTES))
    return log.read().decode(errors="replace")


def _last_lines(text: str, count: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-count:])


# -- cgroups (made and removed by the node) ------------------------------------

def make_groups(limits: BuildLimits) -> dict[str, str]:
    """The build's memory and pids groups, with their limits; a controller that is not
    writable is left out (the build then falls back to rlimits)."""
    name = f"build-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    groups = {}
    for controller, root in cgroup_roots().items():
        group = os.path.join(root, name)
        try:
            os.mkdir(group)
            if controller == "memory":
                write_setting(group, "memory.limit_in_bytes", limits.memory_mb * MB)
                if os.path.exists(os.path.join(group, "memory.memsw.limit_in_bytes")):
                    write_setting(group, "memory.memsw.limit_in_bytes", limits.memory_mb * MB)
            else:
                write_setting(group, "pids.max", limits.nproc)
        except OSError:
            remove_groups({controller: group})
            continue
        groups[controller] = group
    return groups


def out_of_memory(groups: dict[str, str]) -> bool:
    """Whether the kernel killed a process of the build for lack of memory."""
    return "memory" in groups and group_oom_killed(groups["memory"])


def remove_groups(groups: dict[str, str], patience: float = 5.0) -> None:
    """Kill whatever is left in the build's groups, then remove them."""
    deadline = time.monotonic() + patience
    for group in groups.values():
        while True:
            try:
                os.rmdir(group)
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
            kill_members(group)
            time.sleep(0.01)


# -- inside the build (python -m squall.runtime.build JOB) --------------------

def main(argv: list[str]) -> int:
    """The build's first process (root, on the node's side of every namespace)."""
    job = json.loads(argv[1])
    os.umask(0o022)  # the node's is 077: the folders the sandbox makes must be crossable by the build uid
    try:
        for group in job["groups"].values():
            write_setting(group, "cgroup.procs", os.getpid())
        check(libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
        child = os.fork()
    except OSError as exc:
        print(f"squall build: sandbox step 'start' failed: {exc}", file=sys.stderr, flush=True)
        return EXIT_SANDBOX
    if child == 0:
        code = EXIT_SANDBOX
        try:
            code = first_process(job)
        except BaseException:  # noqa: BLE001 - reported, and the build fails
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return _exit_code(os.waitpid(child, 0)[1])


def first_process(job: dict[str, Any]) -> int:
    """PID 1 of the build's namespace: set up the sandbox, run pip, copy what it installed."""
    if os.getpid() != 1:
        raise RuntimeError("the build's first process must be PID 1 of a PID namespace of its own")
    check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    limits = BuildLimits(**job["limits"])
    binds = platform_dirs()
    fds: list[int] = []
    held: dict[str, int] = {}
    steps: list[tuple[str, Callable[[], None]]] = [
        ("mount namespace", private_mount_namespace),
        ("open folders", lambda: _open_folders(job, binds, fds, held)),
        ("private /run", private_run),
        ("private /dev", private_dev),
        ("private /tmp", lambda: private_tmp(limits.disk_mb)),
        ("hidden dirs", lambda: hide_dirs(job["hidden"], dict(zip(binds, fds)), (), fds)),
        ("private /proc", private_proc),
        ("project copy", lambda: copy_inputs(held["source"], job["inputs"], limits.uid)),
    ]
    for name, step in steps:
        try:
            step()
        except OSError as exc:
            print(f"squall build: sandbox step '{name}' failed: {exc}", file=sys.stderr, flush=True)
            return EXIT_SANDBOX
    pip = os.fork()
    if pip == 0:
        run_pip(limits, set(job["groups"]))
    status = _exit_code(os.waitpid(pip, 0)[1])
    kill_the_rest()
    if status == 0:
        copy_output(held["output"])
    return status


def _open_folders(job: dict[str, Any], binds: tuple[str, ...], fds: list[int], held: dict[str, int]) -> None:
    """Descriptors opened before anything is hidden: the platform dirs (bound back where a
    cover hides them), the project and the output folder (used by this root process only)."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    for path in binds:
        fds.append(os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
    held["source"] = os.open(job["source"], flags)
    held["output"] = os.open(job["output"], flags)


def copy_inputs(source_fd: int, inputs: list[str], uid: int) -> None:
    """Copy the build's inputs from the project to PROJECT, owned by the build uid, and make TARGET.
    Nothing is followed through a link: each path is opened one component at a time with
    O_NOFOLLOW below `source_fd`, and only folders and regular files are copied (links,
    fifos and devices are left out, as the cache key and bundles leave them out), so this
    root process never reads a file the project's links point at."""
    os.makedirs(PROJECT, mode=0o755)
    for rel in inputs:
        parts = [] if rel == "." else rel.split("/")
        parent = os.dup(source_fd)
        try:
            for index, part in enumerate(parts[:-1]):
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
                os.close(parent)
                parent = inner
                os.makedirs(os.path.join(PROJECT, *parts[: index + 1]), mode=0o755, exist_ok=True)
            if parts:
                _copy_entry(parent, parts[-1], os.path.join(PROJECT, rel))
            else:
                _copy_folder(parent, PROJECT)
        finally:
            os.close(parent)
    os.makedirs(TARGET, mode=0o755)
    for folder, dirs, files in os.walk(WORK):
        for name in (folder, *(os.path.join(folder, n) for n in dirs + files)):
            os.chown(name, uid, uid, follow_symlinks=False)


def _copy_entry(parent: int, name: str, dest: str) -> None:
    """Copy `name` of the folder open as `parent` to `dest` when it is a folder or a regular file."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a fifo swapped in must not block
    mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        return
    fd = os.open(name, flags | (os.O_DIRECTORY if stat.S_ISDIR(mode) else 0), dir_fd=parent)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            os.makedirs(dest, mode=0o755, exist_ok=True)
            _copy_folder(fd, dest)
        elif stat.S_ISREG(info.st_mode):
            with open(dest, "xb") as out, open(fd, "rb", closefd=False) as source:
                shutil.copyfileobj(source, out)
            os.chmod(dest, stat.S_IMODE(info.st_mode) & 0o755)
            os.utime(dest, ns=(info.st_atime_ns, info.st_mtime_ns))
    finally:
        os.close(fd)


def _copy_folder(fd: int, dest: str) -> None:
    with os.scandir(fd) as entries:  # of a duplicate of `fd`
        names = [entry.name for entry in entries]
    for name in names:
        _copy_entry(fd, name, os.path.join(dest, name))


def run_pip(limits: BuildLimits, cgroups: set[str]) -> None:
    """pip's process: limits, no descriptors, the build uid, then exec pip (never returns)."""
    try:
        _write("/proc/self/oom_score_adj", "1000")  # the build's processes go first, not the root ones
        set_limits(limits, cgroups)
        close_inherited_fds(set())
        os.chdir(PROJECT)
        os.setgroups([])
        os.setgid(limits.uid)
        os.setuid(limits.uid)
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        try:
            scope_landlock()
        except StepUnsupported as exc:
            print(f"squall build: sandbox step 'landlock' skipped: {exc}", file=sys.stderr, flush=True)
        command = [sys.executable, "-P", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   "--no-input", "--no-cache-dir", "--target", TARGET, "-r", "requirements.txt"]
        os.execve(sys.executable, command, pip_environment(os.environ))
    except BaseException as exc:  # noqa: BLE001 - whatever it is, pip must not run
        print(f"squall build: sandbox step 'pip process' failed: {exc}", file=sys.stderr, flush=True)
    os._exit(EXIT_SANDBOX)


def set_limits(limits: BuildLimits, cgroups: set[str]) -> None:
    """rlimits of pip's process and its children; memory and processes only where the cgroups are missing."""
    fsize = (limits.disk_mb + 1) * MB  # past the tmpfs: a full /tmp answers ENOSPC first
    cpu = math.ceil(limits.seconds)
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.nofile, limits.nofile))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if "memory" not in cgroups:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * MB, limits.memory_mb * MB))
    if "pids" not in cgroups:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.nproc, limits.nproc))


def pip_environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {**build_environment(environ), "HOME": "/tmp", "TMPDIR": "/tmp", "USER": "squall-build",
            "LOGNAME": "squall-build", "PATH": environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")}


def kill_the_rest() -> None:
    """As PID 1 of the namespace: kill every other process of the build and reap it. Refuses
    to run anywhere else: outside a PID namespace of its own, kill(-1) reaches every process
    of the machine."""
    if os.getpid() != 1:
        raise RuntimeError("kill_the_rest runs only as PID 1 of the build's own PID namespace")
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def copy_output(output_fd: int) -> None:
    """Copy what pip installed into the output folder: folders and regular files only
    (read-only, executable kept), nothing followed through a link."""
    base = f"/proc/self/fd/{output_fd}"
    for folder, _dirs, files in os.walk(TARGET):
        rel = os.path.relpath(folder, TARGET)
        dest = base if rel == "." else os.path.join(base, rel)
        if rel != ".":
            os.mkdir(dest, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            if not stat.S_ISREG(mode):
                continue
            shutil.copyfile(path, os.path.join(dest, name), follow_symlinks=False)
            os.chmod(os.path.join(dest, name), 0o555 if mode & 0o111 else 0o444)


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _write(path: str, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
