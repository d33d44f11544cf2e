"""Project bundles: pack a project folder into one tar.gz, unpack it safely and within
bounds (`UnpackLimits`: the unpacked size and the number of entries, counted while
streaming), and hash code trees in chunks. Installing a project's requirements.txt is
squall/deps.py's.

A bundle also carries BUNDLE_INFO, what the client resolved: the project's name and the
deploy's provenance (squall/provenance.py), which the server validates."""

from __future__ import annotations

import bz2
import fnmatch
import gzip
import hashlib
import io
import json
import lzma
import os
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import IO, Any

from squall.exceptions import BundleError
from squall.manifest import load_manifest
from squall.settings import BUNDLE_MAX_FILES, BUNDLE_MAX_UNPACKED_MB, Settings

MB = 1024 * 1024
MAX_BUNDLE_BYTES = 256 * MB
"""A bundle's size as uploaded (compressed)."""
MAX_HEADER_BYTES = 1 * MB
"""Cap on one tar extended header (pax, GNU long name): tarfile reads each one whole into memory."""
CHUNK = 1 * MB
IGNORED_DIRS = {".git", ".hg", ".svn", ".squall", "__pycache__", ".venv", "venv", "node_modules",
                ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".tox"}
BUNDLE_INFO = ".squall-bundle.json"
"""A member of every bundle saying what the client resolved (project name, provenance)."""
IGNORED_FILES = ("*.pyc", "*.pyo", ".DS_Store", BUNDLE_INFO)
IGNORE_FILE = ".squallignore"


def _ignore_patterns(root: Path) -> list[str]:
    path = root / IGNORE_FILE
    if not path.is_file():
        return list(IGNORED_FILES)
    lines = (line.strip() for line in path.read_text().splitlines())
    return list(IGNORED_FILES) + [line.rstrip("/") for line in lines if line and not line.startswith("#")]


class BundleRules:
    """Which paths of a project folder stay out of its bundle: VCS folders, caches, venvs
    (IGNORED_DIRS), compiled files, and whatever `.squallignore` lists (fnmatch patterns on
    the relative path or on the name)."""

    def __init__(self, root: Path) -> None:
        self.patterns = _ignore_patterns(root)

    def ignored(self, rel: str, name: str) -> bool:
        return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in self.patterns)

    def folder_left_out(self, rel: PurePath) -> bool:
        return rel.name in IGNORED_DIRS or self.ignored(rel.as_posix(), rel.name)

    def left_out(self, rel: PurePath) -> bool:
        """Whether the file at `rel` (relative to the root) is left out, by its name or a folder on its way."""
        folders = [PurePath(*rel.parts[:i]) for i in range(1, len(rel.parts))]
        return any(self.folder_left_out(f) for f in folders) or self.ignored(rel.as_posix(), rel.name)


def project_files(root: Path) -> list[Path]:
    """Files of the project, relative to `root`, sorted, without what BundleRules leaves out
    and without symbolic links."""
    rules = BundleRules(root)
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        base = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not rules.folder_left_out(base / d))
        found += [base / f for f in files
                  if not rules.ignored(str(base / f), f) and not (Path(folder) / f).is_symlink()]
    return sorted(found)


def pack_project(project_dir: Path, provenance: dict[str, Any] | None = None) -> bytes:
    """Validate `project_dir/squall.yaml` and pack the project into a deterministic tar.gz.

    The bundle also carries BUNDLE_INFO with the project's name as resolved here (the
    folder's name when the manifest gives none), so the server names it the same way, and
    `provenance` when given (where the deploy comes from: squall/provenance.py)."""
    root = Path(project_dir).resolve()
    manifest = load_manifest(root)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        resolved: dict[str, Any] = {"project": manifest.name}
        if provenance is not None:
            resolved["provenance"] = provenance
        info_data = json.dumps(resolved).encode()
        info = tarfile.TarInfo(BUNDLE_INFO)
        info.size, info.mode = len(info_data), 0o644
        tar.addfile(info, io.BytesIO(info_data))
        for rel in project_files(root):
            info = tarfile.TarInfo(rel.as_posix())
            data = (root / rel).read_bytes()
            info.size, info.mtime = len(data), 0
            info.mode = 0o755 if os.access(root / rel, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    if buffer.tell() > MAX_BUNDLE_BYTES:
        raise BundleError(f"the project packs to {buffer.tell() // 2**20} MB, over the "
                          f"{MAX_BUNDLE_BYTES // 2**20} MB bundle limit (list big files in {IGNORE_FILE})")
    return buffer.getvalue()


class BundleTooLarge(BundleError):
    """A bundle over one of its limits (HTTP 413, CLI exit 2)."""

    status_code = 413


@dataclass(frozen=True)
class UnpackLimits:
    """What one bundle may unpack to: `max_bytes` of file content, `max_entries` files and folders."""

    max_bytes: int = BUNDLE_MAX_UNPACKED_MB.default * MB
    max_entries: int = BUNDLE_MAX_FILES.default

    @classmethod
    def from_settings(cls, settings: Settings) -> UnpackLimits:
        """The server's SQUALL_BUNDLE_MAX_UNPACKED_MB and SQUALL_BUNDLE_MAX_FILES."""
        return cls(max_bytes=settings.bundle_max_unpacked_mb * MB, max_entries=settings.bundle_max_files)

    def size_error(self, name: str, size: int) -> BundleTooLarge:
        return BundleTooLarge(f"the bundle unpacks to more than {self.max_bytes // MB} MB (the limit on a bundle's "
                              f"unpacked size, {BUNDLE_MAX_UNPACKED_MB.name}) at entry {name!r} "
                              f"({_mb(size)}); nothing was deployed")

    def stream_error(self) -> BundleTooLarge:
        return BundleTooLarge(f"the bundle unpacks to more than {self.max_bytes // MB} MB with its tar headers "
                              f"(the limit on a bundle's unpacked size, {BUNDLE_MAX_UNPACKED_MB.name}); "
                              f"nothing was deployed")

    def entries_error(self) -> BundleTooLarge:
        return BundleTooLarge(f"the bundle holds more than {self.max_entries} files and folders (the limit on a "
                              f"bundle's file count, {BUNDLE_MAX_FILES.name}); nothing was deployed")


def _mb(size: int) -> str:
    return f"{size / MB:,.1f} MB" if size >= MB else f"{size:,} bytes"


class _GuardedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses, before tarfile reads them into memory, extended headers over
    MAX_HEADER_BYTES and GNU sparse members (whose extension blocks tarfile collects)."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                         tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK) and self.size > MAX_HEADER_BYTES:
            raise BundleTooLarge(f"the bundle has a tar extended header of {_mb(self.size)}, over the "
                                 f"{MAX_HEADER_BYTES // MB} MB limit on one header; nothing was deployed")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise BundleError(f"bundle entry {self.name!r} is a sparse file; only regular files and folders "
                              "are allowed")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


class _Counted(io.RawIOBase):
    """The decompressed bundle, read no further than `limit` bytes (headers and padding
    included): whatever tarfile does, it never sees more than that."""

    def __init__(self, inner: IO[bytes], limit: int, error: BundleTooLarge) -> None:
        self.inner, self.left, self.error = inner, limit, error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        data = self.inner.read(min(len(view), self.left + 1))
        if len(data) > self.left:
            raise self.error
        self.left -= len(data)
        view[:len(data)] = data
        return len(data)


def _decompressed(data: bytes) -> IO[bytes]:
    """A streaming reader of the tar inside `data` (gzip, bzip2, xz or none)."""
    raw = io.BytesIO(data)
    if data[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]  # a binary file object
    if data[:3] == b"BZh":
        return bz2.BZ2File(raw)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw)
    return raw


def unpack_bundle(data: bytes, dest: Path, limits: UnpackLimits = UnpackLimits()) -> None:
    """Extract a bundle into `dest` as a stream, one entry at a time: regular files and folders
    only, no path that leaves `dest`, at most `limits.max_entries` entries and
    `limits.max_bytes` of content, counted from each entry's declared size and again from the
    bytes actually written. Files become 0644 (0755 when executable), folders 0755. Raises
    BundleTooLarge (413) over a limit, BundleError (400) for anything else wrong; `dest` may
    then hold part of the bundle (the caller removes it)."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleTooLarge(f"bundle is over the {MAX_BUNDLE_BYTES // MB} MB limit")
    overhead = limits.max_entries * 3 * tarfile.BLOCKSIZE + 2 * MAX_HEADER_BYTES + tarfile.RECORDSIZE
    stream = io.BufferedReader(_Counted(_decompressed(data), limits.max_bytes + overhead, limits.stream_error()))
    written, entries = 0, 0
    try:
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=_GuardedTarInfo) as tar:
            for member in tar:
                entries += 1
                if entries > limits.max_entries:
                    raise limits.entries_error()
                target = _member_path(dest, member)
                if member.isdir():
                    target.mkdir(mode=0o755, parents=True, exist_ok=True)
                    continue
                if written + member.size > limits.max_bytes:
                    raise limits.size_error(member.name, member.size)
                written = _extract_file(tar, member, target, written, limits)
    except (tarfile.TarError, EOFError, OSError, RecursionError, zlib.error, lzma.LZMAError) as exc:
        raise BundleError(f"the uploaded bundle is not a valid tar.gz: {exc}") from exc


def _member_path(dest: Path, member: tarfile.TarInfo) -> Path:
    """Where `member` goes under `dest`; BundleError for a link, a device or a path that leaves `dest`."""
    if not (member.isfile() or member.isdir()):
        raise BundleError(f"bundle entry {member.name!r} is not a regular file or folder "
                          "(links and devices are refused)")
    rel = PurePosixPath(member.name)
    if rel.is_absolute() or ".." in rel.parts or "\0" in member.name or not rel.parts or rel.parts == (".",):
        raise BundleError(f"bundle entry {member.name!r} is not a path inside the project")
    return dest.joinpath(*(part for part in rel.parts if part != "."))


def _extract_file(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, written: int,
                  limits: UnpackLimits) -> int:
    """Write one file, counting what is actually written; the new total."""
    source = tar.extractfile(member)
    assert source is not None  # a regular file
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    mode = 0o755 if member.mode & 0o111 else 0o644
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with open(fd, "wb") as out:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > limits.max_bytes:
                raise limits.size_error(member.name, member.size)
            out.write(chunk)
    os.chmod(target, mode)
    return written


def bundle_info(root: Path) -> dict[str, Any]:
    """What the client put in BUNDLE_INFO of an unpacked bundle (`{}` when it is missing or unreadable)."""
    try:
        found = json.loads((root / BUNDLE_INFO).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def bundle_project_name(root: Path) -> str | None:
    """The project name the client put in an unpacked bundle, if any."""
    value = bundle_info(root).get("project")
    return value if isinstance(value, str) else None


def bundle_provenance(root: Path) -> Any:
    """The provenance the client put in an unpacked bundle, as it came (None when there is none);
    squall.provenance.Provenance.from_bundle validates it."""
    return bundle_info(root).get("provenance")


def hash_tree(root: Path, files: list[Path] | None = None) -> str:
    """sha256 over the relative paths and contents of the files under `root` (read in chunks)."""
    digest = hashlib.sha256()
    for rel in files if files is not None else project_files(root):
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update(file_digest(root / rel))
    return digest.hexdigest()


def file_digest(path: Path) -> bytes:
    """sha256 of one file's content, read in chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").digest()


def touch_folder(folder: Path) -> bool:
    """Mark a stored code or dependency folder as just used, so that housekeeping (which deletes
    unused folders only once they are older than a grace period) leaves it alone while the
    deploy reusing it is stored; False when it does not exist (or was just deleted)."""
    try:
        os.utime(folder)
    except FileNotFoundError:
        return False
    except PermissionError:
        pass  # another user's folder: used as it is
    return folder.is_dir()
