"""Project bundles: pack a project folder into one tar.gz, unpack it safely, hash code trees,
and install a project's requirements.txt into a cached dependency folder.

A bundle also carries BUNDLE_INFO, what the client resolved: the project's name and the
deploy's provenance (squall/provenance.py), which the server validates."""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path, PurePath
from typing import Any

from squall.exceptions import BundleError
from squall.manifest import load_manifest

MAX_BUNDLE_BYTES = 256 * 1024 * 1024
PIP_TIMEOUT = 600
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


def unpack_bundle(data: bytes, dest: Path) -> None:
    """Extract a bundle into `dest`, refusing links, devices and paths that leave `dest`."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"bundle is over the {MAX_BUNDLE_BYTES // 2**20} MB limit")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar.getmembers():
                if not (member.isfile() or member.isdir()):
                    raise BundleError(f"bundle entry {member.name!r} is not a regular file")
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"the uploaded bundle is not a valid tar.gz: {exc}") from exc


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
    """sha256 over the relative paths and contents of the files under `root`."""
    digest = hashlib.sha256()
    for rel in files if files is not None else project_files(root):
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256((root / rel).read_bytes()).digest())
    return digest.hexdigest()


def requirement_lines(requirements: Path) -> list[str]:
    if not requirements.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines())
    return [line for line in lines if line]


def install_requirements(requirements: Path, deps_root: Path) -> str | None:
    """Install `requirements` into `deps_root/<hash>` once (cached by content); returns the
    hash, or None when there is nothing to install. Raises BundleError with pip's output."""
    lines = requirement_lines(requirements)
    if not lines:
        return None
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:32]
    target = deps_root / digest
    if touch_folder(target):
        return digest
    staging = deps_root / f".{digest}.tmp-{os.getpid()}"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-input", "--target", str(staging), "-r", str(requirements)]
    try:
        result = subprocess.run(command, check=False, cwd=requirements.parent, capture_output=True, text=True,
                                timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        shutil.rmtree(staging, ignore_errors=True)
        raise BundleError(f"installing requirements.txt took longer than {PIP_TIMEOUT} s; "
                          "nothing was deployed") from None
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = (result.stderr or result.stdout).strip().splitlines()[-15:]
        raise BundleError("installing requirements.txt failed:\n" + "\n".join(tail))
    staging.rename(target)
    return digest


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
