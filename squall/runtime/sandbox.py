"""The instance sandbox: limits and isolation an instance process applies to itself
before the user's code is imported (see docs/sandbox.md).

`enter(settings)` runs inside a new instance process (forked from the zygote, still
root), after the init frame and before the environment is set up. Its steps, in order:

0. PID namespace: the instance must be pid 1 of a PID namespace of its own (the zygote
   forks every child into a new one, `fork_in_new_pid_namespace`): it cannot see, signal
   or ptrace any process but its own children, and when it dies the kernel kills every
   process left in the namespace;
1. mount and IPC namespaces: `unshare(CLONE_NEWNS | CLONE_NEWIPC)`, then `/` is made
   recursively private, so that nothing below leaks back to the host; System V shared
   memory, semaphores and message queues, and POSIX message queues, are the instance's own
   (about 20 us more than the mount namespace alone);
1b. private /run: an empty read-only tmpfs on `/run` (and on `/var/run` when it is not a
   link to it), so that no Unix socket of the host's services (databases, D-Bus, Docker)
   can be reached by its path; `/run/lock` is made in it for the scratch bind, and a
   `/etc/resolv.conf` that points into `/run` is bound back. Sockets at other paths (a
   home dir, `/var/lib/...`) are not hidden: see docs/sandbox.md;
1c. private /dev (`private_dev`): a read-only tmpfs with null, zero, full, random,
   urandom, tty and ptmx, the fd/stdin/stdout/stderr links, the host's /dev/pts (bound)
   and an empty /dev/shm; nothing else of the host's /dev (no `/dev/log` socket, no
   `/dev/kmsg`). About 60 us;
2. private scratch: a fresh tmpfs on `/tmp` (`size=tmp_mb`, mode 1777), also bound on
   the host's other world-writable places (`/var/tmp`, `/dev/shm`, `/run/lock`) so that
   all of them share one cap and nothing outlives the instance. This comes before the
   next step because the node's data dir may itself live under `/tmp`;
3. hidden dirs: an empty tmpfs over each `hidden_dirs` entry (the node's data dir),
   then each `code_dirs` entry bound back at its own path, read-only, and the tmpfs made
   read-only too. The code dirs are opened (O_PATH) in the new namespace before anything
   is hidden, and bound from those descriptors;
4. `/proc` mounted again for the instance's PID namespace, with `hidepid=invisible`: the
   function sees its own processes only (not the server's, not other instances');
5. `network: none`: `unshare(CLONE_NEWNET)`, a network namespace without interfaces;
6. cgroup v1 memory, pids and freezer groups `<controller>/<our cgroup>/squall/<host pid>`
   (nested in the zygote's own group, which is `/` on most hosts; squall/runtime/cgroups.py),
   with `memory.limit_in_bytes`
   (and `memory.memsw.limit_in_bytes`) = `memory_mb` and `pids.max` = `nproc`. When the
   controllers are not writable (detected once per process) memory falls back to
   RLIMIT_AS and processes to RLIMIT_NPROC, both weaker (see `set_limits`);
7. rlimits: RLIMIT_NOFILE = `nofile`, RLIMIT_FSIZE just above `tmp_mb` (so that a full
   `/tmp` answers ENOSPC, not EFBIG), RLIMIT_CORE = 0. RLIMIT_NPROC is left alone when the
   pids cgroup works: it counts every process of the *uid*, which all instances of a
   function share, so a per-instance value would let one instance's fork bomb stop the
   function's other instances from starting a thread. The pids cgroup is the real,
   per-instance cap;
8. inherited descriptors other than 0-2 and `keep_fds` are closed (the zygote's wake-up
   pipe and epoll descriptor must not reach user code);
9. privileges: `setgroups([])`, `setgid(gid)`, `setuid(uid)` (all capabilities go), then
   `PR_SET_NO_NEW_PRIVS`. The node gives every function a uid and gid of its own
   (squall/node/specs.py, `FunctionUids`; 65534 `nobody` when the settings name none),
   so that even a process the function `execve`s (dumpable again) is out of reach of every
   other function: another uid may not ptrace it, signal it or read its /proc files;
9b. Landlock scopes (`scope_landlock`, best effort): a Landlock domain with no file or
   network rule, scoping abstract Unix sockets and signals: the instance and what it starts
   can connect to no abstract socket (`@name`) made outside it (the host's, the node's,
   another instance's) and signal no process outside it. Where the kernel has no Landlock
   ABI >= 6 the step is skipped with a note in the function's logs, required or not
   (`StepUnsupported`): the PID namespace already keeps signals in, but abstract sockets
   then stay reachable in the default network mode;
10. a check that every code dir is still readable with that uid.

A step the machine does not allow raises `SandboxError`, so an instance never runs
unsandboxed by accident; with `"required": False` in the settings such a step is skipped
with a warning line in the function's logs instead.

The cgroups of an instance are removed by the zygote when it reaps the instance
(`remove_cgroups`), after killing whatever the instance left running in them.
"""

from __future__ import annotations

import ctypes
import os
import resource
import select
import signal
import stat
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from squall.runtime.cgroups import instance_groups, remember_host_pid, write_setting

NOBODY = 65534
MB = 1024 * 1024
SCRATCH_ALIASES = ("/var/tmp", "/dev/shm", "/run/lock")
RUN_DIRS = ("/run", "/var/run")
"""Where the host's services put their Unix sockets: an empty tmpfs in the sandbox."""
RESOLV_CONF = "/etc/resolv.conf"
RLIMIT_AS_MARGIN_MB = 128
"""RLIMIT_AS fallback: the address space already mapped at `enter` (interpreter, preloaded
modules) plus `memory_mb` plus this much for thread stacks and malloc arenas, which reserve
address space they do not use. Virtual size overstates memory use, so the fallback is loose."""

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1

libc = ctypes.CDLL(None, use_errno=True)  # the C library the interpreter is linked with (also the build's)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.unshare.argtypes = [ctypes.c_int]
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
libc.syscall.restype = ctypes.c_long

SYS_LANDLOCK_CREATE_RULESET = 444  # x86_64 and aarch64 (the generic table) alike
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
LANDLOCK_SCOPE_SIGNAL = 1 << 1
LANDLOCK_SCOPED_ABI = 6
"""The first Landlock ABI with `scoped` (Linux 6.12)."""
DEV_NODES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9),
             "tty": (5, 0), "ptmx": (5, 2)}
"""The character devices of the private /dev (major, minor), each mode 0666."""
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2"}


class _LandlockRulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


_parent_fd: int | None = None
"""A pidfd of the parent whose end kills this process (`die_with_parent`), kept until the
death signal is armed again after the uid change (then closed)."""


def die_with_parent(parent_fd: int | None = None) -> None:
    """Have the kernel SIGKILL this process when its parent ends (at once if it already has).
    The parent is named by a pidfd (`os.pidfd_open`) it opened on itself before the fork:
    from inside a PID namespace of its own the parent is outside, and getppid() is 0 whether
    it lives or not. Changing the uid clears the setting: `drop_privileges` arms it again."""
    global _parent_fd
    _parent_fd = parent_fd if parent_fd is not None else _parent_fd
    if _parent_fd is None:
        return
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if select.select([_parent_fd], [], [], 0)[0]:  # a pidfd is readable once its process ended
        os._exit(0)


def fork_in_new_pid_namespace(own_namespace: int) -> int:
    """os.fork(), the child being pid 1 of a new PID namespace; `own_namespace` is a descriptor
    of the caller's own (`/proc/self/ns/pid`), to which its later children return. A machine
    that does not allow it (no CAP_SYS_ADMIN) gets a plain fork: the child's sandbox then
    refuses to run (`require_own_pid_namespace`)."""
    if libc.unshare(CLONE_NEWPID) != 0:
        return os.fork()
    try:
        pid = os.fork()
    except OSError:
        libc.setns(own_namespace, CLONE_NEWPID)
        raise
    if pid != 0:  # the next unshare needs the caller's children back in its own namespace
        check(libc.setns(own_namespace, CLONE_NEWPID), "setns(CLONE_NEWPID)")
    return pid


class SandboxError(Exception):
    """A sandbox step failed: the instance must not run user code."""


class StepUnsupported(SandboxError):
    """A best-effort step this kernel cannot take (Landlock scoping): skipped with a note,
    required or not, since what it adds is covered in part by the other steps."""


@dataclass(frozen=True)
class Settings:
    """The settings dict of `Node.sandbox()`, checked."""

    memory_mb: int
    tmp_mb: int
    network: str
    code_dirs: tuple[str, ...]
    hidden_dirs: tuple[str, ...]
    nofile: int
    nproc: int
    required: bool
    uid: int = NOBODY
    gid: int = NOBODY

    @classmethod
    def parse(cls, settings: dict[str, Any]) -> Settings:
        return cls(memory_mb=int(settings["memory_mb"]), tmp_mb=int(settings["tmp_mb"]),
                   network=str(settings.get("network", "default")),
                   code_dirs=tuple(os.path.realpath(d) for d in settings.get("code_dirs", ())),
                   hidden_dirs=tuple(os.path.realpath(d) for d in settings.get("hidden_dirs", ())),
                   nofile=int(settings.get("nofile", 1024)), nproc=int(settings.get("nproc", 1024)),
                   required=bool(settings.get("required", True)),
                   uid=int(settings.get("uid", NOBODY)), gid=int(settings.get("gid", NOBODY)))


def enter(settings: dict[str, Any], keep_fds: Iterable[int] = ()) -> None:
    """Lock this process into the sandbox described by `settings` (see the module docstring)."""
    s = Settings.parse(settings)
    binds = s.code_dirs + platform_dirs()
    bind_fds: list[int] = []  # opened inside the new namespace: a bind needs a mount of ours
    if s.uid == 0 or s.gid == 0:
        raise SandboxError(f"refusing to run a function as uid {s.uid} / gid {s.gid} (root)")
    steps: list[tuple[str, Callable[[], None]]] = [
        ("pid namespace", require_own_pid_namespace),
        ("mount namespace", private_mount_namespace),
        ("code dirs", lambda: bind_fds.extend(_open_paths(binds))),
        ("private /run", private_run),
        ("private /dev", private_dev),
        ("private /tmp", lambda: private_tmp(s.tmp_mb)),
        ("hidden dirs", lambda: hide_dirs(s.hidden_dirs, dict(zip(binds, bind_fds)), s.code_dirs, bind_fds)),
        ("private /proc", private_proc),
        ("network", lambda: isolate_network(s.network)),
        ("limits", lambda: set_limits(s)),
        ("descriptors", lambda: close_inherited_fds(set(keep_fds))),
        ("privileges", lambda: drop_privileges(s.uid, s.gid)),
        ("landlock", scope_landlock),
        ("readable code", lambda: check_readable(s.code_dirs, s.uid)),
    ]
    try:
        for name, step in steps:
            try:
                step()
            except StepUnsupported as exc:
                print(f"[NOTE] sandbox step '{name}' skipped: {exc}", file=sys.stderr, flush=True)
            except (OSError, SandboxError) as exc:
                if s.required:
                    raise SandboxError(f"sandbox step '{name}' failed: {exc}") from exc
                print(f"[WARNING] sandbox step '{name}' skipped: {exc}", file=sys.stderr, flush=True)
    finally:
        _close_all(bind_fds)


# -- the steps ---------------------------------------------------------------

def require_own_pid_namespace() -> None:
    """The instance must be pid 1 of its own PID namespace (made by the zygote's fork). Its
    host pid, which names its cgroups, is read first, while /proc is still the host's."""
    remember_host_pid()
    if os.getpid() != 1:
        raise SandboxError(f"the instance is pid {os.getpid()}, not pid 1 of a PID namespace of its own "
                           "(the zygote forks each instance into one; it needs CAP_SYS_ADMIN)")


def private_mount_namespace() -> None:
    check(libc.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare(CLONE_NEWNS | CLONE_NEWIPC)")
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def private_run() -> None:
    """An empty read-only tmpfs on /run (and /var/run unless it links there): no host Unix
    socket stays reachable by path. /run/lock is made for the scratch bind of `private_tmp`;
    a resolv.conf that lives in /run (systemd-resolved) is bound back, so DNS keeps working."""
    resolv = os.path.realpath(RESOLV_CONF)
    keep = resolv if any(_inside(resolv, run) for run in RUN_DIRS) and os.path.isfile(resolv) else None
    keep_fd = os.open(keep, os.O_PATH | os.O_CLOEXEC) if keep else None
    try:
        for run in RUN_DIRS:
            if os.path.isdir(run) and not os.path.islink(run):
                mount("tmpfs", run, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,nr_inodes=1024,mode=0755")
                os.mkdir(os.path.join(run, "lock"), 0o755)
        if keep is not None and keep_fd is not None:
            os.makedirs(os.path.dirname(keep), mode=0o755, exist_ok=True)
            os.close(os.open(keep, os.O_WRONLY | os.O_CREAT, 0o644))
            mount(f"/proc/self/fd/{keep_fd}", keep, None, MS_BIND)
        for run in RUN_DIRS:
            if os.path.isdir(run) and not os.path.islink(run):
                mount(None, run, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    finally:
        if keep_fd is not None:
            os.close(keep_fd)


def private_dev() -> None:
    """A /dev of its own: a tmpfs holding only DEV_NODES, DEV_LINKS, the host's `/dev/pts`
    (bound: ptys keep working through `/dev/ptmx`) and an empty `/dev/shm` (the private
    /tmp is bound there next), read-only. No host socket (`/dev/log`), no other device
    (`/dev/kmsg`, `/dev/fuse`, disks, GPUs) is there. The nodes are made with mknod; where
    the machine refuses that (no CAP_MKNOD), the host's nodes are bound instead (slower)."""
    pts = os.open("/dev/pts", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) if os.path.isdir("/dev/pts") else None
    try:
        try:
            _fill_dev(pts, None)
        except PermissionError:
            check(libc.umount2(b"/dev", MNT_DETACH), "umount /dev")
            host = {name: os.open(f"/dev/{name}", os.O_PATH | os.O_CLOEXEC)
                    for name in DEV_NODES if os.path.exists(f"/dev/{name}")}
            try:
                _fill_dev(pts, host)
            finally:
                _close_all(list(host.values()))
    finally:
        if pts is not None:
            os.close(pts)


def _fill_dev(pts: int | None, host: dict[str, int] | None) -> None:
    """A tmpfs on /dev with DEV_NODES (made, or bound from `host` descriptors), DEV_LINKS,
    /dev/shm and /dev/pts (bound from `pts`), then read-only."""
    mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,nr_inodes=64,mode=0755")
    umask = os.umask(0)
    try:
        for name, (major, minor) in DEV_NODES.items():
            path = f"/dev/{name}"
            if host is None:
                os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            elif name in host:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o666))
                mount(f"/proc/self/fd/{host[name]}", path, None, MS_BIND)
        for name, target in DEV_LINKS.items():
            os.symlink(target, f"/dev/{name}")
        os.mkdir("/dev/shm", 0o1777)
        if pts is not None:
            os.mkdir("/dev/pts", 0o755)
            mount(f"/proc/self/fd/{pts}", "/dev/pts", None, MS_BIND | MS_REC)
    finally:
        os.umask(umask)
    mount(None, "/dev", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)


def private_tmp(tmp_mb: int) -> None:
    """A fresh tmpfs on /tmp, also bound on the other world-writable scratch dirs."""
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_mb}m,mode=1777")
    for alias in SCRATCH_ALIASES:
        if os.path.isdir(alias) and not os.path.islink(alias):
            mount("/tmp", alias, None, MS_BIND)


def hide_dirs(hidden: Iterable[str], bind_fds: dict[str, int], code_dirs: Iterable[str],
              opened: list[int]) -> None:
    """An empty read-only tmpfs over each hidden dir and over each folder that uid nobody
    could not cross on the way to a bound dir (such as a 0700 /root holding the Python
    install); then the code dirs, and the platform dirs behind such folders, bound back
    read-only from descriptors opened before (closed here: `opened`). Platform dirs that
    were under /tmp (a checkout in /tmp) are bound back too, and a hidden dir inside one
    is covered again after the bind. A hidden dir that was under /tmp is otherwise gone
    already: it is made again in the new /tmp."""
    try:
        code = set(code_dirs)
        blocked = {_blocked_ancestor(path) for path in bind_fds}
        covers = sorted(set(hidden) | {b for b in blocked if b is not None}, key=len)
        replaced = [*covers, "/tmp", *SCRATCH_ALIASES, *RUN_DIRS]  # the private /tmp and /run hid what was under them
        binds = {path: fd for path, fd in bind_fds.items()
                 if path in code or any(_inside(path, cover) for cover in replaced)}
        _hide_dirs(covers, binds)
    finally:
        _close_all(opened)


def _hide_dirs(hidden: list[str], binds: dict[str, int]) -> None:
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    for path in hidden:
        os.makedirs(path, mode=0o755, exist_ok=True)
        mount("tmpfs", path, "tmpfs", flags, "size=64k,nr_inodes=1024,mode=0755")
    inside_hidden = {path for path in binds if any(_inside(path, cover) for cover in hidden)}
    outer = [path for path in binds if path not in inside_hidden]
    _bind_read_only(sorted(outer, key=len), binds)
    for path in hidden:  # a bound platform dir (a checkout under /tmp) may hold a hidden dir again
        if any(_inside(path, bound) and path != bound for bound in outer) and os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", flags, "size=64k,nr_inodes=1024,mode=0755")
    _bind_read_only(sorted(inside_hidden, key=len), binds)
    for path in hidden:
        mount(None, path, None, MS_REMOUNT | MS_RDONLY | flags)


def _bind_read_only(paths: list[str], binds: dict[str, int]) -> None:
    for path in paths:
        os.makedirs(path, mode=0o755, exist_ok=True)
        mount(f"/proc/self/fd/{binds[path]}", path, None, MS_BIND | MS_REC)
        mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def platform_dirs() -> tuple[str, ...]:
    """What the platform's Python needs readable: its installation and import path."""
    found = [sys.base_prefix, sys.prefix] + [p for p in sys.path if os.path.isabs(p) and os.path.isdir(p)]
    found = list(dict.fromkeys(os.path.realpath(p) for p in found))
    return tuple(p for p in found if not any(p != q and _inside(p, q) for q in found))


def _blocked_ancestor(path: str) -> str | None:
    """The first folder above `path` that others may not cross (no o+x), if any."""
    parts = path.strip("/").split("/")[:-1]
    current = ""
    for part in parts:
        current += "/" + part
        try:
            mode = os.stat(current).st_mode
        except FileNotFoundError:
            return None  # made again (traversable) by a later mount
        if not mode & stat.S_IXOTH:
            return current
    return None


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def private_proc() -> None:
    """A /proc of our own PID namespace, where the function sees only processes of its uid
    (Linux >= 5.8 gives each proc mount its own options)."""
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible")


def isolate_network(network: str) -> None:
    if network == "none":
        check(libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
    elif network != "default":
        raise SandboxError(f"unknown network mode {network!r} (expected 'default' or 'none')")




def set_limits(s: Settings) -> None:
    """cgroups for memory and processes (RLIMIT_AS / RLIMIT_NPROC when not writable), then rlimits."""
    groups = instance_groups()
    if "memory" in groups:
        group = groups["memory"]
        write_setting(group, "memory.limit_in_bytes", s.memory_mb * MB)
        if os.path.exists(os.path.join(group, "memory.memsw.limit_in_bytes")):
            write_setting(group, "memory.memsw.limit_in_bytes", s.memory_mb * MB)
    else:
        mapped = _virtual_size()
        limit = mapped + (s.memory_mb + RLIMIT_AS_MARGIN_MB) * MB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if "pids" in groups:
        write_setting(groups["pids"], "pids.max", s.nproc)
    else:
        resource.setrlimit(resource.RLIMIT_NPROC, (s.nproc, s.nproc))
    resource.setrlimit(resource.RLIMIT_NOFILE, (s.nofile, s.nofile))
    fsize = (s.tmp_mb + 1) * MB
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def close_inherited_fds(keep: set[int]) -> None:
    keep |= {0, 1, 2} | ({_parent_fd} if _parent_fd is not None else set())  # closed by drop_privileges
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the descriptor of the listing itself, already closed


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when it has none (or it is disabled)."""
    version = libc.syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                           ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return max(0, int(version))


def scope_landlock() -> None:
    """A Landlock domain with only scopes (no file or network rule): from here on this process
    and everything it starts cannot connect to an abstract Unix socket (`@name`) made outside
    the domain (the host's, the node's, another instance's), nor signal a process outside it.
    Best effort: StepUnsupported where the kernel has no Landlock ABI >= 6 (the PID namespace
    already keeps signals in; abstract sockets then stay reachable in the default network
    mode). About 5 us."""
    abi = landlock_abi()
    if abi < LANDLOCK_SCOPED_ABI:
        raise StepUnsupported(f"the kernel offers Landlock ABI {abi or 'none'}, scopes need {LANDLOCK_SCOPED_ABI} "
                              "(Linux 6.12): the host's abstract Unix sockets stay reachable")
    attr = _LandlockRulesetAttr(0, 0, LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL)
    ruleset = libc.syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), ctypes.byref(attr),
                           ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        check(-1, "landlock_create_ruleset")
    try:  # needs no_new_privs (drop_privileges) or CAP_SYS_ADMIN
        check(libc.syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)),
              "landlock_restrict_self")
    finally:
        os.close(ruleset)


def drop_privileges(uid: int = NOBODY, gid: int = NOBODY) -> None:
    global _parent_fd
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    die_with_parent()  # the uid change cleared it
    if _parent_fd is not None:  # armed again: the pidfd must not reach user code
        os.close(_parent_fd)
        _parent_fd = None
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def check_readable(code_dirs: Iterable[str], uid: int = NOBODY) -> None:
    for path in code_dirs:
        try:
            os.listdir(path)
        except OSError as exc:
            raise SandboxError(f"code dir {path} is not readable by uid {uid} ({exc.strerror}): "
                               f"its parent folders must be traversable by others (chmod o+x)") from exc


# -- helpers -----------------------------------------------------------------

def _open_paths(paths: Iterable[str]) -> list[int]:
    fds = []
    for path in paths:
        try:
            fds.append(os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            raise SandboxError(f"code dir {path} cannot be opened: {exc.strerror}") from exc
    return fds


def _close_all(fds: list[int]) -> None:
    while fds:
        os.close(fds.pop())


def _virtual_size() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * resource.getpagesize()


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(value: str | None) -> bytes | None:
        return None if value is None else os.fsencode(value)
    check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)),
           f"mount {source or ''} on {target}" + (f" ({data})" if data else ""))


def check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
