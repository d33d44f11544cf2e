"""Cold start and warm invocation of a trivial function through the instance pool, for
both launchers (zygote fork vs fresh interpreter), next to `python -c pass` baselines.

    python bench/cold_start.py [--rounds 30]

Measured at the pool (launch, init, one invocation, result), without HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stats import percentile  # noqa: E402

from squall.runtime.instance import InstanceSpec  # noqa: E402
from squall.runtime.launcher import SubprocessLauncher, ZygoteLauncher  # noqa: E402
from squall.runtime.pool import InstancePool  # noqa: E402


def process_baseline(rounds: int, code: str) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def pool_timings(launcher: object, code_dir: str, rounds: int,
                       handler: str = "app.handler", profile: str = "base") -> tuple[list[float], list[float]]:
    pool = InstancePool(launcher)  # type: ignore[arg-type]
    spec = InstanceSpec("f", 1, handler, code_dir, 128, 10, {"PATH": "/usr/bin:/bin"}, (code_dir,),
                        zygote=profile)
    cold, warm = [], []
    try:
        await pool.invoke(spec, "r", b"{}", "arn")  # the zygote itself starts once per node
        for _ in range(rounds):
            pool.retire(spec.key)
            pool.reinstate(spec.key)
            started = time.perf_counter()
            await pool.invoke(spec, "r", b"{}", "arn")
            cold.append((time.perf_counter() - started) * 1000)
        for _ in range(rounds * 20):
            started = time.perf_counter()
            await pool.invoke(spec, "r", b"{}", "arn")
            warm.append((time.perf_counter() - started) * 1000)
    finally:
        await pool.close()
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    table = Table(title="Cold start and warm invocation (ms)")
    for column in ("what", "p50", "p99", "vs fresh python"):
        table.add_column(column, justify="left" if column == "what" else "right")
    with tempfile.TemporaryDirectory() as code_dir:
        (Path(code_dir) / "app.py").write_text("def handler(event, context):\n    return {'ok': True}\n")
        (Path(code_dir) / "uses_boto3.py").write_text(
            "import boto3\n\ndef handler(event, context):\n    return {'ok': boto3.__version__}\n")
        python = process_baseline(args.rounds, "pass")
        base = statistics.median(python)
        rows = [("fresh `python -c pass`", python)]
        rows.append(("fresh `python -c 'import boto3'`", process_baseline(max(5, args.rounds // 3), "import boto3")))
        for name, launcher in (("zygote", ZygoteLauncher()), ("subprocess", SubprocessLauncher())):
            cold, warm = asyncio.run(pool_timings(launcher, code_dir, args.rounds))
            rows += [(f"cold start, {name} launcher", cold), (f"warm invocation, {name} launcher", warm)]
        cold, _ = asyncio.run(pool_timings(ZygoteLauncher(), code_dir, args.rounds, "uses_boto3.handler", "aws"))
        rows.append(("cold start importing boto3, `aws` zygote (boto3 preloaded)", cold))
    for name, values in rows:
        p50 = statistics.median(values)
        table.add_row(name, f"{p50:.3f}", f"{percentile(values, 99):.3f}", f"{p50 / base:.2f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
