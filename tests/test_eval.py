"""`ponder eval` and `ponder report` as a user runs them: real processes, models, files, browser."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ponder.evaluation import Store, analyze
from ponder.evaluation.analysis import summarize
from ponder.evaluation.distributed import LocalCluster

# A small sweep of the embedded arith models: voting (sample reuse) and a PRM search.
SWEEP = (
    "--task", "arith", "--limit", "8", "--strategies", "majority,beam_search",
    "--budgets", "1,4", "--difficulty-samples", "4", "--param", "max_tokens=160",
    "--batch", "2", "--no-progress",
)  # fmt: skip
# 8 problems: 8 difficulty estimates, then 2 strategies x 2 budgets x 8 problems.
RESULTS = 2 * 2 * 8


def run(command: list[str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout)


def stored(folder: Path) -> dict[tuple, tuple]:
    """Every stored result by key, with what it says (correctness, answer, cost, candidates)."""
    db = folder / "results.sqlite"
    if not db.exists():
        return {}
    with sqlite3.connect(db) as con:
        try:
            rows = con.execute(
                "SELECT task, strategy, budget, seed, problem, correct, answer, "
                "generated_tokens, record FROM results"
            ).fetchall()
        except sqlite3.OperationalError:  # the table is not made yet
            return {}
    return {r[:5]: (r[5], r[6], r[7], json.loads(r[8])["candidates"]) for r in rows}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, ponder_cli) -> Path:
    out = tmp_path_factory.mktemp("eval") / "whole"
    done = run(ponder_cli, "eval", *SWEEP, "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_a_run_killed_at_any_moment_resumes_with_nothing_lost_or_counted_twice(
    ponder_cli, uninterrupted, tmp_path
):
    out = tmp_path / "killed"
    command = [*ponder_cli, "eval", *SWEEP, "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    # Kill it in the middle of the strategies' work, without warning.
    while len(stored(out)) < 5 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = stored(out)
    assert 5 <= len(before) < RESULTS

    done = run(command)
    assert done.returncode == 0, done.stderr
    after = stored(out)
    assert len(after) == RESULTS
    # What was stored before the kill is still there, unchanged, and counted once
    # (the store's key is unique: a second write would have failed the run).
    assert {k: after[k] for k in before} == before
    with Store(out / "results.sqlite") as store:
        assert store.count() == RESULTS
        assert len(store.difficulty("arith")) == 8
    # Seeded per problem, the resumed run computed what an unbroken run did: the same samples,
    # choices and costs; verifier scores to float rounding (the judge's batches are made of
    # other solutions after a resume, and a padded batch rounds differently, ~1e-7).
    assert_same_results(after, stored(uninterrupted))


def assert_same_results(a: dict[tuple, tuple], b: dict[tuple, tuple]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key][:3] == b[key][:3], key
        mine, theirs = a[key][3], b[key][3]
        assert [{**c, "scores": None} for c in mine] == [{**c, "scores": None} for c in theirs]
        for c, d in zip(mine, theirs, strict=True):
            assert c.get("scores", {}) == pytest.approx(d.get("scores", {}), abs=1e-5), key


def test_sample_reuse_replays_the_largest_budgets_samples(uninterrupted):
    results = stored(uninterrupted)
    with Store(uninterrupted / "results.sqlite") as store:
        reused = {(r.strategy, r.budget) for r in store.rows() if r.reused}
    assert reused == {("majority", 1)}  # beam search's budgets are not subsets
    for key, (_, _, tokens, candidates) in results.items():
        if key[1] == "majority" and key[2] == 1:
            larger = results[(*key[:2], 4, *key[3:])]
            assert candidates == larger[3][:1]
            assert tokens == candidates[0]["tokens"]


def test_a_different_configuration_in_the_same_folder_is_refused(ponder_cli, uninterrupted):
    before = stored(uninterrupted)
    for change in (("--budgets", "1,8"), ("--limit", "6"), ("--strategies", "majority")):
        done = run(ponder_cli, "eval", *SWEEP, *change, "--out", str(uninterrupted))
        assert done.returncode == 1, change
        assert "holds a different run" in done.stderr and "Traceback" not in done.stderr
    assert stored(uninterrupted) == before


def test_a_run_made_in_another_checkout_resumes_but_not_with_other_models(
    ponder_cli, uninterrupted, tmp_path
):
    """A run's folder names its models' folders by path; moved to a checkout elsewhere (or
    made there), the same models are at another path and the run still resumes. A model
    whose files differ is another run."""
    out = tmp_path / "moved"
    shutil.copytree(uninterrupted, out)
    before = stored(out)
    config = json.loads((out / "config.json").read_text())
    for identity in config["models"].values():
        identity["path"] = "/elsewhere/checkout/" + Path(identity["path"]).name
    (out / "config.json").write_text(json.dumps(config))
    done = run(ponder_cli, "eval", *SWEEP, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert stored(out) == before  # resumed: everything was stored, nothing redone

    config["models"]["generator"]["sha256_of_files"] = "0" * 16
    (out / "config.json").write_text(json.dumps(config))
    done = run(ponder_cli, "eval", *SWEEP, "--out", str(out))
    assert done.returncode == 1
    assert "differs in models" in done.stderr and "Traceback" not in done.stderr


def test_a_run_extends_with_more_strategies_and_budgets(ponder_cli, uninterrupted, tmp_path):
    out = tmp_path / "extended"
    shutil.copytree(uninterrupted, out)
    before = stored(out)
    more = ("--strategies", "majority,beam_search,best_of_n", "--budgets", "1,4,8")
    done = run(ponder_cli, "eval", *SWEEP, *more, "--out", str(out))
    assert done.returncode == 0, done.stderr
    after = stored(out)
    assert {k: after[k] for k in before} == before  # nothing stored before was redone
    added = {(k[1], k[2]) for k in after.keys() - before.keys()}
    assert added == {("majority", 8), ("beam_search", 8)} | {("best_of_n", b) for b in (1, 4, 8)}
    assert len(after) == RESULTS + 5 * 8
    assert json.loads((out / "config.json").read_text())["budgets"] == [1, 4, 8]


def test_summary_json_and_statistics(ponder_cli, uninterrupted):
    done = run(ponder_cli, "report", str(uninterrupted), "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {(r["strategy"], r["budget"]) for r in rows} == {
        (s, b) for s in ("majority", "beam_search") for b in (1, 4)
    }
    fields = {"task", "strategy", "budget", "n_problems", "accuracy", "ci_low", "ci_high",
              "generated_tokens_mean", "flops_mean"}  # fmt: skip
    results = stored(uninterrupted)
    for row in rows:
        assert set(row) == fields
        assert row["n_problems"] == 8
        mine = [v for k, v in results.items() if k[1] == row["strategy"] and k[2] == row["budget"]]
        assert row["accuracy"] == pytest.approx(np.mean([v[0] for v in mine]))
        assert row["ci_low"] <= row["accuracy"] <= row["ci_high"]
        assert row["generated_tokens_mean"] == pytest.approx(np.mean([v[2] for v in mine]))
        assert row["flops_mean"] > 0
    analysis = analyze([uninterrupted])
    with Store(uninterrupted / "results.sqlite") as store:
        rows = list(store.rows())
    # The order rows were stored in (a Ray sweep's, as its workers finish) changes nothing.
    assert summarize(rows[::-1]) == summarize(rows) == analysis.summaries
    assert {b for b, _ in analysis.bins["oracle"]} <= {1, 2, 3, 4, 5}
    assert len(analysis.bins["oracle"]) > 4
    sources = {c.source for c in analysis.coverage}
    assert sources == {"policy samples", "majority"}
    assert all(c.coverage == tuple(sorted(c.coverage)) for c in analysis.coverage)
    assert {r.strategy for r in analysis.ratios} == {"beam_search"}


def test_shards_of_a_sweep_report_as_the_whole_run(ponder_cli, uninterrupted, tmp_path):
    shards = [tmp_path / f"sweep-{i}" for i in (1, 2)]
    for i, out in enumerate(shards, 1):
        done = run(ponder_cli, "eval", *SWEEP, "--shard", f"{i}/2", "--out", str(out))
        assert done.returncode == 0, done.stderr
    parts = [stored(out) for out in shards]
    assert {k[4] for k in parts[0]}.isdisjoint({k[4] for k in parts[1]})
    whole_run = stored(uninterrupted)
    assert (parts[0] | parts[1]).keys() == whole_run.keys()
    for key, (correct, answer, tokens, candidates) in (parts[0] | parts[1]).items():
        assert (correct, answer, tokens) == whole_run[key][:3]
        for mine, theirs in zip(candidates, whole_run[key][3], strict=True):
            # Verifier scores of other batches differ in float noise (their padding), no more.
            assert mine | {"scores": None} == theirs | {"scores": None}
            assert mine["scores"] == pytest.approx(theirs["scores"], abs=1e-4)
    whole, sharded = analyze([uninterrupted]), analyze(shards)
    assert sharded.runs == ["sweep"]
    printed = lambda summaries: [s.as_json() for s in summaries]  # noqa: E731 (no wall time)
    assert printed(sharded.summaries) == printed(whole.summaries)
    for kind, binned in whole.bins.items():
        assert [(b, s.as_json()) for b, s in sharded.bins[kind]] == [
            (b, s.as_json()) for b, s in binned
        ]
    report = run(ponder_cli, "report", *map(str, shards), "--json")
    assert json.loads(report.stdout) == [s.as_json() for s in whole.summaries]
    assert analyze(shards[:1]).runs == ["sweep-1 (shards 1 of 2)"]
    twice = run(ponder_cli, "report", str(shards[0]), str(shards[0]))
    assert twice.returncode == 1 and "shard 1/2 is given twice" in twice.stderr
    bad = run(ponder_cli, "eval", *SWEEP, "--shard", "3/2", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "1 <= i <= n" in bad.stderr


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[LocalCluster]:
    """A real two-node Ray cluster on this machine, the second node killable."""
    with LocalCluster(2) as cluster:
        yield cluster


def _solvers_under(root: int) -> int:
    """Ray workers of a sweep among the descendants of a process (a node's)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for line in run(["ps", "-eo", "pid=,ppid=,args="]).stdout.splitlines():
        pid, ppid, args = (
            line.split(None, 2) if len(line.split(None, 2)) == 3 else (*line.split(), "")
        )
        children.setdefault(int(ppid), []).append(int(pid))
        names[int(pid)] = args
    found, todo = 0, [root]
    while todo:
        pid = todo.pop()
        found += "RaySolver" in names.get(pid, "")
        todo += children.get(pid, [])
    return found


def test_a_sweep_on_ray_survives_a_killed_node_with_the_same_answers(
    ponder_cli, uninterrupted, ray_cluster, tmp_path
):
    out = tmp_path / "on-ray"
    sweep = subprocess.Popen(
        [*ponder_cli, "eval", *SWEEP, "--ray", ray_cluster.address, "--out", str(out), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not (out / "results.sqlite").exists() or not _solvers_under(ray_cluster.members[0].pid):
        assert sweep.poll() is None, sweep.communicate()
        assert time.monotonic() < deadline, "no results from the Ray workers"
        time.sleep(0.5)
    ray_cluster.kill()  # the second node dies mid-sweep, with its worker
    stdout, stderr = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, stderr
    results, whole = stored(out), stored(uninterrupted)
    assert results.keys() == whole.keys()  # nothing lost, nothing twice (one row per key)
    for key, (correct, answer, tokens, candidates) in results.items():
        assert (correct, answer, tokens) == whole[key][:3], key
        assert [c["text"] for c in candidates] == [c["text"] for c in whole[key][3]], key
    report = run(ponder_cli, "report", str(uninterrupted), "--json")
    assert stdout.lstrip().startswith("["), stdout
    assert json.loads(stdout) == json.loads(report.stdout)
    # Resumed on the cluster left with one node: nothing to do, nothing changed.
    again = run(ponder_cli, "eval", *SWEEP, "--ray", ray_cluster.address, "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert stored(out) == results


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("headless Chromium is needed: apt-get install chromium (make test does)")
    return found


def test_report_renders_in_a_browser_with_its_plots(ponder_cli, uninterrupted, tmp_path):
    from matplotlib.image import imread

    page = tmp_path / "report.html"
    done = run(ponder_cli, "report", str(uninterrupted), "--out", str(page))
    assert done.returncode == 0, done.stderr
    assert "beam_search" in done.stdout and "majority" in done.stdout
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 5  # accuracy, 2 bin views, FLOPs, coverage
    assert "src='http" not in html and 'src="http' not in html  # self-contained
    pngs = sorted(p.name for p in tmp_path.glob("report-*.png"))
    assert pngs == [
        "report-arith-accuracy.png", "report-arith-bins-oracle.png",
        "report-arith-bins-predicted.png", "report-arith-coverage.png", "report-arith-flops.png",
    ]  # fmt: skip

    shot = tmp_path / "shot.png"
    browser = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shot.is_file(), browser.stderr
    image = imread(shot)[:, :, :3]
    assert image.shape[:2] == (2400, 1200)
    # The plots are drawn: the first strategy's line colour (#1f77b4) and the second's
    # (#d62728) cover many pixels, which a page without its images would not.
    for colour in ((0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28)):
        close = np.abs(image * 255 - np.array(colour)).max(axis=2) < 40
        assert close.sum() > 500, colour


def test_the_report_shows_the_compute_optimal_policy_it_ran(ponder_cli, tmp_path):
    from ponder.policy import Policy
    from ponder.strategies.compute_optimal import embedded_policy_file

    out = tmp_path / "optimal"
    args = ("--task", "arith", "--limit", "2", "--strategies", "compute_optimal,majority",
            "--budgets", "4", "--difficulty-samples", "0", "--param", "max_tokens=160",
            "--no-progress")  # fmt: skip
    assert run(ponder_cli, "eval", *args, "--out", str(out)).returncode == 0
    analysis = analyze([out])
    assert list(analysis.policies) == [str(embedded_policy_file())]
    report = run(ponder_cli, "report", str(out), "--out", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Compute-optimal policy</h2>" in page
    policy = Policy.load(embedded_policy_file())
    for budget, entries in policy.table.items():
        assert f"<td>{budget}</td>" in page
        assert all(f"{e.configuration}" in page for e in entries)
        cv = policy.made_with["cross_validated"][str(budget)]
        assert f"<td>{cv['policy']:.3f} / {cv['best_fixed']:.3f} ({cv['fixed']})</td>" in page
    assert "rule: auto, N=4 best, N=16 best, N=64 one-se" in page


def test_bad_input_is_a_clear_error(ponder_cli, tmp_path):
    cases = [
        (["--task", "nosuch"], "unknown task"),
        (["--strategies", "nosuch"], "unknown strategy"),
        (["--budgets", "1,x"], "comma-separated integers"),
        (["--param", "beam_width=4"], "no listed strategy has"),
        (["--strategies", "majority", "--param", "beam_search.beam_width=4"], "not among"),
    ]
    for args, message in cases:
        done = run(ponder_cli, "eval", *args, "--out", str(tmp_path / "x"))
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr
    done = run(ponder_cli, "report", str(tmp_path / "missing"))
    assert done.returncode == 1 and "not an evaluation run" in done.stderr


@pytest.mark.vllm
def test_eval_with_a_served_verifier_matches_the_local_one(
    ponder_cli, uninterrupted, vllm_verifier_url
):
    from ponder.models import embedded_verifier

    out = uninterrupted.parent / "served-verifier"
    args = ("--task", "arith", "--limit", "3", "--strategies", "best_of_n", "--budgets", "1,4",
            "--difficulty-samples", "0", "--param", "max_tokens=160", "--no-progress")  # fmt: skip
    served = run(
        ponder_cli, "eval", *args, "--out", str(out), "--verifier", vllm_verifier_url,
        "--served-verifier", "arith-verifier", "--verifier-format", str(embedded_verifier()),
        "--verifier-kind", "prm",
    )  # fmt: skip
    assert served.returncode == 0, served.stderr
    local = run(
        ponder_cli, "eval", *args, "--out", str(out.parent / "local-verifier"),
        "--verifier-kind", "prm",  # the same reading of the embedded verifier, from its folder
    )  # fmt: skip
    assert local.returncode == 0, local.stderr
    a, b = stored(out), stored(out.parent / "local-verifier")
    assert a.keys() == b.keys() and len(a) == 6
    for key in a:
        assert a[key][:3] == b[key][:3]  # same choice, answer and tokens
        for mine, theirs in zip(a[key][3], b[key][3], strict=True):
            assert mine["scores"]["prm_last"] == pytest.approx(
                theirs["scores"]["prm_last"], abs=2e-3
            )


@pytest.mark.vllm
def test_eval_on_real_benchmarks_through_a_served_policy(
    ponder_cli, vllm_arith_url, data_dir, tmp_path
):
    """MATH-500 and GSM8K from their files, the generator on a vLLM server, a local verifier."""
    from ponder.models import embedded_policy, embedded_verifier

    out = tmp_path / "benchmarks"
    args = (
        "--task", "gsm8k,math500", "--data", str(data_dir), "--limit", "3",
        "--model", vllm_arith_url, "--served-model", "arith-policy",
        "--verifier", str(embedded_verifier()), "--model-config", str(embedded_policy()),
        "--strategies", "majority,beam_search", "--budgets", "1,2", "--difficulty-samples", "2",
        "--param", "max_tokens=48", "--no-progress",
    )  # fmt: skip
    # The embedded policy has no chat template: the server refuses chat, ponder says what to do.
    chat = run(ponder_cli, "eval", *args, "--format", "chat", "--out", str(tmp_path / "chat"))
    assert chat.returncode == 1 and "Traceback" not in chat.stderr
    assert "--format raw" in chat.stderr
    done = run(ponder_cli, "eval", *args, "--format", "raw", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    files = {
        "gsm8k": [json.loads(line) for line in (data_dir / "gsm8k/test.jsonl").open()][:3],
        "math500": [json.loads(line) for line in (data_dir / "math500/test.jsonl").open()][:3],
    }
    with sqlite3.connect(out / "results.sqlite") as con:
        rows = con.execute("SELECT task, strategy, budget, problem, gold, record FROM results")
        rows = rows.fetchall()
        estimated = con.execute("SELECT task, oracle_samples FROM difficulty").fetchall()
    assert len(rows) == 2 * 2 * 2 * 3 and len(estimated) == 6
    assert {n for _, n in estimated} == {2}
    for task, strategy, budget, problem, gold, record in rows:
        index = int(problem.rsplit("-", 1)[1])
        source = files[task][index]
        if task == "gsm8k":
            assert source["question"] in json.loads(record)["question"]
            assert gold == source["answer"].rsplit("####", 1)[1].strip()
        else:
            assert source["problem"] in json.loads(record)["question"]
            assert gold == source["answer"]
        assert json.loads(record)["candidates"], (task, strategy, budget)
    summary = json.loads(done.stdout)
    assert {(r["task"], r["strategy"], r["budget"]) for r in summary} == {
        (t, s, b) for t in files for s in ("majority", "beam_search") for b in (1, 2)
    }
    assert all(r["generated_tokens_mean"] > 0 for r in summary)
    # The served model's size comes from --model-config: its FLOPs are counted.
    majority = [r for r in summary if r["strategy"] == "majority"]
    assert all(r["flops_mean"] > 0 for r in majority)
    report = run(ponder_cli, "report", str(out), "--out", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "report.html").read_text()
    assert "gsm8k" in html and "math500" in html
