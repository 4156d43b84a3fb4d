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
slots (a node's model server or local model is its real limit), and each keeps
at most two jobs queued so that a fast worker is not left idle behind a slow one.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from ponder.errors import ConfigError
from ponder.evaluation.config import EvalConfig

if TYPE_CHECKING:
    from ponder.evaluation.runner import Done, Job, Sweep
    from ponder.tasks import Task

QUEUED_PER_WORKER = 2


class RaySolver:
    """A Ray worker: the sweep's models, loaded on its node, and a `Solver` over them."""

    def __init__(self, config: dict[str, Any], tasks: dict[str, Task], threads: int) -> None:
        from ponder.evaluation.runner import Solver, load_models

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
            await self.solver.generator.connect()
            if self.solver.verifier is not None:
                await self.solver.verifier.connect()
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


async def run_on_ray(sweep: Sweep, jobs: list[Job], address: str, workers: int | None) -> None:
    """Run `jobs` on the cluster, committing each one's results as it comes back."""
    if not jobs:
        return
    ray = connect(address)
    alive = _alive(ray)
    count = min(workers or len(alive), len(jobs))
    cpus = sum(int(n.get("Resources", {}).get("CPU", 1)) for n in alive.values())
    threads = max(1, cpus // count)
    config, tasks = sweep.config.to_dict(), sweep.tasks
    placed: dict[Any, str] = {}  # worker -> its node

    def start(node: str) -> Any:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        worker = (
            ray.remote(RaySolver)
            .options(
                num_cpus=0,
                max_concurrency=QUEUED_PER_WORKER,
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
        for _ in range(QUEUED_PER_WORKER):
            hand_out(worker)
    try:
        while running:
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for future in finished:
                worker, job = running.pop(future)
                try:
                    pieces = future.result()
                except lost:  # its node (or process) died: the job runs again on another
                    waiting.append(job)
                    if worker not in replacement:
                        replacement[worker] = replace_lost(worker)
                    hand_out(replacement[worker])
                    continue
                except ray.exceptions.RayTaskError as exc:  # the job's own error, as raised
                    raise exc.cause from None
                for done in pieces:
                    sweep.commit(done)
                hand_out(worker)
    finally:
        for future in running:
            future.cancel()
        for worker in placed:
            ray.kill(worker)


def _alive(ray: Any) -> dict[str, dict[str, Any]]:
    """The cluster's alive nodes, by id."""
    return {n["NodeID"]: n for n in ray.nodes() if n.get("Alive")}
