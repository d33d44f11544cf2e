"""Bundles without a server: unpacking within bounds (size and entry caps counted while
streaming, oversized tar headers refused unread), hashing in chunks, and the dependency
cache key (squall/deps.py) covering local requirements and the interpreter."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import sysconfig
import tarfile
import zlib
from pathlib import Path
from typing import Sequence

import pytest

from squall.bundle import (
    MB,
    BundleTooLarge,
    UnpackLimits,
    file_digest,
    hash_tree,
    pack_project,
    unpack_bundle,
)
from squall.deps import interpreter_tag, read_requirements
from squall.exceptions import BundleError
from tests.support import write_project


def tar_gz(members: Sequence[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def gzip_of_zeros_member(name: str, size: int) -> bytes:
    """A tar.gz whose one member declares `size` bytes of zeros, compressed as it is made."""
    header = tarfile.TarInfo(name)
    header.size = size
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(header.tobuf(format=tarfile.PAX_FORMAT))]
    zeros = bytes(MB)
    for _ in range(size // MB):
        out.append(compressor.compress(zeros))
    out.append(compressor.compress(bytes(size % MB + 2 * tarfile.RECORDSIZE)))
    out.append(compressor.flush())
    return b"".join(out)


# -- unpacking ----------------------------------------------------------------

def test_a_normal_bundle_unpacks_as_packed(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", {"squall.yaml": "name: p\nfunctions:\n  f:\n    handler: app.h\n",
                                             "app.py": "def h(e, c):\n    return 1\n", "lib/data.txt": "x" * 5000})
    unpack_bundle(pack_project(project), tmp_path / "out")
    assert (tmp_path / "out" / "lib" / "data.txt").read_text() == "x" * 5000
    assert (tmp_path / "out" / "app.py").read_bytes() == (project / "app.py").read_bytes()


def test_a_member_declared_over_the_size_cap_is_refused_before_it_is_written(tmp_path: Path) -> None:
    bomb = gzip_of_zeros_member("big.bin", 64 * MB)
    assert len(bomb) < 200_000
    with pytest.raises(BundleTooLarge) as refused:
        unpack_bundle(bomb, tmp_path / "out", UnpackLimits(max_bytes=8 * MB, max_entries=100))
    assert refused.value.status_code == 413
    message = str(refused.value)
    assert "8 MB" in message and "SQUALL_BUNDLE_MAX_UNPACKED_MB" in message and "big.bin" in message
    assert not (tmp_path / "out" / "big.bin").exists()


def test_the_size_cap_counts_all_files_together(tmp_path: Path) -> None:
    members = [file_member(f"part{i}.bin", os.urandom(300_000)) for i in range(5)]
    with pytest.raises(BundleTooLarge, match="part3.bin"):
        unpack_bundle(tar_gz(members), tmp_path / "out", UnpackLimits(max_bytes=1 * MB, max_entries=100))
    written = sum(path.stat().st_size for path in (tmp_path / "out").iterdir())
    assert written <= 1 * MB


def test_more_entries_than_the_cap_are_refused(tmp_path: Path) -> None:
    members = [file_member(f"f{i}.txt", b"x") for i in range(11)]
    with pytest.raises(BundleTooLarge, match="more than 10 files and folders.*SQUALL_BUNDLE_MAX_FILES"):
        unpack_bundle(tar_gz(members), tmp_path / "out", UnpackLimits(max_bytes=MB, max_entries=10))
    unpack_bundle(tar_gz(members[:10]), tmp_path / "ok", UnpackLimits(max_bytes=MB, max_entries=10))
    assert len(list((tmp_path / "ok").iterdir())) == 10


def test_an_oversized_extended_header_is_refused_unread(tmp_path: Path) -> None:
    """tarfile reads a pax header whole into memory: one declaring 64 MB is refused first."""
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = 64 * MB
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = compressor.compress(header.tobuf(format=tarfile.USTAR_FORMAT))
    data += b"".join(compressor.compress(bytes(MB)) for _ in range(64)) + compressor.flush()
    with pytest.raises(BundleTooLarge, match="extended header of 64.0 MB, over the 1 MB limit"):
        unpack_bundle(data, tmp_path / "out")


def test_links_devices_and_escaping_paths_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("evil")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(BundleError, match="'evil' is not a regular file or folder"):
        unpack_bundle(tar_gz([(link, None)]), tmp_path / "a")
    for name in ("../outside.txt", "/etc/owned", "a/../../x"):
        with pytest.raises(BundleError, match="is not a path inside the project"):
            unpack_bundle(tar_gz([file_member(name, b"x")]), tmp_path / "b")
    assert not (tmp_path / "outside.txt").exists()


def test_garbage_is_a_bundle_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a valid tar.gz"):
        unpack_bundle(b"\x1f\x8b" + os.urandom(1000), tmp_path / "out")


def test_hash_tree_reads_in_chunks_and_hashes_paths_and_contents(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"a" * (3 * MB + 7))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "c.txt").write_bytes(b"c")
    expected = hashlib.sha256()
    for rel, data in (("a.txt", b"a" * (3 * MB + 7)), ("b/c.txt", b"c")):
        expected.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    assert hash_tree(tmp_path) == expected.hexdigest()
    assert file_digest(tmp_path / "b" / "c.txt") == hashlib.sha256(b"c").digest()


# -- the dependency cache key ---------------------------------------------------

def vendored(root: Path, value: str, requirements: str = "./vendor\n", **more: str) -> Path:
    return write_project(root, {"requirements.txt": requirements, "vendor/pyproject.toml": "[project]\nname='v'\n",
                                "vendor/vendored.py": f"VALUE = {value!r}\n", **more})


def test_the_same_vendor_line_with_different_contents_gets_different_keys(tmp_path: Path) -> None:
    alpha = read_requirements(vendored(tmp_path / "alpha", "alpha"))
    beta = read_requirements(vendored(tmp_path / "beta", "beta"))
    again = read_requirements(vendored(tmp_path / "again", "alpha"))
    assert alpha.key() != beta.key()
    assert alpha.key() == again.key()
    assert alpha.inputs() == ["requirements.txt", "vendor"]


def test_editing_a_local_package_changes_the_key(tmp_path: Path) -> None:
    project = vendored(tmp_path / "p", "one")
    before = read_requirements(project).key()
    (project / "vendor" / "vendored.py").write_text("VALUE = 'two'\n")
    assert read_requirements(project).key() != before
    (project / "vendor" / "new_module.py").write_text("")
    assert len({before, read_requirements(project).key()}) == 2


@pytest.mark.parametrize("line", ["-e ./vendor", "file:./vendor", "vendored @ file:./vendor", "./vendor[extra]",
                                  "--editable=./vendor"])
def test_every_way_of_naming_a_local_folder_is_keyed_by_its_content(tmp_path: Path, line: str) -> None:
    first = read_requirements(vendored(tmp_path / "a", "a", requirements=line + "\n"))
    second = read_requirements(vendored(tmp_path / "b", "b", requirements=line + "\n"))
    assert "vendor" in first.inputs()
    assert first.key() != second.key()


def test_nested_requirement_and_constraint_files_are_keyed(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", {"requirements.txt": "-r more/extra.txt\n-c pins.txt\n",
                                             "more/extra.txt": "-r ../again.txt\nsix\n", "again.txt": "idna\n",
                                             "pins.txt": "six==1.16.0\n"})
    found = read_requirements(project)
    assert found.inputs() == ["again.txt", "more/extra.txt", "pins.txt", "requirements.txt"]
    keys = {found.key()}
    for rel, text in (("pins.txt", "six==1.17.0\n"), ("again.txt", "idna==3.7\n"), ("more/extra.txt", "six\n")):
        (project / rel).write_text(text)
        keys.add(read_requirements(project).key())
    assert len(keys) == 4


def test_wheels_and_find_links_folders_in_the_project_are_keyed(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", {"requirements.txt": "--find-links ./wheels\nwheelhouse/thing-1.0-py3-none-any.whl\n",
                                             "wheels/a-1.0-py3-none-any.whl": "one",
                                             "wheelhouse/thing-1.0-py3-none-any.whl": "two"})
    found = read_requirements(project)
    assert found.inputs() == ["requirements.txt", "wheelhouse/thing-1.0-py3-none-any.whl", "wheels"]
    before = found.key()
    (project / "wheels" / "a-1.0-py3-none-any.whl").write_text("changed")
    middle = read_requirements(project).key()
    (project / "wheelhouse" / "thing-1.0-py3-none-any.whl").write_text("changed")
    assert len({before, middle, read_requirements(project).key()}) == 3


def test_comments_and_blank_lines_do_not_change_the_key(tmp_path: Path) -> None:
    plain = read_requirements(write_project(tmp_path / "a", {"requirements.txt": "six==1.16.0\n"})).key()
    commented = read_requirements(write_project(tmp_path / "b", {
        "requirements.txt": "# pinned\n\nsix==1.16.0  # the one\n"})).key()
    other = read_requirements(write_project(tmp_path / "c", {"requirements.txt": "six==1.17.0\n"})).key()
    assert plain == commented != other


def test_the_key_covers_the_python_version_and_platform(tmp_path: Path) -> None:
    found = read_requirements(write_project(tmp_path / "p", {"requirements.txt": "six\n"}))
    assert sys.version in interpreter_tag() and sysconfig.get_platform() in interpreter_tag()
    assert found.key() == found.key(interpreter_tag())
    assert found.key("cpython-3.12.1 linux-aarch64") != found.key()


@pytest.mark.parametrize("line", ["../elsewhere", "-r ../../etc/passwd", "/opt/wheels/x-1.0-py3-none-any.whl",
                                  "file:///etc/passwd", "-e ~/pkg", "--find-links=/opt/wheels"])
def test_a_path_outside_the_project_is_refused_naming_file_and_line(tmp_path: Path, line: str) -> None:
    project = write_project(tmp_path / "p", {"requirements.txt": f"six\n{line}\n"})
    with pytest.raises(BundleError, match=r"requirements.txt:2: .* refers to a path outside the project"):
        read_requirements(project)


def test_package_names_and_urls_are_not_local(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", {
        "requirements.txt": "requests>=2; python_version >= '3.8'\nsix @ https://example.com/six.whl\n"
                            "--index-url https://pypi.org/simple\n",
        "requests/__init__.py": ""})
    assert read_requirements(project).inputs() == ["requirements.txt"]


def test_no_requirements_means_nothing_to_install(tmp_path: Path) -> None:
    assert read_requirements(write_project(tmp_path / "a", {"app.py": ""})).empty
    assert read_requirements(write_project(tmp_path / "b", {"requirements.txt": "# nothing\n\n"})).empty


# -- build settings ---------------------------------------------------------------

def test_build_limits_come_from_the_settings_and_bad_ones_are_named() -> None:
    from squall.exceptions import SquallError
    from squall.runtime.build import BuildLimits
    from squall.settings import Settings

    def limits(environ: dict[str, str]) -> BuildLimits:
        return BuildLimits.from_settings(Settings.from_environ(environ))

    assert limits({}) == BuildLimits()
    chosen = limits({"SQUALL_BUILD_TIMEOUT_SECONDS": "30", "SQUALL_BUILD_MEMORY_MB": "512",
                     "SQUALL_BUILD_DISK_MB": "64", "SQUALL_BUILD_UID": "4242"})
    assert (chosen.seconds, chosen.memory_mb, chosen.disk_mb, chosen.uid) == (30, 512, 64, 4242)
    with pytest.raises(SquallError, match="SQUALL_BUILD_MEMORY_MB='lots' is not a whole number of MB above 0"):
        limits({"SQUALL_BUILD_MEMORY_MB": "lots"})
    with pytest.raises(SquallError, match="SQUALL_BUILD_UID='0'"):
        limits({"SQUALL_BUILD_UID": "0"})
    with pytest.raises(SquallError, match="SQUALL_BUILD_UID 100005 is inside SQUALL_UID_RANGE 100000-165535"):
        limits({"SQUALL_BUILD_UID": "100005"})
