"""Monte Carlo tree search over reasoning steps, valued by a PRM.

The tree's nodes are partial solutions, one step apart. Each iteration:

1. selection: from the root, UCT (Kocsis and Szepesvari 2006) picks a child,
   Q + c * sqrt(ln N_parent / N_child), until it reaches a node that may still
   take a new child (fewer than `max_children`, not finished);
2. expansion and simulation: one sampled rollout from that node to the end of
   a solution; its steps become a new chain of nodes under it;
3. evaluation: the PRM scores the finished rollout; its score, aggregated as
   `aggregation` says, is the value;
4. backpropagation: the value is added to every node from the chain's end up
   to the root.

As in rStar (Qi et al. 2024) and ReST-MCTS* (Zhang et al. 2024), a rollout is
a whole solution, so the budget N is N rollouts, N samples in all. Iterations
run `parallel` selections at once with virtual loss (a node being expanded
counts as visited with value 0, which turns the next selection elsewhere), so
each iteration is one generator call and one verifier call. The answer is the
finished rollout with the best score (`select="best"`) or the end of the most
visited path (`select="visits"`); the whole tree is the trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ponder.errors import ConfigError
from ponder.generators.base import SamplingParams
from ponder.strategies.base import BaseStrategy, Choice, Run
from ponder.strategies.steps import ROOT, Partial, StepSearch, finish, score
from ponder.types import Completion


@dataclass(frozen=True, slots=True)
class MCTSParams(StepSearch):
    """`exploration` (c of UCT); `max_children` per node; `parallel` rollouts per iteration;
    `select`: "best" (best-scored rollout) or "visits" (most visited path)."""

    exploration: float = 1.0
    max_children: int = 3
    parallel: int = 4
    select: str = "best"

    def __post_init__(self) -> None:
        StepSearch.__post_init__(self)
        if self.exploration < 0:
            raise ConfigError(f"exploration must be >= 0, got {self.exploration}")
        if self.max_children < 1:
            raise ConfigError(f"max_children must be at least 1, got {self.max_children}")
        if self.parallel < 1:
            raise ConfigError(f"parallel must be at least 1, got {self.parallel}")
        if self.select not in ("best", "visits"):
            raise ConfigError(f"select must be 'best' or 'visits', got {self.select!r}")


@dataclass(eq=False)
class _Node:
    partial: Partial
    parent: _Node | None = None
    children: list[_Node] = field(default_factory=list)
    visits: float = 0.0
    value: float = 0.0
    candidate: int | None = None  # index in run.candidates when the node ends a rollout
    room: int = 3  # children it may have

    @property
    def open(self) -> bool:
        """Whether a rollout may still start here: unfinished, with room for a child."""
        return not self.partial.done and len(self.children) < self.room


class MCTS(BaseStrategy[MCTSParams]):
    """UCT over steps; each iteration is `parallel` whole-solution rollouts, scored by the PRM."""

    name = "mcts"
    Params = MCTSParams
    needs_verifier = True

    def sample_limit(self, n: int) -> int:
        return n

    async def solve(self, run: Run) -> Choice:
        tree = _Node(ROOT, room=self.params.max_children)
        left = run.n
        while left > 0:
            leaves = []
            for _ in range(min(self.params.parallel, left)):
                leaf = self._select(tree)
                if leaf is None:
                    break
                leaves.append(leaf)
                for node in _path(leaf):  # virtual loss, undone below
                    node.visits += 1
            if not leaves:
                break
            left -= len(leaves)
            for leaf in leaves:
                for node in _path(leaf):
                    node.visits -= 1
            await self._iterate(run, leaves)
        return self._answer(run, tree)

    def _select(self, tree: _Node) -> _Node | None:
        node = tree
        while not node.open:
            choices = [c for c in node.children if not _exhausted(c)]
            if not choices:
                return None
            parent_visits = max(node.visits, 1.0)
            node = max(choices, key=lambda c: self._uct(c, parent_visits))
        return node

    def _uct(self, node: _Node, parent_visits: float) -> float:
        if node.visits == 0:
            return math.inf
        explore = self.params.exploration * math.sqrt(math.log(parent_visits) / node.visits)
        return node.value / node.visits + explore

    async def _iterate(self, run: Run, leaves: list[_Node]) -> None:
        params = self.params
        sampling = SamplingParams(
            n=1,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=run.call_seed(),
        )
        generations = await run.generator.generate(
            [run.prompt(leaf.partial.text) for leaf in leaves], sampling
        )
        ends: list[_Node] = []
        for leaf, generation in zip(leaves, generations, strict=True):
            for completion in generation.completions[:1]:
                ends.append(self._grow(run, leaf, completion))
        scored = await score(run, [end.partial for end in ends])
        for end, partial in zip(ends, scored, strict=True):
            end.partial = partial
            value = partial.value(params.aggregation)
            end.candidate = len(run.candidates)
            finish(run, partial, params.aggregation)
            node: _Node | None = end
            while node is not None:
                node.visits += 1
                node.value += value
                node = node.parent

    def _grow(self, run: Run, leaf: _Node, completion: Completion) -> _Node:
        """The rollout's steps as a chain of new nodes under `leaf`; returns the chain's end."""
        separator = run.task.step_separator
        pieces = completion.text.split(separator)
        node, text, steps = leaf, leaf.partial.text, leaf.partial.steps
        depth = leaf.partial.depth
        tokens = leaf.partial.tokens + completion.num_tokens
        for j, piece in enumerate(pieces):
            last = j == len(pieces) - 1
            text += piece if last else piece + separator
            if not piece.strip() and not last:
                continue
            if piece.strip():
                steps = (*steps, piece.strip())
            depth += 1
            partial = Partial(
                text=text,
                steps=steps,
                node=run.trace.add(node.partial.node, piece, kind="step"),
                tokens=tokens,
                depth=depth,
                done=last,
                finish=completion.finish_reason if last else "stop",
            )
            child = _Node(partial, parent=node, room=self.params.max_children)
            node.children.append(child)
            node = child
        return node

    def _answer(self, run: Run, tree: _Node) -> Choice:
        if self.params.select == "visits":
            node = tree
            while node.children:
                node = max(node.children, key=lambda c: c.visits)
            if node.candidate is not None:
                return run.pick(node.candidate)
        return self.select(run)


def _path(node: _Node) -> list[_Node]:
    out = []
    current: _Node | None = node
    while current is not None:
        out.append(current)
        current = current.parent
    return out


def _exhausted(node: _Node) -> bool:
    """No new child can be added anywhere below `node`."""
    if node.open:
        return False
    return all(_exhausted(c) for c in node.children)
