"""The unit tier starts no squall servers: a test not marked e2e that starts one through
tests/support.py, or asks for a node through squall.testing's fixtures, fails, saying which
test and what to mark (the guard in tests/support.py, entered by the root conftest.py)."""

from __future__ import annotations

from itertools import dropwhile
from pathlib import Path

import pytest

from tests.support import E2E_GUARD, SquallServer

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


def test_a_test_not_marked_e2e_may_not_start_a_server_or_run_the_cli(tmp_path: Path) -> None:
    server = SquallServer(tmp_path / "data")
    this_test = r"tests/test_tiers.py::test_a_test_not_marked_e2e_may_not_start_a_server_or_run_the_cli"
    with pytest.raises(RuntimeError, match=this_test + " starts a squall server but is not marked e2e"):
        server.start()
    assert server.process is None and not (tmp_path / "data").exists()
    with pytest.raises(RuntimeError, match="runs `squall ls` as a process but is not marked e2e"):
        server.cli("ls")


@pytest.mark.e2e
def test_a_test_marked_e2e_may() -> None:
    E2E_GUARD.check("starts a squall server")


@pytest.mark.e2e  # a pytest session of its own takes seconds
def test_a_test_not_marked_e2e_may_not_ask_for_a_node(pytester: pytest.Pytester) -> None:
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    pytester.makeini("[pytest]\nmarkers = e2e: the second tier\n")
    pytester.makepyfile(test_nodes="""
        import pytest

        def test_unmarked(squall_project):
            pass

        @pytest.mark.e2e
        def test_marked(squall_project):
            pass
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_nodes.py::test_unmarked asks for the fixture `squall_project` (a squall node)"
                                 " but is not marked e2e*"])


def test_ci_runs_the_readmes_test_command() -> None:
    """.ci/run's last line is README command 2: the commented block's first line that is no comment."""
    readme = (ROOT / "README.md").read_text().splitlines()
    block = dropwhile(lambda line: not line.startswith("# 2."), readme)
    command = next(line for line in block if not line.startswith("#"))
    assert all(f"pytest -q -m {tier}" in command for tier in ("'not e2e'", "'e2e and not serial'", "serial"))
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == command
