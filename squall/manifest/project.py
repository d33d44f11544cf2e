"""A whole squall.yaml: the `Manifest` model, and the loader that turns a file into it or into a
ManifestError naming the file, the line and the field of the first problem.

`load_manifest(folder_or_file)` reads and validates a manifest; `parse_manifest(text)`
validates text. Every problem raises ManifestError with the file, the 1-based line of the
offending YAML node and the dotted field (`functions.webhook.triggers[2].http`).

How lines are found: squall.manifest.yaml_lines reads the YAML with the line of every key and
list item by its path (keys as written, list indices as ints); pydantic's error `loc` is mapped
to that path, or to its nearest parent with a line. The sections below the top level are the
modules of this package (see its __init__); the user reference is docs/manifest.md.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, model_validator
from pydantic_core import ErrorDetails

from squall.exceptions import ManifestError
from squall.manifest.destinations import check_destination
from squall.manifest.errors import (SQUALL_ERROR, TRIGGER_KIND_ERROR, Loc, dotted, fail, show,
                                    unknown_key_message)
from squall.manifest.functions import FunctionSpec
from squall.manifest.grants import check_grants
from squall.manifest.http import HttpTrigger
from squall.manifest.resources import (BucketSpec, QueueSpec, TopicSpec, check_bucket_name, check_buckets,
                                       check_dead_letter_queues, check_queue_name, check_queues,
                                       check_topic_name, check_topics)
from squall.manifest.schedule import ScheduleTrigger
from squall.manifest.sections import Declared, Section
from squall.manifest.stages import StageSpec, check_stages
from squall.manifest.tables import TableSpec, check_table_name, check_tables
from squall.manifest.triggers import trigger_kind_message
from squall.manifest.values import check_function_name, name_check, whole_number
from squall.manifest.yaml_lines import Lines, line_of, read_yaml

MANIFEST_NAME = "squall.yaml"


# ------------------------------------------------------------------ field checks


def default_project_name(folder_name: str) -> str:
    """A valid project name made from a folder name: invalid characters become '-'."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", folder_name)
    if not name:
        return "project"
    if name[0] not in string.ascii_letters:
        name = "project-" + name
    return name[:64]


def _check_functions(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, dict):
        raise ValueError("must be a mapping of function names to their settings, e.g. "
                         f"{{webhook: {{handler: app.handler}}}}, got {show(value)}")
    from_file = "path" in (info.context or {})
    return {name: _named(name, spec, from_file) for name, spec in value.items()}


def _named(name: Any, spec: Any, from_file: bool) -> Any:
    """The settings of function `name` with its name filled in from the key.

    In a manifest file the key is the only way to name a function; Python callers may pass
    `name` (as `model_dump()` gives it), which must then match the key.
    """
    if not isinstance(spec, dict):
        return spec
    if "name" in spec and from_file:
        raise fail(unknown_key_message("name", FunctionSpec.yaml_keys())
                   + " (a function is named by its key under functions)", str(name), "name")
    return {"name": name, **spec}


# ------------------------------------------------------------------ model


class Manifest(Section):
    """A whole squall.yaml; `path` is the manifest file and `root` its folder."""

    internal_keys = frozenset({"path"})

    name: Annotated[str, BeforeValidator(name_check("the project name")),
                    Field(description="the project's name")]
    functions: Annotated[dict[Annotated[str, BeforeValidator(check_function_name)],
                              FunctionSpec],
                         BeforeValidator(_check_functions),
                         Field(description="the functions of the project")]
    topics: Annotated[dict[Annotated[str, BeforeValidator(check_topic_name)], TopicSpec],
                      BeforeValidator(check_topics)] = Field(default_factory=dict)
    queues: Annotated[dict[Annotated[str, BeforeValidator(check_queue_name)], QueueSpec],
                      BeforeValidator(check_queues)] = Field(default_factory=dict)
    buckets: Annotated[dict[Annotated[str, BeforeValidator(check_bucket_name)], BucketSpec],
                       BeforeValidator(check_buckets)] = Field(default_factory=dict)
    tables: Annotated[dict[Annotated[str, BeforeValidator(check_table_name)], TableSpec],
                      BeforeValidator(check_tables)] = Field(default_factory=dict)
    keep_versions: Annotated[int, BeforeValidator(whole_number(1, 1000, "versions")),
                             Field(description="versions kept per function, besides those an alias "
                                               "points at (older ones and their code are deleted)")] = 20
    stages: Annotated[dict[str, StageSpec], BeforeValidator(check_stages),
                      Field(description="how requests reach each stage, and its environment")] = Field(
        default_factory=dict)
    path: Path = Field(default=Path(MANIFEST_NAME), exclude=True)

    @property
    def root(self) -> Path:
        return self.path.parent

    def routes(self) -> list[tuple[str, HttpTrigger]]:
        """(function name, trigger) of every HTTP trigger, in manifest order."""
        return [(name, trigger) for name, spec in self.functions.items()
                for trigger in spec.triggers if isinstance(trigger, HttpTrigger)]

    def schedules(self) -> list[tuple[str, str, ScheduleTrigger]]:
        """(function name, schedule name, trigger) of every schedule trigger, in manifest order."""
        return [(name, trigger.name or "", trigger) for name, spec in self.functions.items()
                for trigger in spec.triggers if isinstance(trigger, ScheduleTrigger)]

    def resources(self) -> dict[str, Any]:
        """The project's topics, queues, buckets and tables with every setting filled in,
        JSON-able: `{"topics": {name: settings}, "queues": {...}, "buckets": {...}, "tables": {...}}`."""
        sections: tuple[tuple[str, dict[str, Any]], ...] = (
            ("topics", self.topics), ("queues", self.queues), ("buckets", self.buckets), ("tables", self.tables))
        return {section: {name: spec.model_dump(mode="json") for name, spec in specs.items()}
                for section, specs in sections}

    @classmethod
    def prepare(cls, data: dict[Any, Any], info: ValidationInfo) -> dict[Any, Any]:
        """Take `path` and the default `name` from the validation context, if given."""
        context = info.context or {}
        if "path" in context:
            if "path" in data:
                raise fail(unknown_key_message("path", cls.yaml_keys()), "path")
            data = {**data, "path": context["path"]}
        if "name" not in data and "default_name" in context:
            data = {**data, "name": default_project_name(context["default_name"])}
        if not data.get("functions"):
            raise fail("the project declares no functions: add a functions: mapping with at "
                       "least one function, e.g. webhook: {handler: app.handler}", "functions")
        return data

    @model_validator(mode="after")
    def _check_routes(self) -> Manifest:
        seen: dict[str, tuple[Loc, str]] = {}
        for name, spec in self.functions.items():
            if spec.name != name:
                raise fail(f"is named {show(spec.name)} but listed as {show(name)}", "functions", name)
            for index, trigger in enumerate(spec.triggers):
                if not isinstance(trigger, HttpTrigger):
                    continue
                here: Loc = ("functions", name, "triggers", index, "http")
                first, key = seen.setdefault(trigger.shape, (here, trigger.http))
                if first != here:
                    raise fail(f"duplicate route: a method and path are routed once, and "
                               f"{show(trigger.http)} is already declared as {show(key)} at "
                               f"{dotted(first)}", *here, see=first)
        return self

    @model_validator(mode="after")
    def _check_references(self) -> Manifest:
        """Every name that refers to a declared thing does, and the rules between resources hold:
        dead-letter queues, then each function's destinations and triggers, then its grants."""
        check_dead_letter_queues(self.queues)
        declared = Declared(topics=self.topics, queues=self.queues, buckets=self.buckets,
                            functions=self.functions)
        for name, spec in self.functions.items():
            for key in ("on_success", "on_failure"):
                check_destination(getattr(spec, key), declared, ("functions", name, key))
            for index, trigger in enumerate(spec.triggers):
                trigger.check_references(declared, ("functions", name, "triggers", index))
        check_grants(self.functions, {"tables": self.tables, "topics": self.topics, "queues": self.queues,
                                      "buckets": self.buckets})
        return self


# ------------------------------------------------------------------ pydantic errors


def _clean_loc(loc: tuple[str | int, ...]) -> Loc:
    """Drop pydantic's `[key]` markers and the trigger kind tag after `triggers[i]`."""
    parts = [part for part in loc if part != "[key]"]
    if len(parts) > 4 and parts[0] == "functions" and parts[2] == "triggers" \
            and isinstance(parts[3], int):
        del parts[4]
    return tuple(parts)


def _problem(error: ErrorDetails) -> tuple[Loc, str, Loc | None]:
    """(where, what is wrong, related place) of one pydantic error."""
    loc, ctx = _clean_loc(error["loc"]), error.get("ctx", {})
    if error["type"] == SQUALL_ERROR:
        return (*loc, *ctx["loc"]), ctx["message"], ctx["see"]
    if error["type"] == "value_error":
        return loc, str(ctx["error"]), None
    if error["type"] == TRIGGER_KIND_ERROR:
        return loc, trigger_kind_message(error["input"]), None
    return loc, f"{error['msg']}, got {show(error['input'])}", None


def _manifest_error(exc: ValidationError, lines: Lines, file: str) -> ManifestError:
    """The problem that comes first in the file, as a ManifestError."""
    problems = [_problem(error) for error in exc.errors()]
    loc, message, see = min(problems, key=lambda problem: line_of(lines, problem[0]))
    if see is not None:
        message += f" (line {line_of(lines, see)})"
    return ManifestError(message, file=file, line=line_of(lines, loc), field=dotted(loc) or None)


# ------------------------------------------------------------------ entry points


def _parse(text: str, file: str, path: Path, default_name: str) -> tuple[Manifest, Lines]:
    document = read_yaml(text, file)
    if document is None:
        raise ManifestError("is empty: expected a mapping with functions: (and optionally name:)",
                            file=file, line=1)
    lines, data = document
    context = {"path": path, "default_name": default_name}
    try:
        return Manifest.model_validate(data, context=context), lines
    except ValidationError as exc:
        raise _manifest_error(exc, lines, file) from None


def parse_manifest(text: str, *, file: str = MANIFEST_NAME, default_name: str = "project") -> Manifest:
    """Validate manifest text; `file` is shown in errors and becomes `Manifest.path`."""
    return _parse(text, file, Path(file), default_name)[0]


def _manifest_file(path: Path) -> Path:
    file = path / MANIFEST_NAME if path.is_dir() else path
    if file.is_file():
        return file
    folder = path if path.is_dir() else path.parent
    hint = (f" (found {folder / 'squall.yml'}: rename it to {MANIFEST_NAME})"
            if (folder / "squall.yml").is_file() else "")
    raise ManifestError(f"no {MANIFEST_NAME} found: looked for {file.absolute()}{hint}",
                        file=str(file))


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"is not UTF-8 text: {exc.reason} at byte {exc.start}",
                            file=str(file)) from None
    except OSError as exc:
        raise ManifestError(f"cannot be read: {exc.strerror}", file=str(file)) from None


def _check_code_folders(manifest: Manifest, lines: Lines, file: str) -> None:
    root = manifest.root
    for name, spec in manifest.functions.items():
        folder = (root / spec.code).resolve()
        problem = ("leaves the project folder through a symbolic link"
                   if not folder.is_relative_to(root) else
                   "is not a folder" if folder.exists() and not folder.is_dir() else
                   "does not exist" if not folder.is_dir() else None)
        if problem:
            loc = ("functions", name, "code")
            raise ManifestError(f"{show(spec.code)} {problem}: code must name a folder inside the "
                                "project", file=file, line=line_of(lines, loc), field=dotted(loc))


def load_manifest(path: str | Path, *, default_name: str | None = None) -> Manifest:
    """Read and validate the manifest of a project folder, or a manifest file itself.

    `Manifest.path` is the resolved file; errors show the path as given. A manifest without
    `name:` is named after `default_name`, else after its folder (see default_project_name).
    """
    file = _manifest_file(Path(path))
    resolved = file.resolve()
    default = resolved.parent.name if default_name is None else default_name
    manifest, lines = _parse(_read_text(file), str(file), resolved, default)
    _check_code_folders(manifest, lines, str(file))
    return manifest
