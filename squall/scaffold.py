"""`squall init`: write a small runnable project from the templates in `squall/scaffold/`.

Each template `X.tmpl` becomes file `X` in the project (`gitignore.tmpl` becomes
`.gitignore`); `$name` in a template is replaced by the project's name.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from string import Template

from squall.exceptions import BadInput

TEMPLATES: dict[str, str] = {
    "squall.yaml.tmpl": "squall.yaml",
    "app.py.tmpl": "app.py",
    "test_app.py.tmpl": "test_app.py",
    "requirements.txt.tmpl": "requirements.txt",
    "gitignore.tmpl": ".gitignore",
}
"""Template file in `squall/scaffold/` -> path of the file written in the project."""

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def write_project(dir: Path, name: str, *, force: bool = False) -> list[Path]:
    """Write the project files into `dir` (created if missing); return their paths.

    Raises BadInput when `name` is not a valid project name, or when `dir` exists,
    is not empty and `force` is false. With `force`, existing files of the same
    name are overwritten and other files are left alone.
    """
    check_project_name(name)
    if dir.exists() and not dir.is_dir():
        raise BadInput(f"{dir} exists and is not a directory")
    if dir.is_dir() and any(dir.iterdir()) and not force:
        raise BadInput(f"{dir} is not empty; pick an empty directory or pass --force "
                       "to overwrite the project files in it")
    dir.mkdir(parents=True, exist_ok=True)
    written = []
    for template, target in TEMPLATES.items():
        path = dir / target
        path.write_text(render(template, name), encoding="utf-8")
        written.append(path)
    return written


def render(template: str, name: str) -> str:
    """The text of one template with `$name` substituted."""
    source = (resources.files("squall") / "scaffold" / template).read_text("utf-8")
    return Template(source).substitute(name=name)


def check_project_name(name: str) -> None:
    """Raise BadInput unless `name` is lowercase letters, digits and dashes (max 63)."""
    if not _NAME.match(name):
        raise BadInput(f"invalid project name {name!r}: use lowercase letters, digits and "
                       "dashes, starting with a letter (at most 63 characters)")


def project_name_for(dir: Path) -> str:
    """A valid project name made from a directory's name (`My_App` -> `my-app`)."""
    slug = re.sub(r"[^a-z0-9]+", "-", dir.resolve().name.lower()).strip("-")
    slug = slug.lstrip("0123456789-")[:63].rstrip("-")
    return slug or "hello"
