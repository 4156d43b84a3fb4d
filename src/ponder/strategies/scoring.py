"""Scoring and grouping candidates: what the sample-then-select strategies share.

- `sample`: one call for N whole solutions, kept as candidates in the run's trace;
  `confidence`, the model's own certainty in a sample.
- `verify`: one verifier call for every candidate; each gets its step scores and
  the aggregations the PRM literature uses ("prm_last", "prm_min",
  "prm_product", "prm_mean") and the verifier's "outcome".
- `answer_groups`: candidates whose answers the task's grader calls equivalent,
  so that votes count "1/2" and "0.5" as one answer; `tally` and `vote`: every
  strategy's vote over them, plain or weighted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ponder.errors import ConfigError
from ponder.generators.base import SamplingParams
from ponder.strategies.base import Run
from ponder.tasks import Task
from ponder.types import Candidate, Completion, Step
from ponder.verifiers.base import AGGREGATIONS, Solution

SCORE_KEYS = tuple(f"prm_{how}" for how in AGGREGATIONS)


@dataclass(frozen=True, slots=True)
class Sampling:
    """How whole solutions are sampled; every sampling strategy's parameters extend it."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 512

    def __post_init__(self) -> None:
        self.params(1)  # SamplingParams validates the values

    def params(
        self, n: int, seed: int | None = None, logprobs: int | None = None
    ) -> SamplingParams:
        return SamplingParams(
            n=n,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=seed,
            logprobs=logprobs,
        )


def check_aggregation(aggregation: str) -> None:
    """Refuse an aggregation `score_key` does not know."""
    score_key(aggregation)


def score_key(aggregation: str) -> str:
    """The `Candidate.scores` key of a PRM aggregation ("last", "min", "product", "mean")."""
    if aggregation not in AGGREGATIONS and aggregation != "outcome":
        raise ConfigError(
            f"unknown aggregation {aggregation!r}; use one of {', '.join(AGGREGATIONS)} or outcome"
        )
    return "outcome" if aggregation == "outcome" else f"prm_{aggregation}"


async def sample(run: Run, params: SamplingParams, *, stream: bool = False) -> list[Candidate]:
    """`params.n` whole solutions in one call; each is kept in the run and its trace.

    With log-probabilities asked for, each candidate also gets its "confidence"
    (`confidence`). With `stream` (one sample that is the answer as it is written)
    and a caller that streams the run (`Run.on_text`), its text goes there as it comes.
    """
    if stream and run.on_text is not None and params.n == 1:
        on_text = run.on_text
        [generation] = await run.generator.stream([run.prompt()], params, lambda _, t: on_text(t))
    else:
        [generation] = await run.generator.generate([run.prompt()], params)
    candidates = []
    for completion in generation.completions:
        candidate = run.task.candidate(completion)
        if completion.logprobs:
            candidate = replace(candidate, scores={"confidence": confidence(completion)})
        run.keep(candidate, run.trace.add(0, candidate.text, kind="sample"))
        candidates.append(candidate)
    return candidates


def confidence(completion: Completion) -> float:
    """The model's certainty in a completion: mean over tokens of -(mean top-k log-probability).

    Kang et al. (2025) rank samples by self-certainty, the KL divergence of each
    token's distribution from uniform, averaged over tokens; that needs the full
    distribution, which servers do not return. DeepConf (Fu et al., 2025) uses its
    top-k form, the token confidence -(1/k) sum_j log p_j over the k most likely
    tokens, which any OpenAI-compatible server gives: higher is more certain.
    A token without alternatives counts by its own log-probability.
    """
    if not completion.logprobs:
        return 0.0
    values = []
    for token in completion.logprobs:
        tops = [logprob for _, logprob in token.top] or [token.logprob]
        values.append(-sum(tops) / len(tops))
    return sum(values) / len(values)


async def verify(run: Run, candidates: Sequence[Candidate]) -> list[Candidate]:
    """`candidates` with the verifier's scores, from one call over their distinct solutions.

    Candidates scored before (a pilot's, a revision chain's) keep their scores
    and are not sent again.
    """
    if run.verifier is None:
        raise ConfigError("this strategy needs a verifier")
    steps = [tuple(s.text.strip() for s in c.steps) for c in candidates]
    distinct = list(
        dict.fromkeys(
            s for s, c in zip(steps, candidates, strict=True) if s and "outcome" not in c.scores
        )
    )
    verdicts = await run.verifier.score([Solution(run.problem.question, s) for s in distinct])
    verdict_of = dict(zip(distinct, verdicts, strict=True))
    scored = []
    for candidate, key in zip(candidates, steps, strict=True):
        verdict = verdict_of.get(key)
        if verdict is None and "outcome" in candidate.scores:
            scored.append(candidate)
            continue
        if verdict is None:  # nothing to judge: an empty solution ranks last
            scores = {name: 0.0 for name in (*SCORE_KEYS, "outcome")}
            scored.append(replace(candidate, scores={**candidate.scores, **scores}))
            continue
        scores = {f"prm_{how}": verdict.aggregate(how) for how in AGGREGATIONS}
        scores["outcome"] = verdict.outcome
        steps_scored = candidate.steps
        if len(verdict.step_scores) == len(candidate.steps):
            steps_scored = tuple(
                Step(s.text, score)
                for s, score in zip(candidate.steps, verdict.step_scores, strict=True)
            )
        scored.append(replace(candidate, steps=steps_scored, scores={**candidate.scores, **scores}))
    kept = {id(c): j for j, c in enumerate(run.candidates)}
    for before, after in zip(candidates, scored, strict=True):  # the run keeps the scored ones
        if id(before) in kept:
            run.candidates[kept[id(before)]] = after
            run.trace.update(run.nodes[kept[id(before)]], score=after.scores["outcome"])
    return scored


def answer_groups(task: Task, candidates: Sequence[Candidate]) -> list[list[int]]:
    """Indices of candidates grouped by equivalent answer (first appearance first).

    Candidates without an answer belong to no group. Two answers are equivalent
    when the task's grader accepts one with the other as the gold answer.
    """
    groups: list[list[int]] = []
    for i, candidate in enumerate(candidates):
        if candidate.answer is None:
            continue
        for group in groups:
            representative = candidates[group[0]].answer
            assert representative is not None
            if candidate.answer == representative or task.grader(candidate.answer, representative):
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def tally(
    task: Task, candidates: Sequence[Candidate], weight: Callable[[int], float] | None = None
) -> tuple[list[list[int]], list[float]]:
    """The answer groups of `candidates` and each group's votes: one per candidate, or
    `weight(i)` for candidate i."""
    groups = answer_groups(task, candidates)
    if weight is None:
        return groups, [float(len(g)) for g in groups]
    return groups, [sum(weight(i) for i in g) for g in groups]


def vote(
    task: Task, candidates: Sequence[Candidate], weight: Callable[[int], float] | None = None
) -> list[int] | None:
    """The winning answer group (indices of `candidates`), by `tally`'s votes; the first
    group to appear wins a tie. None when no candidate has an answer."""
    groups, totals = tally(task, candidates, weight)
    return winner(groups, totals)


def winner(groups: list[list[int]], totals: list[float]) -> list[int] | None:
    """The group with the most votes, the first on a tie; None for no groups."""
    if not groups:
        return None
    return groups[max(range(len(groups)), key=lambda g: (totals[g], -g))]


def agreement(task: Task, candidates: Sequence[Candidate]) -> float:
    """The share of `candidates` whose answer is the most common one (0 for none): how sure
    the samples are, read without a verifier."""
    if not candidates:
        return 0.0
    return max((len(g) for g in answer_groups(task, candidates)), default=0) / len(candidates)
