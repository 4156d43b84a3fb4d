"""The synchronous facade and the top-level `ponder.solve`."""

from __future__ import annotations

import asyncio

import pytest

import ponder
from ponder.strategies import Single, SingleParams
from ponder.tasks import MATH_CHAT, Problem, Task


def test_solve_with_a_folder_path(tiny_model):
    result = ponder.solve("What is 40 + 2?", tiny_model)
    assert result.answer is not None and result.answer.isdigit()
    assert result.cost.calls == 1


def test_run_sync_works_while_another_loop_runs(hf_generator):
    """As in a notebook, whose own event loop is already running."""

    async def notebook_cell():
        return ponder.solve("What is 1 + 1?", hf_generator)

    result = asyncio.run(notebook_cell())
    assert result.answer is not None


def test_async_core_and_sync_face_agree(hf_generator):
    problem = Problem(id="p", question="What is 9 + 9?", answer="18")
    strategy = Single(hf_generator, Task("t", (problem,), MATH_CHAT), SingleParams(max_tokens=40))
    sync_result = strategy.run(problem)
    async_result = asyncio.run(strategy.arun(problem))
    assert sync_result.chosen == async_result.chosen
    assert [node.parent for node in sync_result.trace] == [None, 0]


def test_run_sync_refuses_its_own_loop():
    async def inner():
        return 1

    async def outer():
        with pytest.raises(RuntimeError, match="await instead"):
            ponder.run_sync(inner())
        return "ok"

    assert ponder.run_sync(outer()) == "ok"
