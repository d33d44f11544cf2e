"""The dependency cache: which files of a project its requirements.txt installs from, the
cache key of an install, and installing it once into `DATA/deps/<key>`.

The key covers everything the install reads from the project and the interpreter it is
for: the requirement lines (comments left out) of requirements.txt and of every `-r` /
`-c` file it names, the content of every local path a line refers to (a package folder
`./vendor`, `-e ./x`, `file:` URLs, wheels and archives, `--find-links` folders), and the
Python version and platform. Two projects with the same `./vendor` line but different
vendor folders get different keys; editing a local package changes the key.

The build (squall/runtime/build.py) sees exactly those inputs and nothing else of the
project, so what is cached is what the key says. A line that refers to a path outside the
project is refused: its content could not be keyed, and the server's files are not the
project's to read.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import sys
import sysconfig
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from squall.bundle import file_digest, touch_folder
from squall.exceptions import BundleError
from squall.runtime.build import BuildLimits, run_build

REQUIREMENTS = "requirements.txt"
KEY_VERSION = "squall-deps-2"
"""Changes whenever what the key covers changes, so that older installs are not reused."""
NESTED_FILE_OPTIONS = {"-r", "--requirement", "-c", "--constraint"}
LOCATION_OPTIONS = {"-e", "--editable", "-f", "--find-links", "-i", "--index-url", "--extra-index-url"}
ARCHIVES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar")
COMMENT = re.compile(r"(^|\s+)#.*$")
URL_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+):")


@dataclass
class Requirements:
    """What a project's requirements.txt installs from: `lines` per requirements file (relative
    path -> lines) and `paths`, the local files and folders the lines refer to (relative)."""

    root: Path
    lines: dict[str, list[str]] = field(default_factory=dict)
    paths: set[str] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not any(self.lines.values())

    def inputs(self) -> list[str]:
        """The relative paths the build copies: the requirements files and the local paths,
        without those already inside another one."""
        every = sorted(set(self.lines) | self.paths)
        return [p for p in every if not any(_inside(p, other) for other in every if other != p)]

    def key(self, interpreter: str | None = None) -> str:
        """The cache key: requirement lines, local content, and the Python version and platform
        (`interpreter`, by default this one's: `interpreter_tag()`)."""
        digest = hashlib.sha256()
        for part in (KEY_VERSION, interpreter or interpreter_tag()):
            digest.update(part.encode() + b"\0")
        for rel, lines in sorted(self.lines.items()):
            digest.update(f"lines {rel}\0".encode() + "\n".join(lines).encode() + b"\0")
        for rel in sorted(self.paths - set(self.lines)):
            digest.update(f"path {rel}\0".encode())
            for file, executable in tree_files(self.root / rel):
                digest.update(f"{file}\0{int(executable)}\0".encode() + file_digest(self.root / rel / file))
        return digest.hexdigest()[:32]


def interpreter_tag() -> str:
    """The Python an install is for: implementation, full version, ABI and platform."""
    return (f"{sys.implementation.name}-{sys.version} -{sys.implementation.cache_tag}{sys.abiflags} "
            f"{sysconfig.get_platform()}")


def tree_files(path: Path) -> list[tuple[str, bool]]:
    """The regular files of `path` (itself when it is a file: `""`), relative and sorted, each
    with whether it is executable. Links and other special files are left out."""
    if path.is_file():
        return [("", os.access(path, os.X_OK))]
    found = []
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in files:
            full = Path(folder) / name
            if full.is_file() and not full.is_symlink():
                found.append((full.relative_to(path).as_posix(), os.access(full, os.X_OK)))
    return sorted(found)


# -- reading requirements files --------------------------------------------------

def read_requirements(root: Path) -> Requirements:
    """The requirements of the project at `root` (its top-level requirements.txt), with
    the files nested with `-r` / `-c` and the local paths the lines refer to. BundleError
    names the file and line of a reference that leaves the project or cannot be read."""
    found = Requirements(root.resolve())
    if (root / REQUIREMENTS).is_symlink():
        raise BundleError(f"{REQUIREMENTS} is a symbolic link: it must be a file of the project (links are "
                          "not followed, nor packed into bundles)")
    if (root / REQUIREMENTS).is_file():
        _read_file(found, REQUIREMENTS)
    return found


def requirement_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of a requirements file as pip reads them: continuation lines joined,
    comments (`#` at the start or after a space) and blank lines left out; with line numbers."""
    lines: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        start, text = pending if pending else (number, "")
        text += raw
        if text.endswith("\\"):
            pending = (start, text[:-1])
            continue
        pending = None
        text = COMMENT.sub("", text).strip()
        if text:
            lines.append((start, text))
    if pending and pending[1].strip():
        lines.append((pending[0], COMMENT.sub("", pending[1]).strip()))
    return lines


def _read_file(found: Requirements, rel: str) -> None:
    if rel in found.lines:
        return  # a cycle of -r files: pip refuses it, the key need not
    numbered = requirement_lines(found.root / rel)
    found.lines[rel] = [text for _, text in numbered]
    for number, text in numbered:
        where = f"{rel}:{number}"
        try:
            tokens = shlex.split(text)
        except ValueError as exc:
            raise BundleError(f"{where}: cannot read the line ({exc}): {text[:200]}") from None
        for option, value in _locations(tokens):
            _note_location(found, rel, where, option, value)


def _locations(tokens: list[str]) -> list[tuple[str | None, str]]:
    """(option, value) for each token of a line that may name a file: values of path-taking
    options, and the bare tokens of a requirement (option None)."""
    found: list[tuple[str | None, str]] = []
    options = NESTED_FILE_OPTIONS | LOCATION_OPTIONS
    index = 0
    while index < len(tokens):
        token = tokens[index]
        name, _, attached = token.partition("=")
        if token in options and index + 1 < len(tokens):
            found.append((token, tokens[index + 1]))
            index += 1
        elif name in options and token.startswith("--"):
            found.append((name, attached))
        elif token[:2] in options and len(token) > 2 and not token.startswith("--"):
            found.append((token[:2], token[2:]))
        elif not token.startswith("-"):
            found.append((None, token.split("@", 1)[1].strip() if _named_url(token) else token))
        index += 1
    return found


def _named_url(token: str) -> bool:
    """`name@url` (PEP 508) in one token, the name not looking like a path."""
    name, at, rest = token.partition("@")
    return bool(at and rest and name and not _looks_like_path(name))


def _note_location(found: Requirements, rel: str, where: str, option: str | None, value: str) -> None:
    path = _local_path(value, option)
    if path is None:
        return
    here, top = (found.root / rel).parent, found.root
    bases = [here] if option in NESTED_FILE_OPTIONS else [here, top] if option in ("-f", "--find-links") else [top]
    resolved = _resolve_inside(found.root, bases, path, where, value)
    if resolved is None:
        if option in NESTED_FILE_OPTIONS:
            raise BundleError(f"{where}: {option} {value}: no such file in the project")
        return
    relative = resolved.relative_to(found.root).as_posix() if resolved != found.root else "."
    if option in NESTED_FILE_OPTIONS:
        if not resolved.is_file():
            raise BundleError(f"{where}: {option} {value}: not a file")
        _read_file(found, relative)
    else:
        found.paths.add(relative)


def _local_path(value: str, option: str | None) -> str | None:
    """The path `value` names when it is a local one (a plain path or a `file:` URL), else None."""
    scheme = URL_SCHEME.match(value)
    if scheme and scheme.group(1).lower() == "file":
        parsed = urllib.parse.urlparse(value)
        return urllib.request.url2pathname(parsed.netloc + parsed.path if parsed.netloc not in ("", "localhost")
                                           else parsed.path) or "."
    if scheme:
        return None  # https:, git+https:, ...: not a file of the project
    if option in NESTED_FILE_OPTIONS:
        return value
    path = re.sub(r"\[[^\]]*\]$", "", value)  # ./pkg[extra]
    return path if _looks_like_path(path) or path.endswith(ARCHIVES) or option is not None else None


def _looks_like_path(text: str) -> bool:
    return "/" in text or text.startswith((".", "~")) or os.sep in text


def _resolve_inside(root: Path, bases: list[Path], path: str, where: str, value: str) -> Path | None:
    """The existing file or folder `path` names (relative to the project root, or to the
    requirements file's folder), which must lie inside the project; None when it names
    nothing that exists (a package name that looked like a path: pip decides)."""
    outside = BundleError(f"{where}: {value!r} refers to a path outside the project; a requirement may only "
                          "refer to files inside the project folder (the server's own pip configuration, such "
                          "as its index and PIP_FIND_LINKS, applies to every build)")
    if path.startswith("~"):
        raise outside
    candidates = [Path(os.path.normpath(base / path)) for base in bases]
    for candidate in candidates:
        if candidate.exists():
            real = candidate.resolve()
            if not _inside(str(real), str(root)):
                raise outside
            return real
    if any(not _inside(str(candidate), str(root)) for candidate in candidates):
        raise outside
    return None


def _inside(path: str, folder: str) -> bool:
    return folder == "." or path == folder or path.startswith(folder.rstrip("/") + "/")


# -- installing ------------------------------------------------------------------

def install_requirements(root: Path, deps_root: Path, hidden: list[Path],
                         limits: BuildLimits | None = None) -> str | None:
    """Install the requirements of the project at `root` into `deps_root/<key>` once (see the
    module docstring for the key), in the build sandbox; returns the key, or None when there
    is nothing to install. `hidden`: the folders the build must not see (the data dirs).
    Raises BundleError with pip's output or the limit the build broke; nothing is stored then."""
    requirements = read_requirements(root)
    if requirements.empty:
        return None
    key = requirements.key()
    target = deps_root / key
    if touch_folder(target):
        return key
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=deps_root))
    try:
        run_build(requirements.root, requirements.inputs(), staging, hidden, limits or BuildLimits())
        _freeze(staging)
        try:
            staging.rename(target)
        except OSError:
            if not touch_folder(target):  # not another node storing the same key at once
                raise
    finally:
        if staging.exists():
            _remove(staging)
    return key


def _freeze(folder: Path) -> None:
    """Make an installed folder read-only (it is root's, written by the build's root part)."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o555)
    folder.chmod(0o555)


def _remove(folder: Path) -> None:
    for path in (folder, *(p for p in folder.rglob("*") if p.is_dir() and not p.is_symlink())):
        path.chmod(0o700)
    shutil.rmtree(folder, ignore_errors=True)
