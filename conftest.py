"""Test tiers, for every test path (tests/ and examples/).

`pytest -m "not e2e"` is the fast unit tier. A test that starts a squall server or runs the CLI
as a process through tests/support.py, or asks for a node through squall.testing's fixtures,
must be marked `e2e`, or it fails saying so; so must a test marked `serial`, which the e2e
tier runs alone after its parallel part. The store fixtures are in tests/conftest.py."""

from __future__ import annotations

import pytest

from tests.support import E2E_GUARD

NODE_FIXTURES = ("squall", "squall_project")
"""squall.testing's fixtures that start a node in the test process."""


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before the test's fixtures are set up (a module-scoped server's included)."""
    E2E_GUARD.enter(item.nodeid, e2e=item.get_closest_marker("e2e") is not None)
    for name in NODE_FIXTURES:
        if name in getattr(item, "fixturenames", ()):
            E2E_GUARD.check(f"asks for the fixture `{name}` (a squall node)")
    if item.get_closest_marker("serial") is not None:
        E2E_GUARD.check("is marked serial (one of the e2e tests run alone)")


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    E2E_GUARD.leave()
