"""Step-level search plumbing: partial solutions, batched expansion and batched scoring.

What beam search, lookahead, DVTS, particle filtering and MCTS share:

- `Partial`: a partial solution (the steps so far, the exact text the model
  continues, its trace node, tokens spent on its path, whether it is done).
- `expand`: ONE generator call that extends every partial of a frontier by one
  step, `k` samples each; generation stops at the task's step separator.
  Every prompt is the problem's prompt followed by the partial's text exactly,
  so prompts that share a prefix share it token for token (a server's prefix
  cache reuses it); identical sibling steps are merged into one child.
- `score`: ONE verifier call for every partial of a frontier.
- `finish`: a done partial as a `Candidate`, kept in the run.

A step ends at the separator; a sample that ends (EOS) or writes its answer
finishes the solution; one that runs out of `step_tokens` is cut and finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ponder.errors import ConfigError
from ponder.generators.base import SamplingParams
from ponder.strategies.base import Run
from ponder.strategies.scoring import Sampling, check_aggregation
from ponder.types import Candidate, Completion, FinishReason, Step
from ponder.verifiers.base import Solution, aggregate


@dataclass(frozen=True, slots=True)
class StepSearch(Sampling):
    """What every step-level search takes.

    `max_tokens` bounds a whole solution, `step_tokens` one step, `max_steps`
    the depth; `aggregation` folds a path's PRM step scores into its score.
    """

    step_tokens: int = 128
    max_steps: int = 40
    aggregation: str = "last"

    def __post_init__(self) -> None:
        Sampling.__post_init__(self)
        if self.step_tokens < 1:
            raise ConfigError(f"step_tokens must be at least 1, got {self.step_tokens}")
        if self.max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, got {self.max_steps}")
        check_aggregation(self.aggregation)

    def step_params(self, k: int, seed: int | None, separator: str) -> SamplingParams:
        step = min(self.step_tokens, self.max_tokens)
        return self.params(k, seed).replace(max_tokens=step, stop=(separator,))


@dataclass(frozen=True, slots=True)
class BeamSearchBase(StepSearch):
    """What the searches that keep N / M paths take: `beam_width` (M), the steps sampled
    per kept path (or subtree) each round."""

    beam_width: int = 4

    def __post_init__(self) -> None:
        StepSearch.__post_init__(self)
        if self.beam_width < 1:
            raise ConfigError(f"beam_width must be at least 1, got {self.beam_width}")


@dataclass(frozen=True, slots=True)
class Partial:
    """A partial solution in a search tree."""

    text: str
    steps: tuple[str, ...]
    node: int
    tokens: int = 0
    depth: int = 0  # steps generated on its path, blank ones included
    done: bool = False
    finish: FinishReason = "stop"
    scores: tuple[float, ...] = ()

    @property
    def score(self) -> float:
        """The PRM's score of the latest step (0.5 before any)."""
        return self.scores[-1] if self.scores else 0.5

    def value(self, aggregation: str) -> float:
        """The path's score folded as `aggregation` says ("outcome" reads as "last")."""
        if not self.scores:
            return 0.5
        return aggregate(self.scores, "last" if aggregation == "outcome" else aggregation)  # type: ignore[arg-type]


ROOT = Partial(text="", steps=(), node=0)  # the empty solution, at the trace's root


async def expand(
    run: Run, frontier: Sequence[Partial], k: int, params: StepSearch, *, kind: str = "step"
) -> list[list[Partial]]:
    """Each partial's children: `k` sampled next steps each, from one generator call."""
    separator = run.task.step_separator
    live = [p for p in frontier if not p.done]
    if not live:
        return [[] for _ in frontier]
    sampling = params.step_params(k, run.call_seed(), separator)
    generations = iter(await run.generator.generate([run.prompt(p.text) for p in live], sampling))
    children: list[list[Partial]] = []
    for partial in frontier:
        if partial.done:
            children.append([])
            continue
        seen: dict[str, Partial] = {}
        for completion in next(generations).completions:
            key = completion.text.strip()
            if key in seen:  # the same step twice: one child
                continue
            seen[key] = _child(run, partial, completion, separator, params, kind)
        children.append(list(seen.values()))
    return children


def _child(
    run: Run,
    parent: Partial,
    completion: Completion,
    separator: str,
    params: StepSearch,
    kind: str,
) -> Partial:
    step = completion.text
    tokens = parent.tokens + completion.num_tokens
    ended = completion.finish_reason == "stop" and completion.stop_string is None
    cut = completion.finish_reason == "length" or tokens >= params.max_tokens
    text = parent.text + step + ("" if ended or cut else separator)
    steps = parent.steps + ((step.strip(),) if step.strip() else ())
    answered = bool(step.strip()) and run.task.extractor(step) is not None
    done = ended or cut or answered or parent.depth + 1 >= params.max_steps
    node = run.trace.add(parent.node, step, kind=kind)
    return Partial(
        text=text,
        steps=steps,
        node=node,
        tokens=tokens,
        depth=parent.depth + 1,
        done=done,
        finish="length" if cut and not (ended or answered) else "stop",
    )


async def score(run: Run, partials: Sequence[Partial]) -> list[Partial]:
    """`partials` with their step scores, from one verifier call (a partial without steps: 0.5)."""
    if run.verifier is None:
        raise ConfigError("a step-level search needs a verifier (a PRM)")
    judged = [p for p in partials if p.steps]
    verdicts = await run.verifier.score([Solution(run.problem.question, p.steps) for p in judged])
    verdict_of = {id(p): v for p, v in zip(judged, verdicts, strict=True)}
    scored = []
    for partial in partials:
        verdict = verdict_of.get(id(partial))
        if verdict is None:
            scored.append(partial)
            continue
        steps = verdict.step_scores or (verdict.outcome,)
        scored.append(replace(partial, scores=tuple(steps)))
        run.trace.update(partial.node, score=steps[-1])
    return scored


def finish(run: Run, partial: Partial, aggregation: str) -> Candidate:
    """`partial` as a candidate with its scores; the run keeps it (and its node is an answer)."""
    text = partial.text
    scores = {"path": partial.value(aggregation)}
    steps = partial.steps
    step_scores = partial.scores if len(partial.scores) == len(steps) else (None,) * len(steps)
    candidate = Candidate(
        text=text,
        steps=tuple(Step(s, v) for s, v in zip(steps, step_scores, strict=True)),
        answer=run.task.extractor(text),
        num_tokens=partial.tokens,
        finish_reason=partial.finish,
        scores=scores,
    )
    run.trace.update(partial.node, kind="answer")
    run.keep(candidate, partial.node)
    return candidate
