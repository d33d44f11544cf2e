"""cgroup v1 groups of instances: a memory and a pids group per instance, nested in the
zygote's own cgroup (`<controller>/<own group>/squall/<pid>`), created when the instance
starts (or ahead of time by a spare child), removed when it is reaped, and read for
out-of-memory kills. Used by squall/runtime/sandbox.py and the zygote."""

from __future__ import annotations

import errno
import os
import signal
import time

CGROUP_MOUNT = "/sys/fs/cgroup"
CGROUP_GROUP = "squall"

_joined: dict[str, str] = {}
"""The groups this instance process joined, by controller (a spare child joins early)."""
_pending: set[str] = set()


def cgroup_roots() -> dict[str, str]:
    """Writable `squall` parent groups by controller ("memory", "pids"), nested in this
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
            if controller not in ("memory", "pids"):
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
    if root is None:
        return False
    try:
        with open(os.path.join(root, str(pid), "memory.oom_control")) as handle:
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
    for group in sorted(_pending, key=lambda g: "/pids/" not in g):  # pids first: stops forks
        if _remove_group(group):
            _pending.discard(group)


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
    try:
        write_setting(group, "pids.max", 0)  # what is left of a fork bomb can fork no more
    except OSError:
        pass
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
        _kill_members(group)
        time.sleep(0.002)


def _kill_members(group: str) -> None:
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
    """Create this process's memory and pids groups and move into them, with no limits yet.
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
        pid = os.getpid()
        for controller, root in cgroup_roots().items():
            group = _make_group(root, pid)
            write_setting(group, "cgroup.procs", pid)
            _joined[controller] = group
    return dict(_joined)
