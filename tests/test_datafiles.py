"""Your own data: `ponder eval --task FILE` on JSON Lines, CSV and Parquet copies of real tasks."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from ponder.errors import ConfigError, DatasetError
from ponder.tasks import arith_task
from ponder.tasks.files import FileFields, grading, load_file_task

SMALL = ("--difficulty-samples", "0", "--no-progress", "--json")


def run(command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=900)


def answers(out: Path) -> dict[tuple, tuple]:
    """Each stored result's (strategy, budget, seed, problem) -> (correct, answer, gold)."""
    with sqlite3.connect(out / "results.sqlite") as con:
        rows = con.execute(
            "SELECT strategy, budget, seed, problem, correct, answer, gold FROM results"
        ).fetchall()
    return {r[:4]: r[4:] for r in rows}


def accuracies(stdout: str) -> dict[tuple, float]:
    return {(r["strategy"], r["budget"]): r["accuracy"] for r in json.loads(stdout)}


def evaluate(ponder_cli, out: Path, *args: str) -> tuple[dict, dict]:
    done = run(ponder_cli, "eval", *args, *SMALL, "--out", str(out))
    assert done.returncode == 0, done.stderr
    return answers(out), accuracies(done.stdout)


def test_arith_problems_as_jsonl_give_arith_s_answers(ponder_cli, tmp_path):
    file = tmp_path / "arith.jsonl"
    with file.open("w") as handle:
        for p in arith_task("test", 6).problems:
            handle.write(json.dumps({"id": p.id, "question": p.question, "answer": p.answer}))
            handle.write("\n")
    sweep = ("--strategies", "majority,beam_search", "--budgets", "1,2",
             "--param", "max_tokens=160")  # fmt: skip
    mine = evaluate(
        ponder_cli, tmp_path / "file", "--task", str(file), "--grader", "integer", *sweep
    )
    theirs = evaluate(ponder_cli, tmp_path / "arith", "--task", "arith", "--limit", "6", *sweep)
    assert mine == theirs
    assert len(mine[0]) == 2 * 2 * 6 and any(correct for correct, *_ in mine[0].values())


@pytest.fixture(scope="module")
def gsm8k_copies(data_dir, tmp_path_factory) -> dict[str, Path]:
    """The first 3 GSM8K test problems with their final answers, as JSON Lines, CSV and Parquet,
    under the ids the gsm8k task gives them."""
    rows = []
    with (data_dir / "gsm8k" / "test.jsonl").open() as handle:
        for index, line in zip(range(3), handle, strict=False):
            source = json.loads(line)
            final = source["answer"].rsplit("####", 1)[1].strip().replace(",", "")
            rows.append({"id": f"gsm8k-{index}", "problem": source["question"], "final": final})
    folder = tmp_path_factory.mktemp("gsm8k")
    with (folder / "gsm8k.jsonl").open("w") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)
    with (folder / "gsm8k.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "problem", "final"])
        writer.writeheader()
        writer.writerows(rows)
    import datasets

    datasets.Dataset.from_list(rows).to_parquet(str(folder / "gsm8k.parquet"))
    return {kind: folder / f"gsm8k.{kind}" for kind in ("jsonl", "csv", "parquet")}


def test_gsm8k_as_jsonl_csv_and_parquet_gives_gsm8k_s_answers(ponder_cli, data_dir, gsm8k_copies):
    sweep = ("--strategies", "majority", "--budgets", "1,2", "--param", "max_tokens=48")
    theirs = evaluate(
        ponder_cli, gsm8k_copies["jsonl"].parent / "task", "--task", "gsm8k",
        "--data", str(data_dir), "--limit", "3", *sweep,
    )  # fmt: skip
    fields = ("--question-field", "problem", "--answer-field", "final", "--grader", "math")
    for kind, file in gsm8k_copies.items():
        out = file.parent / f"run-{kind}"
        assert evaluate(ponder_cli, out, "--task", str(file), *fields, *sweep) == theirs, kind


def test_a_resumed_run_refuses_a_data_file_that_changed(gsm8k_copies, tmp_path):
    from ponder.evaluation import EvalConfig, StrategySpec, Sweep

    file = tmp_path / "mine.jsonl"
    file.write_text(gsm8k_copies["jsonl"].read_text())
    config = EvalConfig(
        tasks=(str(file),),
        strategies=(StrategySpec("majority"),),
        budgets=(1,),
        question_field="problem",
        answer_field="final",
    )
    Sweep(config, tmp_path / "run").close()
    Sweep(config, tmp_path / "run").close()  # the same file: the same run
    file.write_text(file.read_text().replace("gsm8k-0", "other-0"))
    with pytest.raises(ConfigError, match="differs in task_files"):
        Sweep(config, tmp_path / "run")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "holds no problems"),
        ('{"q": "1+1?", "answer": "2"}\n', "no column 'question' (--question-field); its"),
        ('{"question": "1+1?", "gold": "2"}\n', "no column 'answer' (--answer-field)"),
        ('{"question": "1+1?", "answer": ""}\n', "row 0 has an empty 'answer'"),
        ("not json\n", "cannot read"),
    ],
)
def test_a_bad_data_file_is_a_clear_error(tmp_path, content, says):
    file = tmp_path / "mine.jsonl"
    file.write_text(content)
    with pytest.raises(DatasetError) as raised:
        load_file_task(file)
    assert says in str(raised.value)


def test_bad_data_files_and_options_are_clear_errors_on_the_command_line(ponder_cli, tmp_path):
    file = tmp_path / "mine.jsonl"
    file.write_text('{"q": "1+1?", "answer": "2"}\n')
    cases = [
        ((), "no column 'question' (--question-field); its columns: answer, q"),
        (("--question-field", "q", "--grader", "fuzzy"), "unknown grader"),
        (("--question-field", "q", "--grader", "regex:(["), "not a valid pattern"),
        (("--question-field", "q", "--prompt-template", "Q:"), "{question}"),
    ]
    for args, says in cases:
        done = run(ponder_cli, "eval", "--task", str(file), *args, "--out", str(tmp_path / "x"))
        assert done.returncode in (1, 2), done.stderr
        assert says in done.stderr and "Traceback" not in done.stderr
    missing = run(ponder_cli, "eval", "--task", str(tmp_path / "no.csv"), "--out", "x")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_graders_by_name(tmp_path):
    extract, grade = grading(r"regex:answer: (\w+)")
    assert extract("answer: no\nanswer: yes") == "yes" and grade("yes", "yes")
    extract, grade = grading(r"regex:\d+")
    assert extract("3 apples and 12 pears") == "12" and not grade("12", "3")
    assert extract("none here") is None and not grade(None, "3")
    _, exact = grading("exact")
    assert exact(" B ", "B") and not exact("b", "B")
    _, integer = grading("integer")
    assert integer("1,000", "1000") and not integer("1000.5", "1000")
    _, math = grading("math")
    assert math("\\frac{1}{2}", "0.5")
    with pytest.raises(ConfigError, match="unknown grader"):
        FileFields(grader="numeric")


def test_a_file_keeps_its_own_ids_and_numbers_rows_without_one(tmp_path):
    file = tmp_path / "mixed.csv"
    file.write_text('id,question,answer\nx7,"Add 1, then 2",3\n,Two,2.0\n')
    task = load_file_task(file)
    assert [(p.id, p.question, p.answer) for p in task.problems] == [
        ("x7", "Add 1, then 2", "3"),
        ("mixed-1", "Two", "2"),
    ]
    assert task.name == "mixed" and task.is_correct("3", task.problems[0])


def test_a_prompt_template_prompts_every_task_but_arith(tmp_path):
    from ponder.evaluation import EvalConfig, StrategySpec, Sweep

    file = tmp_path / "mine.jsonl"
    file.write_text('{"question": "Start with 12. Add 7.", "answer": "19"}\n')
    config = EvalConfig(
        tasks=(str(file), "arith"),
        strategies=(StrategySpec("majority"),),
        budgets=(1,),
        limit=1,
        difficulty_samples=0,
        prompt_template="Q: {question}\nA:\n",
    )
    sweep = Sweep(config, tmp_path / "run")
    try:
        mine, arith = sweep.tasks[str(file)], sweep.tasks["arith"]
        assert mine.prompt(mine.problems[0]).text == "Q: Start with 12. Add 7.\nA:\n"
        assert arith.prompt(arith.problems[0]).text.startswith("Problem: ")
        # The embedded policy's declared format still splits steps at its lines.
        assert mine.step_separator == arith.step_separator == "\n"
    finally:
        sweep.close()
