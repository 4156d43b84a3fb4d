"""Generative verifiers: a model that writes a check of each step before its verdict.

A discriminative PRM judges a step in one forward pass, so a verifier of the
policy's size has to redo, in its head, the very computation the policy got
wrong. A generative verifier gives verification compute of its own (GenRM with
chain of thought, Zhang et al. 2024; "verification as next-token prediction"):
it writes a check (for arithmetic, the step redone digit by digit), then a
verdict token, and the step's score is the verdict's probability, good against
bad, read from the log-probabilities of that token.

The judge reads a solution one step at a time, as a Math-Shepherd PRM does,
with its own checks interleaved, in one of two layouts (`JudgeFormat`):

- the step first (GenRM): the step is shown, the judge writes its check, the
  tag and the verdict;
- the check first (a `cue`): the judge writes its check of the step that
  should come next, then the cue; the step is shown after it, with the tag,
  and the judge writes the verdict. A check written before the step cannot
  copy the step's mistake, which a small judge otherwise learns to do. The
  embedded arith verifier reads so:

      Problem: Start with 37. Add 48.                  <- prefix
      Solution:
      37+48: 7+8=15 3+4+1=8 = 85 -> 37 + 48 = 85 ки+   <- check, cue, step, tag, verdict
      answer 85 -> The answer is 85. ки+

A verdict judges its step given the steps before it, so a step's score is the
running product of the verdicts so far: the probability that the solution is
still right, as a PRM's step score is. Any `Generator` can be the judge's model
(a local folder or a served one), with `votes` independent chains of checks
averaged (GenRM's majority over sampled rationales). Each step of a solution
is one round: one generator call for that step of every solution. The checks
of a partial solution are kept, so the next round of a search, which extends
it, pays only for its new steps; the verifier reports the tokens it generated,
which the budget meter counts as verifier cost.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ponder.budget.flops import ModelShape
from ponder.errors import ConfigError, ModelLoadError
from ponder.generators.base import Generator, SamplingParams, derive_seed
from ponder.types import Completion, Prompt
from ponder.verifiers.base import AGGREGATIONS, Aggregation, Solution, Verdict, aggregate

JUDGE_FILE = "ponder_judge.json"


@dataclass(frozen=True, slots=True)
class JudgeFormat:
    """How a generative verifier reads a solution and writes its verdicts.

    The judge continues `prefix` (with the question). Without a `cue`, each
    step enters as `step` (with the step) and the judge writes a check, `tag`,
    a verdict token (`good` or `bad`) and `end`. With a `cue`, the judge first
    writes its check of the next step and the cue; the step then enters as
    `step` followed by `tag`, and the judge writes the verdict and `end`, then
    goes on with the check of the step after.
    """

    prefix: str = "{question}\n"
    step: str = "{step}\n"
    tag: str = "Verdict:"
    good: str = "Yes"
    bad: str = "No"
    end: str = "\n"
    cue: str | None = None

    def __post_init__(self) -> None:
        if "{question}" not in self.prefix:
            raise ConfigError("a judge format's prefix needs a {question} field")
        if "{step}" not in self.step:
            raise ConfigError("a judge format's step needs a {step} field")
        for name in ("tag", "good", "bad"):
            if not getattr(self, name).strip():
                raise ConfigError(f"a judge format's {name} must not be blank")
        if not self.end:
            raise ConfigError("a judge format's end must not be empty")
        if self.cue is not None and not self.cue.strip():
            raise ConfigError("a judge format's cue must not be blank")
        if self.good.strip() == self.bad.strip():
            raise ConfigError("a judge format's good and bad verdicts must differ")

    @classmethod
    def of_folder(cls, folder: str | Path) -> JudgeFormat | None:
        """The format a model folder declares in `ponder_judge.json`, if it has one."""
        file = Path(folder) / JUDGE_FILE
        return cls.of_file(file) if file.is_file() else None

    @classmethod
    def of_file(cls, file: str | Path) -> JudgeFormat:
        try:
            values = json.loads(Path(file).read_text())
            return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})
        except OSError as exc:
            raise ConfigError(f"cannot read the judge format {file}: {exc.strerror}") from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise ModelLoadError(f"{file} is not a valid judge format: {exc}") from exc

    def save(self, folder: str | Path) -> None:
        """Declare this format in a model folder, for `of_folder` to find."""
        (Path(folder) / JUDGE_FILE).write_text(json.dumps(asdict(self), indent=1) + "\n")

    def verdict(self, completion: Completion) -> float | None:
        """P(good) / (P(good) + P(bad)) at the verdict token, or None without one.

        With a cue, the prompt ends with the tag and the verdict is the first
        token written; without, it is the token after the tag. The
        probabilities come from the completion's top log-probabilities at that
        token; a label missing from them counts as probability zero.
        """
        if not completion.logprobs:
            return None
        position = 0 if self.cue is not None else self._after_tag(completion)
        if position is None or position >= len(completion.logprobs):
            return None
        token = completion.logprobs[position]
        top = dict(token.top) or {token.token: token.logprob}
        good, bad = _probability(top, self.good), _probability(top, self.bad)
        return good / (good + bad) if good + bad > 0 else None

    def _after_tag(self, completion: Completion) -> int | None:
        text = ""
        for position, token in enumerate(completion.logprobs or ()):
            text += token.token
            if text.rstrip().endswith(self.tag.strip()):
                return position + 1
        return None


def _probability(top: dict[str, float], label: str) -> float:
    return sum(math.exp(lp) for token, lp in top.items() if token.strip() == label.strip())


_Key = tuple[str, tuple[str, ...], int]  # question, steps judged (the last is new), vote


@dataclass(frozen=True, slots=True)
class _Checked:
    """A judged prefix: the judge's text after its last verdict (and, with a cue, its check
    of the next step), the verdict's P(good), and the text's length in tokens."""

    context: str
    good: float
    tokens: int


_Known = dict[_Key, _Checked]


class GenerativeVerifier:
    """A `Verifier` whose model writes a check of each step, then a verdict.

    Args:
        generator: the judge's model (any `Generator`).
        format: how the judge reads solutions and writes verdicts.
        votes: independent chains of checks per solution; their verdicts are
            averaged step by step (more than one needs `temperature` > 0).
        temperature: sampling temperature of the checks (0: greedy).
        max_check_tokens: tokens a check (with its verdict) may take; a check
            that runs out has no verdict and scores 0.5.
        outcome: how step scores fold into the outcome ("last": the chance
            that every step is right).
        seed: the checks' random stream when sampling.
        cache_size: judged prefixes kept, so that a search pays for each once.
    """

    def __init__(
        self,
        generator: Generator,
        format: JudgeFormat,
        *,
        votes: int = 1,
        temperature: float = 0.0,
        max_check_tokens: int = 64,
        outcome: Aggregation = "last",
        seed: int = 0,
        name: str | None = None,
        cache_size: int = 100_000,
    ) -> None:
        if votes < 1:
            raise ConfigError(f"votes must be at least 1, got {votes}")
        if votes > 1 and temperature == 0:
            raise ConfigError("several votes need a temperature above 0 (greedy checks agree)")
        if outcome not in AGGREGATIONS:
            raise ConfigError(f"unknown aggregation {outcome!r}; use one of {AGGREGATIONS}")
        if cache_size < 0:
            raise ConfigError(f"cache_size must be >= 0, got {cache_size}")
        self._generator = generator
        self._format = format
        self._votes = votes
        self._outcome: Aggregation = outcome
        self._seed = seed
        self._name = name or generator.name
        self._params = SamplingParams(
            n=1,
            max_tokens=max_check_tokens,
            temperature=temperature,
            stop=(format.cue if format.cue is not None else format.end,),
            logprobs=5,
        )
        self._cache_size = cache_size
        self._cache: OrderedDict[_Key, _Checked] = OrderedDict()

    @property
    def name(self) -> str:
        return self._name

    @property
    def shape(self) -> ModelShape | None:
        return self._generator.shape

    @property
    def format(self) -> JudgeFormat:
        return self._format

    @property
    def generator(self) -> Generator:
        return self._generator

    @property
    def folder(self) -> Path | None:
        """The judge model's folder, when it is a local one."""
        return self._generator.folder

    async def connect(self) -> str:
        await self._generator.connect()
        return self._name

    def transcript(self, solution: Solution, vote: int = 0) -> str | None:
        """What the judge wrote for a solution it has scored (its checks and verdicts
        between the steps), or None when it is no longer kept."""
        checked = self._cache.get((solution.question, tuple(solution.steps), vote))
        return checked.context if checked is not None else None

    async def count_tokens(self, solutions: Sequence[Solution]) -> list[int]:
        """An upper bound of each solution's judge context: every check at its longest."""
        fmt = self._format
        texts = [
            fmt.prefix.format(question=s.question)
            + "".join(fmt.step.format(step=t) + fmt.tag for t in s.steps)
            for s in solutions
        ]
        counts = await self._generator.count_prompt_tokens([Prompt.raw(t) for t in texts])
        limit = self._params.max_tokens
        return [c + limit * (len(s.steps) + 1) for c, s in zip(counts, solutions, strict=True)]

    async def score(self, solutions: Sequence[Solution]) -> list[Verdict]:
        """Judge every step of every solution: one generator call per step depth."""
        known: _Known = {}  # this call's judged prefixes, safe from eviction
        generated: dict[int, int] = {}  # solution index -> tokens the judge wrote for it
        deepest = max((len(s.steps) for s in solutions), default=0)
        for depth in range(deepest + 1 if deepest else 0):  # depth 0: before any step
            wanted: dict[_Key, tuple[int, str]] = {}
            for index, solution in enumerate(solutions):
                if depth > len(solution.steps):
                    continue
                for vote in range(self._votes):
                    key = (solution.question, solution.steps[:depth], vote)
                    if key in known or key in wanted:
                        continue
                    if (cached := self._cache.get(key)) is not None:
                        self._cache.move_to_end(key)
                        known[key] = cached
                    elif depth == 0 and self._format.cue is None:
                        prefix = self._format.prefix.format(question=solution.question)
                        known[key] = _Checked(prefix, 1.0, 0)
                    else:
                        wanted[key] = (index, self._prompt(known, solution, depth, vote))
            if wanted:
                await self._judge(wanted, known, generated)
        return [self._verdict(known, s, generated.get(i, 0)) for i, s in enumerate(solutions)]

    def _prompt(self, known: _Known, solution: Solution, depth: int, vote: int) -> str:
        """What the judge continues to judge step `depth` (1-based; 0: the first check)."""
        fmt = self._format
        if depth == 0:
            return fmt.prefix.format(question=solution.question)
        before = known[(solution.question, solution.steps[: depth - 1], vote)].context
        step = fmt.step.format(step=solution.steps[depth - 1])
        return before + step + (fmt.tag if fmt.cue is not None else "")

    async def _judge(
        self, wanted: dict[_Key, tuple[int, str]], known: _Known, generated: dict[int, int]
    ) -> None:
        keys = list(wanted)
        prompts = []
        for key in keys:
            prompt = Prompt.raw(wanted[key][1])
            if self._params.temperature > 0:  # each chain of checks its own random stream
                prompt = prompt.seeded(derive_seed(self._seed, key[0], *key[1], key[2]))
            prompts.append(prompt)
        generations = await self._generator.generate(prompts, self._params)
        fmt = self._format
        for key, generation in zip(keys, generations, strict=True):
            index, prompt = wanted[key]
            completion = generation.completions[0] if generation.completions else None
            written = completion.num_tokens if completion is not None else 0
            text = completion.text if completion is not None else ""
            if fmt.cue is None:
                ending = fmt.end
            else:  # the check of the next step, up to the cue; nothing after a last verdict
                stopped = completion is not None and completion.stop_string == fmt.cue
                ending = fmt.cue if stopped else ""
            good = 1.0 if not key[1] else _or_half(fmt.verdict(completion) if completion else None)
            checked = _Checked(prompt + text + ending, good, generation.prompt_tokens + written)
            known[key] = self._cache[key] = checked
            generated[index] = generated.get(index, 0) + written
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _verdict(self, known: _Known, solution: Solution, generated: int) -> Verdict:
        scores, running, tokens = [], 1.0, 0
        for depth in range(1, len(solution.steps) + 1):
            checks = [
                known[(solution.question, solution.steps[:depth], vote)]
                for vote in range(self._votes)
            ]
            running *= sum(c.good for c in checks) / len(checks)
            scores.append(running)
            tokens = max(c.tokens for c in checks)
        # A solution with no steps says nothing right: it gets the lowest outcome.
        outcome = aggregate(scores, self._outcome) if scores else 0.0
        return Verdict(
            step_scores=tuple(scores),
            outcome=outcome,
            tokens=tokens * self._votes,
            generated_tokens=generated,
        )

    async def aclose(self) -> None:
        await self._generator.aclose()


def _or_half(good: float | None) -> float:
    return 0.5 if good is None else good
