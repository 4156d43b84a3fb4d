"""What a sweep on Ray costs against the same sweep in one process, measured in one run.

    python benchmarks/scale_out.py [--limit 32] [--nodes 2]

Runs one `ponder eval` sweep of the embedded models (arith test problems,
majority and beam search at N = 1, 4, a difficulty pass) twice: in one process,
then with `--ray` on a cluster of `--nodes` nodes started on this machine
(`LocalCluster`: a head and nodes that join it). Prints each wall time, their
ratio (Ray's overhead; goal <= 1.15), and how many stored records the two runs
agree on (answer, correctness, tokens, sample texts).

On a one-machine cluster the nodes share the machine's cores: the ratio is
Ray's cost (scheduling, shipping tasks and results, a model per worker), not
what more machines buy.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ponder.evaluation.distributed import LocalCluster

CLI = [sys.executable, "-m", "ponder.cli"]


def sweep(limit: int) -> list[str]:
    return [
        "eval", "--task", "arith", "--limit", str(limit),
        "--strategies", "majority,beam_search", "--budgets", "1,4",
        "--difficulty-samples", "4", "--param", "max_tokens=160", "--batch", "4",
        "--no-progress", "--json",
    ]  # fmt: skip


def timed(command: list[str]) -> tuple[float, str]:
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    return time.perf_counter() - began, done.stdout


def records(folder: Path) -> dict[tuple, tuple]:
    with sqlite3.connect(folder / "results.sqlite") as con:
        rows = con.execute(
            "SELECT task, strategy, budget, seed, problem, correct, answer, generated_tokens, "
            "record FROM results"
        ).fetchall()
    texts = lambda record: [c["text"] for c in json.loads(record)["candidates"]]  # noqa: E731
    return {r[:5]: (*r[5:8], texts(r[8])) for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=32, help="arith problems (default 32)")
    parser.add_argument("--nodes", type=int, default=2, help="Ray nodes (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        here, there = Path(scratch) / "in-process", Path(scratch) / "on-ray"
        alone, summary = timed([*CLI, *sweep(args.limit), "--out", str(here)])
        with LocalCluster(args.nodes) as cluster:
            command = [*CLI, *sweep(args.limit), "--out", str(there), "--ray", cluster.address]
            on_ray, ray_summary = timed(command)
        mine, theirs = records(here), records(there)
        equal = sum(mine[k] == theirs.get(k) for k in mine)
    print(f"sweep: {args.limit} arith problems, majority + beam_search at N = 1, 4, difficulty 4")
    print(f"in one process:            {alone:7.1f} s")
    print(f"on Ray ({args.nodes} nodes, 1 machine): {on_ray:7.1f} s")
    print(f"Ray / in-process:          {on_ray / alone:7.2f}x   (goal <= 1.15)")
    print(f"records equal:             {equal} of {len(mine)} ({len(theirs)} on Ray)")
    a, b = json.loads(summary), json.loads(ray_summary)
    differ = [
        f"{x['strategy']}@{x['budget']} {k}: {x[k]} vs {y[k]}"
        for x, y in zip(a, b, strict=True)
        for k in x
        if x[k] != y[k]
    ]
    print(f"summaries equal:           {not differ}" + "".join(f"\n  {d}" for d in differ))


if __name__ == "__main__":
    main()
