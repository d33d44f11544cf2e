"""cgroup v1 groups of instances: a memory, a pids and a freezer group per instance, nested
in the zygote's own cgroup (`<controller>/<own group>/squall/<pid>`), created when the
instance starts (or ahead of time by a spare child), frozen and thawed by the node while the
instance is idle (`set_frozen`), emptied and removed when it is reaped, and read for
out-of-memory kills. Used by squall/runtime/sandbox.py, the zygote and the instance handle.

`<pid>` is always the instance's pid as the host (the zygote and the node) sees it: inside
its own PID namespace an instance is pid 1, so the zygote's child records its host pid
(`remember_host_pid`) before anything mounts a /proc of the new namespace."""

from __future__ import annotations

import errno
import functools
import os
import signal
import time

CGROUP_MOUNT = "/sys/fs/cgroup"
CGROUP_GROUP = "squall"
CONTROLLERS = ("memory", "pids", "freezer")
FROZEN, THAWED = "FROZEN", "THAWED"
FROZEN_BYTES, THAWED_BYTES = FROZEN.encode(), THAWED.encode()

_joined: dict[str, str] = {}
"""The groups this instance process joined, by controller (a spare child joins early)."""
_pending: set[str] = set()
_host_pid: int | None = None
"""This instance's pid as the host sees it (its groups' name), when it differs from getpid()."""


def remember_host_pid() -> int:
    """Record this process's pid in the host's PID namespace: /proc/self of the /proc mounted
    now (the host's, before the sandbox mounts its own) names it. Inside a PID namespace of
    its own, os.getpid() is 1 and cannot name a group."""
    global _host_pid
    _host_pid = int(os.readlink("/proc/self"))
    return _host_pid


def own_name() -> int:
    return _host_pid if _host_pid is not None else os.getpid()


def cgroup_roots() -> dict[str, str]:
    """Writable `squall` parent groups by controller ("memory", "pids", "freezer"), nested in this
    process's own cgroup; a controller that is missing or read-only is left out."""
    roots = {}
    try:
        with open("/proc/self/cgroup") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            if controller not in CONTROLLERS:
                continue
            own = os.path.join(CGROUP_MOUNT, controller, path.lstrip("/"))
            root = os.path.join(own, CGROUP_GROUP)
            try:
                os.makedirs(root, exist_ok=True)
            except OSError:
                continue
            if os.access(root, os.W_OK) and os.path.exists(os.path.join(root, "cgroup.procs")):
                roots[controller] = root
    return roots


def oom_killed(pid: int) -> bool:
    """Whether the kernel killed a process in instance `pid`'s memory group for lack of
    memory (read before the group is removed)."""
    root = cgroup_roots().get("memory")
    return root is not None and group_oom_killed(os.path.join(root, str(pid)))


def group_oom_killed(group: str) -> bool:
    """Whether the kernel killed a process of the memory group `group` for lack of memory."""
    try:
        with open(os.path.join(group, "memory.oom_control")) as handle:
            fields = dict(line.split() for line in handle.read().splitlines() if line.strip())
    except (OSError, ValueError):
        return False
    return int(fields.get("oom_kill", "0")) > 0


def remove_cgroups(pid: int) -> None:
    """Called by the zygote when instance `pid` ended: kill what it left running in its
    groups, then remove them. Groups of other instances that are gone (a previous zygote
    was killed before it could reap them) are removed too; busy ones are retried later."""
    for root in cgroup_roots().values():
        _pending.add(os.path.join(root, str(pid)))
        try:
            names = os.listdir(root)
        except OSError:
            continue
        _pending.update(os.path.join(root, name) for name in names if name.isdigit() and not _alive(int(name)))
    ordered = sorted(_pending, key=lambda g: "/pids/" not in g)  # pids first: stops forks
    for group in ordered:  # a frozen process dies only once thawed: thaw every group first
        _stop_and_thaw(group)
    for group in ordered:
        if _remove_group(group):
            _pending.discard(group)


def _stop_and_thaw(group: str) -> None:
    """No more forks in the group, SIGKILL to its members, then thaw it (a process frozen by
    the cgroup freezer does not act on SIGKILL until it is thawed)."""
    if os.path.exists(os.path.join(group, "pids.max")):
        _write_quietly(group, "pids.max", "0")  # what is left of a fork bomb can fork no more
    kill_members(group)
    if os.path.exists(os.path.join(group, "freezer.state")):
        _write_quietly(group, "freezer.state", THAWED)


def _write_quietly(group: str, name: str, value: str) -> None:
    try:
        with open(os.path.join(group, name), "w") as handle:
            handle.write(value)
    except OSError:
        pass  # the group is gone already


@functools.cache
def _freezer_root() -> str | None:
    return cgroup_roots().get("freezer")


def set_frozen(pid: int, frozen: bool) -> bool:
    """Freeze (or thaw) every process of instance `pid` with its cgroup freezer group, children
    that left its session included; False when it has no freezer group (the caller then
    signals its process group instead). Opens the group's file each time: for an instance
    the node holds, `open_freezer` once and `write_frozen` per call cost one system call."""
    fd = open_freezer(pid)
    if fd is None:
        return False
    try:
        return write_frozen(fd, frozen)
    finally:
        os.close(fd)


def open_freezer(pid: int) -> int | None:
    """A descriptor of instance `pid`'s `freezer.state` (write only), or None when it has no
    freezer group. It names that group for as long as it is open, whatever becomes of the pid."""
    root = _freezer_root()
    if root is None:
        return None
    try:
        return os.open(os.path.join(root, str(pid), "freezer.state"), os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return None


def write_frozen(fd: int, frozen: bool) -> bool:
    """Freeze or thaw the group whose `freezer.state` is open as `fd` (`open_freezer`): one
    write; False when the group is gone."""
    try:
        os.pwrite(fd, FROZEN_BYTES if frozen else THAWED_BYTES, 0)
    except OSError:
        return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_group(group: str, patience: float = 1.0) -> bool:
    """Kill the group's members until it can be removed; gives up after `patience` seconds
    (what is left of a fork bomb may take that long to die; the next reap retries)."""
    for inner, _dirs, _files in sorted(os.walk(group), reverse=True)[:-1]:  # nested groups first
        try:
            os.rmdir(inner)
        except OSError:
            pass
    deadline = time.monotonic() + patience
    while True:
        try:
            os.rmdir(group)
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                return False
        _stop_and_thaw(group)
        time.sleep(0.002)


def kill_members(group: str) -> None:
    """SIGKILL every process of a cgroup (v1 `cgroup.procs`); nothing when it is gone."""
    try:
        with open(os.path.join(group, "cgroup.procs")) as handle:
            pids = [int(p) for p in handle.read().split()]
    except OSError:
        return
    for member in pids:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _make_group(root: str, pid: int) -> str:
    group = os.path.join(root, str(pid))
    os.makedirs(group, exist_ok=True)
    return group


def write_setting(group: str, name: str, value: int) -> None:
    with open(os.path.join(group, name), "w") as handle:
        handle.write(str(value))


def join_own_cgroups() -> None:
    """Create this process's memory, pids and freezer groups and move into them, with no limits yet.
    A zygote's spare child calls this before it knows its function: the move waits for an
    RCU grace period on cgroup v1 (10+ ms), which then stays off the cold-start path."""
    try:
        instance_groups()
    except OSError:
        pass  # set_limits() tries again, and reports what fails


def instance_groups() -> dict[str, str]:
    """This instance's own groups by controller, created and joined on the first call.
    Later calls return the same groups: once joined, /proc/self/cgroup names the instance's
    group, so the roots must not be computed again (they would nest a group in it)."""
    if not _joined:
        pid = own_name()
        for controller, root in cgroup_roots().items():
            group = _make_group(root, pid)
            write_setting(group, "cgroup.procs", 0)  # 0: this process (its host pid is not ours to name)
            _joined[controller] = group
    return dict(_joined)
