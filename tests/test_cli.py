"""`ponder solve`, run as a user runs it: a fresh process, real models, real servers."""

from __future__ import annotations

import json
import subprocess

import pytest


def run(command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300)


def test_solve_prints_the_answer(ponder_cli, tiny_model):
    done = run(ponder_cli, "solve", "What is 12 + 30?", "--model", str(tiny_model))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    # The tiny model writes \boxed{N}; its sums are not always right, but always a number.
    assert lines[0].isdigit(), done.stdout
    assert "Traceback" not in done.stderr


def test_solve_json_has_the_whole_result_and_its_cost(ponder_cli, tiny_model):
    done = run(ponder_cli, "solve", "What is 3 + 4?", "--model", str(tiny_model), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["strategy"] == "single"
    assert result["model"] == tiny_model.name
    assert result["answer"] == result["chosen"]["answer"]
    assert "\\boxed{" in result["chosen"]["text"]
    cost = result["cost"]
    assert cost["calls"] == 1 and cost["samples"] == 1
    assert cost["generated_tokens"] == result["chosen"]["num_tokens"] > 0
    assert cost["prompt_tokens"] > 0 and cost["flops"] > 0


def test_token_budget_is_applied(ponder_cli, tiny_model):
    done = run(
        ponder_cli,
        "solve",
        "What is 3 + 4?",
        "--model",
        str(tiny_model),
        "--json",
        "--budget",
        "tokens=5",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["cost"]["generated_tokens"] == 5
    assert result["chosen"]["finish_reason"] == "length"


def test_strategy_budget_and_parameters_select_a_search_and_its_trace(ponder_cli, tmp_path):
    page = tmp_path / "trace.html"
    done = run(
        ponder_cli,
        *("solve", "Start with 12. Add 7. Subtract 5.", "--strategy", "beam_search"),
        *("--budget", "4", "--param", "beam_width=2", "--json", "--trace-html", str(page)),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["strategy"] == "beam_search" and result["budget"] == 4
    assert result["answer"] == "14"
    assert result["cost"]["verifier_tokens"] > 0
    html = page.read_text()
    assert html.count('<g class="node') == len(result["trace"]) >= 4
    assert 'class="edge chosen"' in html


def test_strategies_lists_every_strategy(ponder_cli):
    from ponder.strategies import STRATEGIES

    done = run(ponder_cli, "strategies")
    assert done.returncode == 0, done.stderr
    listed = [line.split(":")[0] for line in done.stdout.splitlines() if not line.startswith(" ")]
    assert listed == list(STRATEGIES) and len(listed) == 16


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["solve", "x", "--model", "/no/such/folder"], 1, "model folder not found"),
        (["solve", "x", "--model", "http://127.0.0.1:9/v1"], 1, "cannot reach"),
        (["solve", "   ", "--model", "MODEL"], 2, "the problem is empty"),
        (["solve", "x", "--model", "MODEL", "--bogus"], 2, "unrecognized arguments: --bogus"),
        (["solve", "x", "--format", "xml"], 2, "invalid choice"),
        (["solve", "x", "--model", "MODEL", "--budget", "lots"], 1, "cannot read budget"),
        (["solve", "x", "--model", "MODEL", "--max-tokens", "0"], 2, "max_tokens"),
        (["solve", "x", "--strategy", "best_of_all"], 2, "unknown strategy 'best_of_all'"),
        (["solve", "x", "--strategy", "beam_search", "--param", "beam_width"], 2, "name=value"),
        (["solve", "x", "--strategy", "beam_search", "--param", "beam=2"], 2, "no parameter"),
        (["solve", "x", "--strategy", "dvts", "--param", "beam_width=two"], 2, "whole number"),
        (["solve", "x", "--model", "MODEL", "--strategy", "best_of_n"], 2, "give --verifier"),
        (["solve", "x", "--strategy", "best_of_n", "--prm", "/no/prm"], 1, "not found"),
        (["solve", "x", "--model", "MODEL", "--temperature", "hot"], 2, "invalid float"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_bad_input_is_one_clear_line(ponder_cli, tiny_model, args, status, message):
    args = [str(tiny_model) if a == "MODEL" else a for a in args]
    done = run(ponder_cli, *args)
    assert done.returncode == status
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ponder: error:")
    assert message in lines[0]


@pytest.mark.vllm
def test_solve_against_a_server_matches_the_local_model(ponder_cli, tiny_model, vllm_url):
    local = run(ponder_cli, "solve", "What is 21 + 5?", "--model", str(tiny_model), "--json")
    served = run(ponder_cli, "solve", "What is 21 + 5?", "--model", vllm_url, "--json")
    assert served.returncode == 0, served.stderr
    local_result, served_result = json.loads(local.stdout), json.loads(served.stdout)
    assert served_result["model"] == "tiny"
    assert served_result["chosen"]["text"] == local_result["chosen"]["text"]
    assert served_result["cost"]["prompt_tokens"] == local_result["cost"]["prompt_tokens"]


@pytest.mark.vllm
def test_unknown_served_model(ponder_cli, vllm_url):
    done = run(ponder_cli, "solve", "x", "--model", vllm_url, "--served-model", "nope")
    assert done.returncode == 1
    assert "does not serve 'nope'; it serves 'tiny'" in done.stderr
