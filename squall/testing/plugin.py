"""squall's pytest plugin (entry point `pytest11: squall`): fixtures that deploy a project on
a real node of its own for a test.

    def test_hello(squall):                        # the project around this test file
        assert squall.get("/hello").status_code == 200

    def test_two(squall_project):                  # any project, with options
        cards = squall_project("../ci-cards", env={"TRACKER_URL": url}, secrets={...})

Importing the plugin starts nothing: a node starts when a test asks for a fixture, and stops
(with its instances, and its folder deleted) when that test ends, passed or failed. For one
node shared by a module's tests, use `squall.testing.start_project` in a fixture of your own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from squall.testing.project import Project

MANIFEST = "squall.yaml"


def project_around(start: Path) -> Path:
    """The nearest folder holding a squall.yaml: `start` (a folder or a file) or one above it."""
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        if (candidate / MANIFEST).is_file():
            return candidate
    raise FileNotFoundError(f"no {MANIFEST} in {folder} or a folder above it: give the project's folder, "
                            "as in squall_project('path/to/project')")


@pytest.fixture
def squall_project(request: pytest.FixtureRequest) -> Iterator[Callable[..., Project]]:
    """`squall_project(path=None, *, env=None, secrets=None, now=None)`: the project in `path`
    (relative to the test file's folder; default: the project the test file is in) deployed on
    a node of its own, started; stopped when the test ends."""
    from squall.testing.project import start_project

    started: list[Project] = []
    here = Path(request.path).parent

    def start(path: str | Path | None = None, **options: Any) -> Project:
        folder = project_around(here) if path is None else here / path
        project = start_project(folder, **options)
        started.append(project)
        return project

    try:
        yield start
    finally:
        errors = []
        for project in reversed(started):
            try:
                project.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others, then report
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture
def squall(squall_project: Callable[..., Project]) -> Project:
    """The project the test file is in (the nearest squall.yaml above it), deployed on a node
    of its own for this test."""
    return squall_project()
