"""Docs cannot drift: every key of every section of squall.yaml has a row in docs/manifest.md.

The sections are found from the models (every Section reachable from Manifest's fields), so a
new section or key fails here until it is documented. A trigger kind is documented under the
heading "### `KIND`: ..."; any other new section must be given the heading of docs/manifest.md
that documents it, in SECTION_DOCS.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import pytest

from squall.manifest import (BucketSpec, Destination, FunctionSpec, Manifest, QueueSpec, RouteAuth, StageSpec,
                             Subscription, TableSpec, TopicSpec)
from squall.manifest.sections import Section
from squall.manifest.tables import KeyAttribute
from squall.manifest.triggers import TRIGGER_KINDS

DOCS = Path(__file__).resolve().parent.parent / "docs"

SECTION_DOCS: dict[type[Section], str] = {
    Manifest: "## Top level",
    FunctionSpec: "## Functions",
    Destination: "#### Destinations",
    RouteAuth: "### `auth`",
    TopicSpec: "### `topics`",
    Subscription: "### `topics`",
    QueueSpec: "### `queues`",
    BucketSpec: "### `buckets`",
    TableSpec: "## Tables",
    KeyAttribute: "### Key attributes",
    StageSpec: "## Stages",
}
"""Each section of squall.yaml but the trigger kinds -> the heading of docs/manifest.md whose text
has its table."""


def _sections(annotation: Any, found: list[type[Section]]) -> list[type[Section]]:
    """Every Section model in `annotation` and, recursively, in their fields' annotations."""
    if isinstance(annotation, type) and issubclass(annotation, Section):
        if annotation not in found:
            found.append(annotation)
            for field in annotation.model_fields.values():
                _sections(field.annotation, found)
    else:
        for argument in get_args(annotation):
            _sections(argument, found)
    return found


SECTIONS = _sections(Manifest, [])


def _heading(section: type[Section]) -> str:
    """The heading of docs/manifest.md that documents `section`."""
    kind = next((kind for kind, model in TRIGGER_KINDS.items() if model is section), None)
    if kind is None:
        return SECTION_DOCS[section]
    lines = (DOCS / "manifest.md").read_text().splitlines()
    headings = [line for line in lines if line.startswith(f"### `{kind}`: ")]
    assert headings, f"docs/manifest.md has no heading ### `{kind}`: ... for the trigger kind {kind}"
    return headings[0]


def _text_under(heading: str) -> str:
    """The text of docs/manifest.md from `heading` to the next heading of any level."""
    lines = (DOCS / "manifest.md").read_text().splitlines()
    assert heading in lines, f"docs/manifest.md has no heading {heading!r}"
    start = lines.index(heading) + 1
    end = next((index for index in range(start, len(lines)) if re.match(r"#+ ", lines[index])), len(lines))
    return "\n".join(lines[start:end])


def test_every_section_is_found_and_has_a_place_in_the_docs() -> None:
    assert {Manifest, FunctionSpec, RouteAuth, KeyAttribute, *TRIGGER_KINDS.values()} <= set(SECTIONS)
    assert set(SECTIONS) - set(TRIGGER_KINDS.values()) == set(SECTION_DOCS), \
        "give each new section the heading that documents it in SECTION_DOCS"


@pytest.mark.parametrize("section", SECTIONS, ids=lambda section: section.__name__)
def test_every_key_of_every_section_has_a_row_in_its_table(section: type[Section]) -> None:
    heading = _heading(section)
    text = _text_under(heading)
    missing = [key for key in section.yaml_keys() if f"\n| `{key}` |" not in f"\n{text}"]
    assert missing == [], f"{section.__name__} keys without a row under {heading!r} in docs/manifest.md: " \
                          f"{missing}"


def test_every_trigger_kind_is_listed_with_the_triggers() -> None:
    text = _text_under("## Triggers")
    missing = [kind for kind in TRIGGER_KINDS if f"\n| [`{kind}`](#" not in f"\n{text}"]
    assert missing == [], f"trigger kinds missing from the table of docs/manifest.md#triggers: {missing}"


def test_readme_links_only_to_docs_that_exist() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    linked = [part.split(")")[0].split("#")[0] for part in readme.split("](docs/")[1:]]
    assert linked, "the README links to the docs"
    assert [name for name in linked if not (DOCS / name).is_file()] == []
