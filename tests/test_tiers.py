"""The unit tier starts no squall servers: a test not marked e2e that tries is failed, saying
which test and what to mark (the guard in tests/support.py, entered by the root conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import E2E_GUARD, SquallServer


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
