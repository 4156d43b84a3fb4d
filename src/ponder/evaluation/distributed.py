"""A sweep's jobs on a Ray cluster: workers solve, the driver alone stores.

`ponder eval ... --ray auto` (or `--ray HOST:PORT`) joins a running cluster;
`--ray local` starts one inside the process. Each worker is a Ray actor that
loads the sweep's models itself (a model folder on its node, or clients of the
model servers the URLs name) and is handed the tasks by the driver, so the
data files need not be on the workers' nodes. The driver hands out the same
jobs, of the same problems, as an in-process run does (`Sweep.jobs`), and the
workers run the same code on them (`Solver`), so they give the same answers.
What a worker finishes comes back to the driver, which commits it to the
run's store: a worker that dies (its node killed, say) loses only the jobs it
was doing, which the driver hands to a new worker on an alive node, and
nothing is stored twice (only the driver writes, once per job).

Workers are pinned to the nodes in turn (one per node by default,
`--ray-workers N` to choose; Ray's soft node affinity was seen to put them all
on one node, hence pinning, and restarts by the driver). They ask for no CPU
slots (a node's model server or local model is its real limit), and each runs
two jobs at once, so that it never waits for the driver between jobs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ponder.errors import BackendError, ConfigError
from ponder.evaluation.config import EvalConfig
from ponder.evaluation.jobs import Done, Job, Solver, load_models

if TYPE_CHECKING:
    from ponder.tasks import Task

JOBS_PER_WORKER = 2
MAX_REPLACED = 3  # workers started in place of lost ones, per worker, before the sweep stops


class RaySolver:
    """A Ray worker: the sweep's models, loaded on its node, and a `Solver` over them."""

    def __init__(self, config: dict[str, Any], tasks: dict[str, Task], threads: int) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:  # a worker that only talks to model servers
            pass
        sweep = EvalConfig.from_dict(config)
        generator, verifier = load_models(sweep)
        self.solver = Solver(sweep, generator, verifier, tasks)
        self.connected = False

    async def run(self, job: Job) -> list[Done]:
        if not self.connected:
            await self.solver.connect()
            self.connected = True
        return await self.solver.collect(job)


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--ray needs Ray: pip install 'ponder[ray]'") from exc
    return ray


def connect(address: str) -> Any:
    """The Ray module, connected to the cluster at `address` ("auto", HOST:PORT, ray://...,
    or "local" for a cluster of this process's own)."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    try:
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot join the Ray cluster at {address}: {exc}") from None
    return ray


async def run_on_ray(
    jobs: list[Job],
    sweep: EvalConfig,
    tasks: dict[str, Task],
    commit: Callable[[Done], None],
    address: str,
    workers: int | None,
) -> None:
    """Run a sweep's `jobs` on the cluster, `commit`ting what each finished as it comes back."""
    if not jobs:
        return
    ray = connect(address)
    alive = _alive(ray)
    count = min(workers or len(alive), len(jobs))
    cpus = sum(int(n.get("Resources", {}).get("CPU", 1)) for n in alive.values())
    threads = max(1, cpus // count)
    config = sweep.to_dict()
    placed: dict[Any, str] = {}  # worker -> its node

    def start(node: str) -> Any:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        worker = (
            ray.remote(RaySolver)
            .options(
                num_cpus=0,
                max_concurrency=JOBS_PER_WORKER,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
            )
            .remote(config, tasks, threads)
        )
        placed[worker] = node
        return worker

    def replace_lost(worker: Any) -> Any:
        """A worker on the alive node with the fewest, for one whose node is gone."""
        placed.pop(worker, None)
        nodes = _alive(ray)
        if not nodes:
            raise ConfigError("every node of the Ray cluster is gone")
        load = {node: 0 for node in nodes}
        for node in placed.values():
            if node in load:
                load[node] += 1
        return start(min(load, key=lambda node: (load[node], node)))

    nodes = sorted(alive)
    pool = [start(nodes[k % len(nodes)]) for k in range(count)]
    waiting = list(reversed(jobs))
    running: dict[asyncio.Future[Any], tuple[Any, Job]] = {}
    replacement: dict[Any, Any] = {}  # a lost worker -> the one started in its place
    exceptions = ray.exceptions
    lost = (exceptions.RayActorError, exceptions.NodeDiedError, exceptions.WorkerCrashedError)

    def hand_out(worker: Any) -> None:
        if waiting:
            job = waiting.pop()
            future = asyncio.wrap_future(worker.run.remote(job).future())
            running[future] = (worker, job)

    for worker in pool:
        for _ in range(JOBS_PER_WORKER):
            hand_out(worker)
    try:
        while running:
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for future in finished:
                worker, job = running.pop(future)
                try:
                    pieces = future.result()
                except lost as exc:  # its node (or process) died: the job runs again elsewhere
                    if getattr(exc, "actor_init_failed", False):  # it could not load its models
                        message = f"a Ray worker could not start: {_last_line(exc)}"
                        raise BackendError(message) from None
                    waiting.append(job)
                    if worker not in replacement:
                        if len(replacement) >= MAX_REPLACED * count:
                            raise BackendError(
                                f"Ray workers died {len(replacement)} times; the last: "
                                f"{_last_line(exc)}"
                            ) from None
                        replacement[worker] = replace_lost(worker)
                    hand_out(replacement[worker])
                    continue
                except ray.exceptions.RayTaskError as exc:  # the job's own error, as raised
                    raise exc.cause from None
                for done in pieces:
                    commit(done)
                hand_out(worker)
    finally:
        for future in running:
            future.cancel()
        for worker in placed:
            ray.kill(worker)


def _last_line(exc: BaseException) -> str:
    """What a Ray error says in its last line (the worker's own exception, after a traceback)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _alive(ray: Any) -> dict[str, dict[str, Any]]:
    """The cluster's alive nodes, by id."""
    return {n["NodeID"]: n for n in ray.nodes() if n.get("Alive")}


class LocalCluster:
    """A Ray cluster of `nodes` nodes on this machine (a head, and nodes that join it, each
    in its own process group so that one can be killed), for trying `--ray` and for tests.

        with LocalCluster(2) as cluster:
            ponder eval ... --ray cluster.address
    """

    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, timeout_s: float = 180) -> None:
        self.nodes, self.cpus, self.timeout_s = nodes, cpus_per_node, timeout_s
        self.address = ""
        self.members: list[subprocess.Popen[bytes]] = []
        self._ray = str(Path(sys.executable).parent / "ray")
        self._auth = os.environ.get("RAY_AUTH_MODE")

    def __enter__(self) -> LocalCluster:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        # One machine's cluster: no tokens to hand between nodes.
        os.environ["RAY_AUTH_MODE"] = "disabled"
        common = ["--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}", "--disable-usage-stats"]
        try:
            head = [self._ray, "start", "--head", f"--port={port}", "--include-dashboard=false"]
            subprocess.run(
                [*head, *common], check=True, capture_output=True, timeout=self.timeout_s
            )
            for _ in range(self.nodes - 1):
                self.members.append(
                    subprocess.Popen(
                        [self._ray, "start", f"--address={self.address}", "--block", *common],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
            self._wait_for(self.nodes)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_for(self, count: int) -> None:
        probe = (
            f"import ray; ray.init({self.address!r}, log_to_driver=False); "
            "print(sum(n['Alive'] for n in ray.nodes()))"
        )
        deadline = time.monotonic() + self.timeout_s
        while True:
            done = subprocess.run(
                [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
            )
            if done.stdout.strip() == str(count):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the local Ray cluster did not reach {count} nodes")
            time.sleep(2)

    def kill(self, member: int = 0) -> None:
        """Kill a joined node (not the head) and every process it started."""
        os.killpg(self.members[member].pid, signal.SIGKILL)

    def __exit__(self, *exc: object) -> None:
        for member in self.members:
            if member.poll() is None:
                os.killpg(member.pid, signal.SIGKILL)
        subprocess.run([self._ray, "stop", "--force"], capture_output=True, timeout=120)
        if self._auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = self._auth
