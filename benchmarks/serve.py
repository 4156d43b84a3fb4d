"""What `ponder serve` costs and what it buys, measured in one run on this machine.

    python benchmarks/serve.py [--requests 320] [--skip-vllm] [--vllm-cpus 0]
        [--load-beside {upstream,ponder}]

Starts, on 127.0.0.1, a vLLM server (from .venv-vllm, without chunked prefill)
serving the embedded arith policy, a ponder server routed to it, and a ponder
server on the embedded default (local models). vLLM runs on its own CPUs (the
first half of this machine's, or `--vllm-cpus`) and ponder's relay on the
others, as if the upstream had hardware of its own, as a GPU server has: left
to share all cores, vLLM on CPU keeps them busy and ponder's process waits for
one (its wait is printed). The load (the clients) runs beside the upstream by
default: its work is then in both paths alike, and what ponder adds is ponder's
own; `--load-beside ponder` puts it on ponder's CPUs instead, the harsher
setting. Then prints:

1. Overhead for `single`: the same request (the prompt ponder renders, greedy,
   the same max_tokens) sent to vLLM directly and through ponder, interleaved,
   one at a time and from 16 concurrent clients; p50 and p99 latency of each
   and what ponder adds (targets: p50 <= 3 ms, p99 <= 15 ms). The load comes from
   aiohttp, as in vLLM's own serving benchmark: a client that takes little of the
   CPU that the servers share with it. Also printed: the CPU time ponder's server
   process used, and how long it waited, runnable, for a CPU (Linux schedstat).
   The same again in front of a stand-in upstream that answers after 300 ms
   without using the CPU (`stand_in_upstream.py`, on the upstream's CPUs): what
   ponder adds without the noise of vLLM's own timing.
2. Sharing: 16 `beam_search:4` requests one after another against the same 16
   sent at once (local models; target: at once <= 0.5x the time).
3. Streaming: a streamed `beam_search:16` request's time to its first chunk
   and to its first round of progress, against its total (target <= 0.25x).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import openai

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = [
    f"Start with {a}. Add {b}. Multiply by {c}. Subtract {d}."
    for a, b, c, d in ((37, 48, 6, 25), (12, 7, 3, 5), (81, 19, 4, 60), (55, 5, 9, 100))
]
MAX_TOKENS = 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def process(
    command: list[str],
    health: str,
    log: Path,
    env: dict[str, str] | None = None,
    cpus: list[int] | None = None,
) -> Iterator[subprocess.Popen]:
    if cpus is not None:
        command = ["taskset", "--cpu-list", ",".join(map(str, cpus)), *command]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                sys.exit(f"{command[0]} exited; see {log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(health, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                sys.exit(f"{command} did not come up in 600 s; see {log}")
            time.sleep(0.5)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def ponder(port: int, *flags: str) -> list[str]:
    return [sys.executable, "-m", "ponder.cli", "serve", "--port", str(port), *flags]


def relay(
    upstream: str, port: int, log: Path, cpus: list[int]
) -> contextlib.AbstractContextManager:
    """A ponder server on `port` (on `cpus`) for the embedded policy served at `upstream`,
    no verifier."""
    from ponder.models import embedded_policy

    policy = str(embedded_policy())
    flags = ["--model", upstream, "--served-model", "arith-policy", "--format", policy]
    flags += ["--model-config", policy, "--verifier", "none", "--max-concurrent", "64"]
    return process(ponder(port, *flags), f"http://127.0.0.1:{port}/health", log, cpus=cpus)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(call) -> float:  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    await call()
    return time.perf_counter() - began


async def overhead(vllm: str, via: str, requests: int, clients: int) -> tuple[list, list]:
    """Latencies (s) of the same greedy request sent to vLLM directly and through ponder."""
    from ponder.models import embedded_policy
    from ponder.tasks import PromptFormat

    prompt_format = PromptFormat.of_folder(embedded_policy())
    assert prompt_format is not None
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    direct: list[float] = []
    through: list[float] = []

    async def post(url: str, body: dict) -> None:
        async with session.post(f"{url}/completions", json=body) as response:
            response.raise_for_status()
            await response.read()

    async def one(i: int) -> None:
        problem = PROBLEMS[i % len(PROBLEMS)]
        rendered = prompt_format.render(problem).text
        same = {"max_tokens": MAX_TOKENS, "temperature": 0}

        async def to_vllm() -> None:
            await post(vllm, {"model": "arith-policy", "prompt": rendered, **same})

        async def to_ponder() -> None:
            await post(via, {"model": "arith@single", "prompt": problem, **same})

        first, second = (to_vllm, to_ponder) if i % 2 else (to_ponder, to_vllm)
        a = await timed(first)
        b = await timed(second)
        (direct if first is to_vllm else through).append(a)
        (through if first is to_vllm else direct).append(b)

    per_client = max(1, requests // clients)

    async def client(c: int) -> None:
        # Request k * clients + c: at each step the clients ask different problems, half
        # of them ponder first (with c * per_client + k, 20 requests a client made all 16
        # ask the same problem in the same order at the same moment).
        for k in range(per_client):
            await one(k * clients + c)

    await one(0)  # warm both paths
    direct.clear()
    through.clear()
    await asyncio.gather(*(client(c) for c in range(clients)))
    await session.close()
    return direct, through


def schedstat(pid: int) -> tuple[float, float]:
    """Seconds a process's threads have run on a CPU and waited, runnable, for one (Linux)."""
    ran = waited = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            on_cpu, on_queue, _ = (task / "schedstat").read_text().split()
            ran, waited = ran + int(on_cpu), waited + int(on_queue)
    return ran / 1e9, waited / 1e9


def measure_overhead(upstream: str, via: str, server: int, requests: int, cpus: list[int]) -> None:
    """Sequential and 16 concurrent clients, the load on `cpus`."""
    everywhere = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        for clients in (1, 16):
            measure_clients(upstream, via, server, requests, clients)
    finally:
        os.sched_setaffinity(0, everywhere)


def measure_clients(upstream: str, via: str, server: int, requests: int, clients: int) -> None:
    ran, waited = schedstat(server)
    direct, through = asyncio.run(overhead(upstream, via, requests, clients))
    now_ran, now_waited = schedstat(server)
    label = "sequential" if clients == 1 else f"{clients} concurrent clients"
    report_overhead(label, direct, through)
    print(
        f"    ponder's server: {1000 * (now_ran - ran) / len(through):.2f} ms of CPU per "
        f"request; waited for a CPU {now_waited - waited:.1f} s in all"
    )


def report_overhead(label: str, direct: list[float], through: list[float]) -> None:
    ms = 1000
    d50, d99 = percentile(direct, 0.5) * ms, percentile(direct, 0.99) * ms
    p50, p99 = percentile(through, 0.5) * ms, percentile(through, 0.99) * ms
    print(
        f"  {label}: direct p50 {d50:.1f} ms p99 {d99:.1f} ms | through ponder p50 {p50:.1f} ms "
        f"p99 {p99:.1f} ms | added p50 {p50 - d50:+.1f} ms p99 {p99 - d99:+.1f} ms "
        f"({len(direct)} requests each; slowest {max(direct) * ms:.0f} and "
        f"{max(through) * ms:.0f} ms)"
    )


async def sharing(base: str, requests: int = 16) -> tuple[float, float]:
    async with openai.AsyncOpenAI(base_url=base, api_key="x", max_retries=0, timeout=600) as c:

        async def one(i: int) -> None:
            await c.chat.completions.create(
                model="arith@beam_search:4",
                messages=[{"role": "user", "content": PROBLEMS[i % len(PROBLEMS)]}],
                seed=i,
            )

        await one(0)  # warm
        began = time.perf_counter()
        for i in range(requests):
            await one(i)
        sequential = time.perf_counter() - began
        began = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(requests)))
        together = time.perf_counter() - began
    return sequential, together


def streaming(base: str) -> tuple[float, float, float]:
    body = {
        "model": "arith@beam_search:16",
        "messages": [{"role": "user", "content": PROBLEMS[0]}],
        "stream": True,
    }
    first = progress = None
    began = time.perf_counter()
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=600) as response:
        for line in response.iter_lines():
            if not line:
                continue
            now = time.perf_counter() - began
            first = first if first is not None else now
            if progress is None and "reasoning_content" in line:
                progress = now
    total = time.perf_counter() - began
    return first or total, progress or total, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=320,
        help="per path, for the overhead (a p99 of fewer than ~300 is close to the maximum)",
    )
    parser.add_argument("--skip-vllm", action="store_true", help="only parts 1b, 2 and 3")
    parser.add_argument(
        "--vllm-cpus",
        help="the CPUs vLLM runs on, e.g. 0 or 0-3 (default: the first half of this "
        "machine's); ponder's relays run on the others",
    )
    parser.add_argument(
        "--load-beside",
        choices=("upstream", "ponder"),
        default="upstream",
        help="whose CPUs the clients share (default: %(default)s)",
    )
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    half = cpus[: max(1, len(cpus) // 2)]
    upstream_cpus = parse_cpus(args.vllm_cpus) if args.vllm_cpus else half
    relay_cpus = [c for c in cpus if c not in upstream_cpus] or cpus
    load_cpus = upstream_cpus if args.load_beside == "upstream" else relay_cpus
    from ponder.models import embedded_policy

    policy = str(embedded_policy())
    logs = Path(tempfile.mkdtemp(prefix="ponder-bench-serve-"))
    with contextlib.ExitStack() as stack:
        if not args.skip_vllm:
            vllm_port, via_port = free_port(), free_port()
            vllm = [
                str(ROOT / ".venv-vllm" / "bin" / "python"),
                "-m", "vllm.entrypoints.openai.api_server", "--model", policy,
                "--served-model-name", "arith-policy", "--host", "127.0.0.1",
                "--port", str(vllm_port), "--dtype", "float32", "--max-model-len", "512",
                "--enforce-eager", "--no-enable-chunked-prefill",
            ]  # fmt: skip
            env = {
                "HF_HUB_OFFLINE": "1",
                "VLLM_NO_USAGE_STATS": "1",
                "VLLM_CPU_KVCACHE_SPACE": "1",
                "VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, upstream_cpus)),
            }
            print("starting vLLM (about a minute) ...", file=sys.stderr)
            health = f"http://127.0.0.1:{vllm_port}/health"
            stack.enter_context(process(vllm, health, logs / "vllm.log", env, upstream_cpus))
            vllm_url = f"http://127.0.0.1:{vllm_port}/v1"
            server = stack.enter_context(
                relay(vllm_url, via_port, logs / "ponder-vllm.log", relay_cpus)
            )
            via = f"http://127.0.0.1:{via_port}/v1"
            print(
                f"1. overhead of ponder serve for single, against vLLM directly (vLLM on CPUs "
                f"{upstream_cpus}, ponder on {relay_cpus}, the load on {load_cpus}; logs: {logs})"
            )
            measure_overhead(vllm_url, via, server.pid, args.requests, load_cpus)
        with contextlib.ExitStack() as stand_in:
            port, via_port = free_port(), free_port()
            command = [sys.executable, str(ROOT / "benchmarks" / "stand_in_upstream.py"), str(port)]
            health = f"http://127.0.0.1:{port}/health"
            stand_in.enter_context(
                process(command, health, logs / "stand-in.log", cpus=upstream_cpus)
            )
            url = f"http://127.0.0.1:{port}/v1"
            server = stand_in.enter_context(
                relay(url, via_port, logs / "ponder-stand-in.log", relay_cpus)
            )
            print("1b. the same against a stand-in upstream that answers after 300 ms, CPU-free")
            via = f"http://127.0.0.1:{via_port}/v1"
            measure_overhead(url, via, server.pid, args.requests, load_cpus)
        local_port = free_port()
        local = ponder(local_port, "--max-concurrent", "16")
        base = f"http://127.0.0.1:{local_port}"
        stack.enter_context(process(local, f"{base}/health", logs / "ponder-local.log"))
        sequential, together = asyncio.run(sharing(f"{base}/v1"))
        print("2. 16 beam_search:4 requests on the embedded models")
        print(
            f"  one after another {sequential:.1f} s, all at once {together:.1f} s: "
            f"ratio {together / sequential:.2f} (target <= 0.5)"
        )
        first, progress, total = streaming(base)
        print("3. a streamed beam_search:16 request")
        print(
            f"  first chunk {first:.3f} s, first round of progress {progress:.2f} s, total "
            f"{total:.2f} s: progress/total {progress / total:.2f} (target <= 0.25)"
        )


def parse_cpus(text: str) -> list[int]:
    """CPUs as taskset lists them: "0", "0,2", "0-3"."""
    found: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        found.extend(range(int(low), int(high or low) + 1))
    return found


if __name__ == "__main__":
    main()
