"""Docs cannot drift: every manifest key is documented in docs/manifest.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from squall.manifest import FunctionSpec, HttpTrigger, Manifest, RouteAuth
from squall.manifest.sections import Section

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("section", [Manifest, FunctionSpec, HttpTrigger, RouteAuth])
def test_every_manifest_key_is_documented(section: type[Section]) -> None:
    text = (DOCS / "manifest.md").read_text()
    missing = [key for key in section.yaml_keys() if f"`{key}`" not in text]
    assert missing == [], f"{section.__name__} keys missing from docs/manifest.md: {missing}"


def test_readme_links_only_to_docs_that_exist() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    linked = [part.split(")")[0] for part in readme.split("](docs/")[1:]]
    assert linked, "the README links to the docs"
    assert [name for name in linked if not (DOCS / name).is_file()] == []
