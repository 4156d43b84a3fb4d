"""Compute-optimal scaling: a pilot predicts the prompt's difficulty, a policy picks the strategy.

Snell et al. (2024), "Scaling LLM Test-Time Compute Optimally can be More
Effective than Scaling Model Parameters": the best use of test-time compute
depends on the prompt's difficulty, and choosing per prompt beats best-of-N
with about 4x less compute. At budget N this strategy

1. draws a pilot of `pilot` samples (scored by the verifier when there is one)
   and reads their agreement and mean score (`ponder.policy`): the predicted
   difficulty, without the gold answer;
2. looks up, in a policy made by `ponder calibrate`, the configuration that did
   best at this budget for prompts of that difficulty;
3. runs it with what is left of the budget, N - `pilot`, or less where the
   policy found that a smaller budget did as well at this difficulty (a budget
   is a cap). At N <= `pilot` the pilot, cut to N samples, is the whole run:
   a configuration that selects among samples (a vote) picks among them its
   own way, any other takes their verifier-weighted (or plain) vote. The
   pilot's samples are not thrown away: they join the configuration's
   candidates, so voting counts them and a budget cap still answers with them.

The pilot's cost is part of the run's cost and of its budget (`sample_limit`).
`force` runs one configuration behind the same pilot whatever the policy says:
that is how `ponder calibrate` measures every configuration. With no `policy`
the policy shipped for the embedded arith models is used, and only for them;
any other models need their own (`ponder calibrate`), and a policy made for
other models is refused. `Result.details` holds the pilot's reading, the bin,
the calibrated budget followed and the configuration run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError
from ponder.generators.base import derive_seed
from ponder.policy import Configuration, Policy
from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.catalog import build, lookup, parse_params_of
from ponder.strategies.scoring import Sampling, agreement, sample, verify, vote
from ponder.sync import run_sync
from ponder.tasks import Problem
from ponder.types import Result

POLICY_FILE = "compute_optimal.json"


def embedded_policy_file() -> Path:
    """The policy calibrated for the embedded arith policy and PRM."""
    from ponder.models import embedded_policy

    return embedded_policy().parent / POLICY_FILE


@dataclass(frozen=True, slots=True)
class ComputeOptimalParams(Sampling):
    """`policy`: the policy file (default: the embedded models' one); `pilot`: samples
    read to predict difficulty; `force`: run this configuration instead of the
    policy's choice ("name" or "name:key=value,...")."""

    policy: str | None = None
    pilot: int = 4
    force: str | None = None

    def __post_init__(self) -> None:
        Sampling.__post_init__(self)
        if self.pilot < 1:
            raise ConfigError(f"pilot must be at least 1 sample, got {self.pilot}")
        if self.force is not None:
            configuration = Configuration.parse(self.force)
            if configuration.strategy == "compute_optimal":
                raise ConfigError("compute_optimal cannot force itself")


def pilot_reading(run: Run, pilots: list[Any], *, verifier: bool = True) -> dict[str, float]:
    """The pilot's agreement (largest answer group's share), mean verifier score, and the
    predicted-difficulty reading made of them (high: easy); without the verifier (`verifier`
    False, for models served without one), the agreement alone."""
    agreed = agreement(run.task, pilots)
    if not verifier:
        return {"agreement": agreed, "reading": agreed}
    score = sum(c.scores.get("outcome", 0.0) for c in pilots) / max(1, len(pilots))
    return {"agreement": agreed, "verifier_score": score, "reading": (agreed + score) / 2}


class ComputeOptimal(BaseStrategy[ComputeOptimalParams]):
    """Pilot, predict difficulty, run the policy's configuration for it with the rest."""

    name = "compute_optimal"
    Params = ComputeOptimalParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.configurations()  # a missing or mismatched policy is refused now, not mid-run

    @classmethod
    def uses_verifier(cls, params: Any) -> bool:
        """Whether the pilot's reading needs the verifier: it does for a policy made with
        it (the embedded one is), not for one made without; a forced configuration (a
        calibration run) needs what that configuration needs, and reads the pilot with the
        verifier when one is given."""
        if params.force is not None:
            configuration = Configuration.parse(params.force)
            forced = lookup(configuration.strategy)
            return forced.uses_verifier(parse_params_of(forced, dict(configuration.params)))
        if params.policy is None:
            return True  # the embedded models' policy reads the verifier
        try:
            return Policy.load(params.policy).reads_verifier
        except ConfigError:
            return True  # building the strategy then says what is wrong with the file

    def _reads_verifier(self) -> bool:
        if self.policy is None:  # forced: the reading a calibration with these models makes
            return self.verifier is not None
        return self.policy.reads_verifier

    @cached_property
    def policy(self) -> Policy | None:
        """The policy followed (None when `force` decides); checked against the models."""
        if self.params.force is not None:
            return None
        path = self.params.policy
        if path is None:
            from ponder.models import embedded_policy

            if self.generator.folder != embedded_policy():
                raise ConfigError(
                    "compute_optimal needs a policy for this model: make one with "
                    "`ponder calibrate` and give it as --param policy=FILE"
                )
            path = str(embedded_policy_file())
        policy = Policy.load(path)
        if policy.pilot != self.params.pilot:
            raise ConfigError(
                f"{path} was calibrated with a pilot of {policy.pilot} samples, not "
                f"{self.params.pilot}"
            )
        policy.check_models(self.generator, self.verifier)
        return policy

    def configurations(self) -> list[Configuration]:
        if self.params.force is not None:
            return [Configuration.parse(self.params.force)]
        assert self.policy is not None
        return self.policy.configurations()

    def inner(self, configuration: Configuration) -> BaseStrategy[Any]:
        """The strategy object of a configuration, sampling as this one does by default."""
        from dataclasses import fields

        cls = lookup(configuration.strategy)
        values = dict(configuration.params)
        names = {f.name for f in fields(cls.Params)}
        for shared in ("max_tokens", "temperature", "top_p"):
            if shared in names and shared not in values:
                values[shared] = str(getattr(self.params, shared))
        return build(cls, self.generator, self.task, self.verifier, values, seed=None)

    def sample_limit(self, n: int) -> int:
        rest = n - self.params.pilot
        if rest < 1:
            return n  # the pilot, cut to the budget
        return self.params.pilot + max(
            self.inner(c).sample_limit(rest) for c in self.configurations()
        )

    async def arun_allocated(self, problems: Sequence[Problem], total: int) -> list[Result]:
        """Solve `problems` under one `total` budget N, allocated by predicted difficulty.

        Every problem's pilot runs first (their calls merged); then
        `Policy.allocate` shares the total by the pilots' readings and each
        problem goes on at its own budget, given in its result's `budget` and
        `details["allocated"]`.
        """
        if self.policy is None:
            raise ConfigError("allocating a budget needs a policy, not a forced configuration")
        gate = _Allocation(self.policy, [p.id for p in problems], total)
        token = _ALLOCATION.set(gate)  # this call's tasks see it; a concurrent call, its own
        try:
            results = await self.arun_many(problems, max(self.policy.table))
        finally:
            _ALLOCATION.reset(token)
        return [
            replace(
                r,
                budget=gate.budgets[p.id],
                details={**r.details, "allocated": gate.budgets[p.id]},
            )
            for p, r in zip(problems, results, strict=True)
        ]

    def run_allocated(self, problems: Sequence[Problem], total: int) -> list[Result]:
        return run_sync(self.arun_allocated(problems, total))

    async def solve(self, run: Run) -> Choice:
        gate = _ALLOCATION.get()
        size = min(self.params.pilot, run.n)
        with_verifier = self._reads_verifier()
        try:
            pilots = await sample(run, self.params.params(size, run.call_seed()))
            if with_verifier:
                pilots = await verify(run, pilots)
        except BaseException:
            if gate is not None:
                gate.fail()
            raise
        reading = pilot_reading(run, pilots, verifier=with_verifier)
        if gate is not None:
            run.n = await gate.budget(run.problem.id, reading["reading"])
        details: dict[str, Any] = {"pilot": len(pilots), **reading}
        if self.policy is not None:
            details["bin"] = self.policy.bin_of(reading["reading"])
            details["policy_budget"] = self.policy.budget_for(run.n)
            configuration, spend = self.policy.choose(run.n, reading["reading"])
        else:
            configuration, spend = Configuration.parse(self.params.force or ""), run.n
        details["spend"] = spend
        rest = spend - self.params.pilot
        if rest < 1:  # the pilot was the whole budget: choose among it
            details["configuration"] = "pilot vote"
            details["chosen_as"] = str(configuration)  # whose rule picked among the pilot
            choice = self._choose_in_pilot(run, configuration, scored=with_verifier)
            return replace(choice, details=details)
        details["configuration"] = str(configuration)
        strategy = self.inner(configuration)
        sub = Run(
            problem=run.problem,
            task=run.task,
            n=rest,
            generator=run.generator,
            verifier=run.verifier,
            meter=run.meter,
            seed=None if run.seed is None else derive_seed(run.seed, "configuration"),
            trace=run.trace,
            # The same lists: the pilot's samples are candidates of the configuration, and
            # what it keeps is the run's as soon as it is kept (a budget cap, an observer).
            candidates=run.candidates,
            nodes=run.nodes,
            on_text=run.on_text,
            on_sample=run.on_sample,
        )
        choice = await strategy.solve(sub)
        return replace(choice, details={**choice.details, **details})

    def _choose_in_pilot(self, run: Run, configuration: Configuration, *, scored: bool) -> Choice:
        """The pick among the pilot's samples when they are the whole run. A configuration
        that selects among samples (majority, weighted majority, adaptive, ...) picks its
        own way; a search or a revision, which has nothing to choose without drawing more,
        takes the vote weighted by the verifier's scores where the pilot was scored, the
        plain vote where it was not."""
        strategy = self.inner(configuration)
        selects = type(strategy).select is not BaseStrategy.select
        if selects and (scored or not strategy.uses_verifier(strategy.params)):
            return strategy.select(run)
        candidates = run.candidates
        weight = (lambda i: candidates[i].scores.get("outcome", 0.0)) if scored else None
        winner = vote(run.task, candidates, weight)
        return Choice(None) if winner is None else run.pick(winner[0])


class _Allocation:
    """Waits for every problem's pilot reading, then gives each its share of the total."""

    def __init__(self, policy: Policy, ids: list[str], total: int) -> None:
        if len(set(ids)) != len(ids):
            raise ConfigError("allocating a budget needs distinct problem ids")
        self.policy, self.ids, self.total = policy, ids, total
        policy.allocate([1.0] * len(ids), total)  # refuses a total too small, before any work
        self.readings: dict[str, float] = {}
        self.budgets: dict[str, int] = {}
        self.ready = asyncio.Event()
        self.failed = False

    async def budget(self, problem: str, reading: float) -> int:
        self.readings[problem] = reading
        if len(self.readings) == len(self.ids):
            shares = self.policy.allocate([self.readings[i] for i in self.ids], self.total)
            self.budgets = dict(zip(self.ids, shares, strict=True))
            self.ready.set()
        await self.ready.wait()
        if self.failed:
            raise ConfigError("another problem's pilot failed; the allocation was abandoned")
        return self.budgets[problem]

    def fail(self) -> None:
        self.failed = True
        self.ready.set()


# The allocation an `arun_allocated` call is making, seen by the problems it runs (each
# asyncio task copies the context it was created in), so the strategy object holds no
# per-call state and serves concurrent calls.
_ALLOCATION: ContextVar[_Allocation | None] = ContextVar("ponder_allocation", default=None)
