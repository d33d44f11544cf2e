"""Load from wrk (a C HTTP benchmarking tool, Debian package `wrk`) when it is installed.

At tens of thousands of requests per second a Python load generator spends a core of its
own and becomes what is measured; wrk costs a fraction of that. `run_wrk` returns the same
`LoadSummary` as bench/loadgen.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from loadgen import LoadSummary

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(port: int, path: str, concurrency: int, seconds: float, script: str | None = None) -> LoadSummary:
    """`wrk -t1 -cN -dSs --latency` against 127.0.0.1:port/path; `script` is a Lua file
    (e.g. from `request_script`) that sets the method, headers and body."""
    output = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency",
         *(["-s", script] if script else []), f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True).stdout
    return parse_wrk(output)


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def request_script(path: str, method: str, headers: dict[str, str], body: str) -> str:
    """Write a wrk Lua script that sends the same request every time; returns its path."""
    lines = [f"wrk.method = {_lua_string(method)}", f"wrk.body = {_lua_string(body)}"]
    lines += [f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}" for name, value in headers.items()]
    with open(path, "w") as file:
        file.write("\n".join(lines) + "\n")
    return path


def parse_wrk(output: str) -> LoadSummary:
    percentiles = {int(q): float(value) * _UNITS[unit] for q, value, unit in _PERCENTILE.findall(output)}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if rps is None or 50 not in percentiles or 99 not in percentiles:
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    failed = int(errors.group(1)) if errors else 0
    failed += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return LoadSummary(float(rps.group(1)), percentiles[50], percentiles[99], failed)
