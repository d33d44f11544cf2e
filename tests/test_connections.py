"""The connection limits' settings (squall/server/connections.py); the limits themselves are
tested against a real server in tests/hostile/test_doors.py."""

from __future__ import annotations

import resource

import pytest

from squall.exceptions import BadInput
from squall.server.connections import ConnectionLimits, raise_open_file_limit, serve_limits
from squall.settings import Settings


def limits_from(environ: dict[str, str], open_files: int = 1 << 20) -> ConnectionLimits:
    return serve_limits(Settings.from_environ(environ), open_files)


def test_defaults_when_nothing_is_set() -> None:
    assert limits_from({}) == ConnectionLimits(
        max_head_bytes=65536, max_headers=100, head_timeout=10.0, body_idle_timeout=30.0,
        max_connections=10000, max_per_client=256, max_loopback=2500) == ConnectionLimits()


def test_settings_come_from_the_environment() -> None:
    limits = limits_from({"SQUALL_MAX_HEADER_BYTES": "8192", "SQUALL_HEADER_TIMEOUT": "2.5",
                          "SQUALL_MAX_CONNECTIONS_PER_CLIENT": "16"})
    assert (limits.max_head_bytes, limits.head_timeout, limits.max_per_client) == (8192, 2.5, 16)


def test_the_connection_cap_stays_below_the_open_file_limit() -> None:
    limits = limits_from({}, open_files=1024)
    assert (limits.max_connections, limits.max_loopback) == (512, 128)


def test_loopback_s_share_is_set_and_kept_within_the_cap() -> None:
    """Loopback (the node's own instances, a local proxy) has its own cap, so that it cannot
    take every connection slot; set above the whole cap it is held to it."""
    cap = {"SQUALL_MAX_CONNECTIONS": "1000"}
    assert limits_from({**cap, "SQUALL_MAX_CONNECTIONS_LOOPBACK": "300"}).max_loopback == 300
    assert limits_from({**cap, "SQUALL_MAX_CONNECTIONS_LOOPBACK": "5000"}).max_loopback == 1000


@pytest.mark.parametrize("value", ["0", "-1", "lots", "inf", "1.5"])
def test_a_bad_setting_is_refused_by_name(value: str) -> None:
    with pytest.raises(BadInput) as caught:
        limits_from({"SQUALL_MAX_HEADERS": value})
    assert "SQUALL_MAX_HEADERS" in str(caught.value)


def test_the_open_file_soft_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        expected = hard if hard != resource.RLIM_INFINITY else 1 << 20
        assert raise_open_file_limit() == expected
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (expected, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
