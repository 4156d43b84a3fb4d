"""Train the embedded arith policy: a small Llama that solves arith problems and revises attempts.

    python -m ponder.models.arith_policy OUT_DIR [--steps 2600] [--revision-steps 800] [--seed 0]
        [--batch 32] [--revision-lr 1e-3] [--revision-problems 3000] [--attempts-from FOLDER]
        [--init FOLDER] [--verdict-weight 1] [--bad-weight 1] [--minutes M]

(`--steps 0` skips phase 1, for a folder it already trained; `--revision-steps 0`, phase 2.)

Training data comes from the arith train split only (never dev or test), in two
phases. Phase 1 trains a fresh model on problems and their gold solutions,
generated on the fly, written at once, a line per step: the policy solves in
its head, as it is meant to (its slips are what test-time compute repairs).
Phase 2 (`train_revisions`) teaches it to revise: after a solution and the
marker "Revision:", the policy checks the solution's steps one by one, digit by
digit (`ponder.models.arith_checks`), each check written before it copies the
step it checks, up to the first step that fails; then it writes "Solution:" and
the right solution. A revision thus has compute of its own and cannot copy the
slip it is fixing. The attempts revised are the phase-1 model's own samples of
train problems (as Snell et al. 2024 train their revision model) and synthetic
ones with the kinds of slips it makes (mostly a carry: a result off by ten),
mixed with phase-1 examples. Loss is on what the policy writes only.
Everything is seeded; the log of losses goes beside the weights. Both phases
train on CUDA when there is one; `--minutes` caps phase 2's time by cutting its
steps once, after measuring their speed (`fit`).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ponder.generators.base import SamplingParams
from ponder.models.arith_checks import BAD, TAG, Example, judge_text, revision_target
from ponder.models.export import store_bfloat16
from ponder.models.tiny import llama_config
from ponder.models.tokenizer import train_sentencepiece
from ponder.tasks.arith import (
    ARITH_FORMAT,
    GRID,
    MAX_VALUE,
    PROMPT,
    REVISION_TEMPLATE,
    apply,
    arith_problems,
    make_problem,
    parse_question,
    split_of,
)
from ponder.tasks.base import Problem

VOCAB_SIZE = 384
CONTEXT = 1024  # the models' positions; a longer example is dropped
Encoded = tuple[list[int], list[int]]  # token ids and labels (-100: not learned)

# The first wrong line of the policy's own samples, by kind (measured on the arith test split,
# 200 problems x 16 samples of the previous policy): 62% a result off by ten (a carry), 23%
# another result, 7% the wrong operation, 4% off by a hundred; the rest rare.
SLIPS = (
    ("carry", 0.55),
    ("digit", 0.20),
    ("hundred", 0.05),
    ("one", 0.03),
    ("operation", 0.08),
    ("carried_value", 0.03),
    ("operand", 0.02),
    ("early_answer", 0.02),
    ("skipped_step", 0.01),
    ("extra_step", 0.01),
)


def near_miss(value: int, rng: random.Random) -> int:
    """`value` with one digit changed (never a leading zero), staying non-negative."""
    digits = list(str(value))
    position = rng.randrange(len(digits))
    choices = [d for d in "0123456789" if d != digits[position]]
    if position == 0 and len(digits) > 1:
        choices.remove("0")
    digits[position] = rng.choice(choices)
    return int("".join(digits))


def _slipped(value: int, op: str, operand: int, kind: str, rng: random.Random) -> str:
    """The line for `value op operand` with a slip of `kind`."""
    result = apply(value, op, operand)
    if kind == "operation":
        op = rng.choice([o for o in "+-*" if o != op])
        wrong = apply(value, op, operand)
        return f"{value} {op} {operand} = {wrong if 0 <= wrong <= MAX_VALUE else result + 10}"
    if kind == "carried_value":
        value = near_miss(value, rng)
        return f"{value} {op} {operand} = {max(apply(value, op, operand), 0)}"
    if kind == "operand":
        operand = near_miss(operand, rng)
        return f"{value} {op} {operand} = {max(apply(value, op, operand), 0)}"
    shift = {"carry": 10, "hundred": 100, "one": 1}.get(kind)
    wrong = result + rng.choice((-shift, shift)) if shift else near_miss(result, rng)
    if wrong < 0 or wrong == result:
        wrong = near_miss(result, rng)
    return f"{value} {op} {operand} = {wrong}"


def synthetic_attempt(question: str, rng: random.Random, slip_rate: float = 0.07) -> list[str]:
    """A wrong solution of `question` with the policy's kinds of slips: the first at a random
    line, later ones at `slip_rate` per line; every line carries on from the one before."""
    start, operations = parse_question(question)
    first = rng.randrange(len(operations) + 1)
    kinds, weights = zip(*SLIPS, strict=True)
    lines: list[str] = []
    value, i = start, 0
    while i <= len(operations):
        slip = i == first or (i > first and rng.random() < slip_rate)
        if i == len(operations):  # the answer line: a wrong value, or one line too many
            extra = slip and rng.random() < 0.3
            if extra:
                lines.append(f"{value} + {rng.randint(0, 99)} = {value}")
            answer = near_miss(value, rng) if slip and not extra else value
            lines.append(f"The answer is {answer}.")
            break
        op, operand = operations[i]
        line = f"{value} {op} {operand} = {apply(value, op, operand)}"
        if slip:
            kind = rng.choices(kinds, weights)[0]
            if kind == "early_answer":
                lines.append(f"The answer is {value}.")
                break
            if kind == "skipped_step" and i + 1 < len(operations):
                i += 1
                op, operand = operations[i]
                line = f"{value} {op} {operand} = {max(apply(value, op, operand), 0)}"
            elif kind in ("skipped_step", "extra_step"):
                line = _slipped(value, op, operand, "carry", rng)
            else:
                line = _slipped(value, op, operand, kind, rng)
        lines.append(line)
        value = int(line.rsplit(" ", 1)[1])
        i += 1
    return lines


def solve_example(question: str, gold: list[str]) -> Example:
    prompt = PROMPT.format(question=question)
    return prompt + "\n".join(gold), [(len(prompt), -1)]


def revision_example(
    question: str, attempt: list[str], gold: list[str], earlier: str = ""
) -> Example:
    """The policy's revision of `attempt`; `earlier` is revision text already in the context
    (budget forcing revises again after a revision)."""
    prompt = REVISION_TEMPLATE.format(question=question, attempt=earlier + "\n".join(attempt))
    return prompt + revision_target(question, attempt, gold), [(len(prompt), -1)]


def examples(rng: random.Random, revisions: float) -> Iterator[Example]:
    """Phase 1's examples from the train split, forever: solutions and, at the rate
    `revisions`, revisions of synthetic attempts (70% wrong, 30% right)."""
    while True:
        question, gold, _ = make_problem(rng, rng.choice(GRID))
        if split_of(question) != "train":
            continue
        if rng.random() >= revisions:
            yield solve_example(question, gold)
            continue
        attempt = synthetic_attempt(question, rng) if rng.random() < 0.7 else gold
        earlier = ""
        short = len(gold) <= 5  # two revisions of a long chain would not fit the context
        if short and rng.random() < 0.2:  # a revision after a revision, as budget forcing asks
            first = synthetic_attempt(question, rng)
            earlier = "\n".join(first) + "\nRevision:\n" + revision_target(question, first, gold)
            earlier = earlier.rpartition("Solution:\n")[0] + "Solution:\n"
        yield revision_example(question, attempt, gold, earlier)


def build_tokenizer(out: Path, seed: int) -> Any:
    """The tokenizer both embedded models share, trained on what they read and write."""
    from transformers import AutoTokenizer

    rng = random.Random(seed)
    stream = examples(rng, revisions=0.5)
    texts = [next(stream)[0] for _ in range(3000)]
    for _ in range(1000):
        question, _, _ = make_problem(rng, rng.choice(GRID))
        texts.append(judge_text(question, synthetic_attempt(question, rng))[0])
    train_sentencepiece(out, texts, VOCAB_SIZE, user_symbols=(TAG,))
    return AutoTokenizer.from_pretrained(out)


def encode(tokenizer: Any, example: Example) -> Encoded:
    """Token ids of an example's text (plus EOS) and its labels: -100 outside the spans the
    model writes; a span that ends at -1 runs to the end of the text and its EOS."""
    text, spans = example
    spans = [(start, len(text) + 1 if end < 0 else end) for start, end in spans]
    encoded = tokenizer(text, return_offsets_mapping=True)
    ids = [*encoded.input_ids, tokenizer.eos_token_id]
    offsets = [*encoded.offset_mapping, (len(text), len(text) + 1)]
    labels = [
        token if any(start <= begin < end for start, end in spans) else -100
        for token, (begin, _) in zip(ids, offsets, strict=True)
    ]
    return ids, labels


def batches(
    stream: Iterator[Encoded], batch: int, rng: random.Random, pool: int = 8
) -> Iterator[tuple[list[list[int]], list[list[int]]]]:
    """Encoded examples in batches of similar lengths, to pad little."""
    while True:
        encoded = [e for e in (next(stream) for _ in range(batch * pool)) if len(e[0]) <= CONTEXT]
        encoded.sort(key=lambda pair: len(pair[0]))
        groups = [encoded[i : i + batch] for i in range(0, len(encoded), batch)]
        rng.shuffle(groups)
        for group in groups:
            yield [ids for ids, _ in group], [labels for _, labels in group]


def fit(
    model: Any,
    tokenizer: Any,
    stream: Iterator[tuple[list[list[int]], list[list[int]]]],
    *,
    steps: int,
    lr: float,
    warmup: int,
    weight_decay: float,
    emphasis: tuple[int, float] | None = None,
    rare: tuple[int, float] | None = None,
    deadline: float | None = None,
) -> list[dict[str, float]]:
    """AdamW with warm-up and a cosine decay to lr/10; returns the loss log.

    Trains on `training_device()` (the model is moved there and stays). With a
    `deadline` (a `time.monotonic()` value), the number of steps is cut, once,
    after the first 40, to what the speed of steps 10-40 fits before it: the
    schedule then runs over the steps that will be taken (the log records them;
    `--steps` with that number reproduces the run without a clock).

    `emphasis` = (token id, weight): the loss on each token that follows that
    token counts `weight` times (a verifier's verdict after its tag: a few
    tokens in a long text, and the ones that matter). `rare` = (token id,
    weight): among those, the loss where the label is that token counts
    `weight` times more (the bad verdict, far rarer than the good one).
    """
    import torch

    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.95),
    )
    device = torch.device(training_device())
    model.to(device)
    log: list[dict[str, float]] = []
    start = time.monotonic()
    model.train()
    step, paced = 0, 0.0
    while step < steps:
        if deadline is not None and step in (10, 40):
            if step == 10:
                paced = time.monotonic()
            else:  # the steps the time left fits, at the speed of steps 10-40
                rate = (time.monotonic() - paced) / 30
                left = deadline - time.monotonic()
                steps = max(step + 1, min(steps, step + int(left / rate)))
                print(f"{rate * 1000:.0f} ms a step: {steps} steps before the deadline")
        ids, labels = next(stream)
        width = max(len(x) for x in ids)
        input_ids = torch.tensor([x + [tokenizer.pad_token_id] * (width - len(x)) for x in ids])
        target = torch.tensor([y + [-100] * (width - len(y)) for y in labels])
        mask = (torch.arange(width)[None, :] < torch.tensor([len(x) for x in ids])[:, None]).long()
        input_ids, target, mask = input_ids.to(device), target.to(device), mask.to(device)
        warm = min(1.0, (step + 1) / warmup)
        cosine = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps))
        for group in optimizer.param_groups:
            group["lr"] = lr * warm * cosine
        if emphasis is None:
            loss = model(input_ids=input_ids, attention_mask=mask, labels=target).loss
        else:
            loss = _emphasized_loss(model, input_ids, mask, target, *emphasis, rare=rare)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == steps - 1:
            elapsed = time.monotonic() - start
            log.append({"step": step, "loss": round(loss.item(), 4), "minutes": elapsed / 60})
            eta = elapsed / (step + 1) * (steps - step - 1) / 60
            eta_text = f"{elapsed / 60:.1f} min, eta {eta:.1f} min"
            print(f"step {step:5d}  loss {loss.item():.4f}  {eta_text}", flush=True)
        step += 1
    model.eval()
    return log


def training_device() -> str:
    """Where the trainers train: CUDA when there is one."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def verdict_id(tokenizer: Any, verdict: str) -> int:
    """The token id of a verdict as a check's line writes it, right after the tag."""
    ids = tokenizer(TAG + verdict, add_special_tokens=False).input_ids
    if len(ids) != 2:
        raise SystemExit(f"the verdict {verdict!r} is not one token after the tag")
    return int(ids[1])


def _emphasized_loss(
    model: Any,
    input_ids: Any,
    mask: Any,
    target: Any,
    token: int,
    weight: float,
    rare: tuple[int, float] | None = None,
) -> Any:
    """Next-token cross-entropy where a label right after `token` weighs `weight`, and
    `rare[1]` times more where that label is `rare[0]`."""
    import torch

    logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1]
    labels = target[:, 1:]
    losses = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), labels.reshape(-1), reduction="none", ignore_index=-100
    ).view_as(labels)
    emphasized = input_ids[:, :-1] == token
    weights = (labels != -100).float() * torch.where(emphasized, weight, 1.0)
    if rare is not None:
        weights = weights * torch.where(emphasized & (labels == rare[0]), rare[1], 1.0)
    return (losses * weights).sum() / weights.sum()


def train(
    out_dir: Path,
    *,
    steps: int,
    seed: int,
    batch: int = 32,
    lr: float = 1.5e-3,
    revisions: float = 0.0,
) -> None:
    """Phase 1: a fresh model on gold solutions (and, at the rate `revisions`, revisions of
    synthetic attempts: off by default, as a revision is three times a solution's length and
    phase 2 teaches revising on the policy's own attempts)."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    start = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(out_dir, seed)
    config = llama_config(tokenizer, hidden=256, layers=4, heads=4, kv_heads=4, ffn=688)
    model = LlamaForCausalLM(config)
    stream = (encode(tokenizer, e) for e in examples(random.Random(seed + 1), revisions))
    log = fit(
        model,
        tokenizer,
        batches(stream, batch, random.Random(seed + 2)),
        steps=steps,
        lr=lr,
        warmup=100,
        weight_decay=0.1,
    )
    model.save_pretrained(out_dir)
    store_bfloat16(out_dir)
    ARITH_FORMAT.save(out_dir)  # so that ponder prompts it the way it was trained
    minutes = (time.monotonic() - start) / 60
    record = {
        "steps": steps,
        "seed": seed,
        "batch": batch,
        "lr": lr,
        "revisions": revisions,
        "minutes": minutes,
    }
    (out_dir / "training_log.json").write_text(json.dumps({**record, "log": log}, indent=1))


def sample_solutions(
    folder: Path,
    problems: Sequence[Problem],
    *,
    samples: int,
    seed: int,
    max_tokens: int,
    distinct: bool = True,
) -> list[list[str]]:
    """The policy's non-empty solutions (stripped) of each problem at temperature 1.0, each
    once when `distinct`, else as drawn (on CUDA when there is one, in batches it fits)."""
    from ponder.generators.transformers import TransformersGenerator

    generator = TransformersGenerator(
        folder, max_batch_size=1024 if training_device() == "cuda" else 64
    )
    prompts = [ARITH_FORMAT.render(p.question) for p in problems]
    params = SamplingParams(n=samples, max_tokens=max_tokens, temperature=1.0, seed=seed)
    generations = generator.generate_blocking(prompts, params)
    texts = [[c.text.strip() for c in g.completions] for g in generations]
    if distinct:
        texts = [list(dict.fromkeys(drawn)) for drawn in texts]
    return [[text for text in drawn if text] for drawn in texts]


def own_attempts(
    folder: Path, *, problems: int, samples: int, seed: int, distinct: bool = True
) -> list[tuple[str, list[str], list[str]]]:
    """(question, gold lines, attempt lines) for the policy's own samples of train problems,
    each once when `distinct`, else as drawn."""
    chosen = arith_problems("train", problems, seed=seed + 7)
    solutions = sample_solutions(
        folder, chosen, samples=samples, seed=seed + 7, max_tokens=256, distinct=distinct
    )
    attempts = []
    for problem, texts in zip(chosen, solutions, strict=True):
        gold = str(problem.metadata["solution"]).split("\n")
        for text in texts:
            attempt = [line.strip() for line in text.split("\n") if line.strip()]
            attempts.append((problem.question, gold, attempt))
    return attempts


def revision_examples(
    attempts: list[tuple[str, list[str], list[str]]],
    rng: random.Random,
    *,
    hold_solving: bool = False,
) -> Iterator[Example]:
    """Phase 2's mix, forever: 4 in 10 examples as phase 1 makes them with a quarter of
    revisions of synthetic attempts (so solving is not forgotten and every kind of slip is
    seen), 5 in 10 revisions of the policy's own wrong attempts, 1 in 10 of its right ones
    (each distinct attempt as likely as another).

    `hold_solving`: phase 1's solutions are replaced by the policy's own attempts as drawn
    (`attempts` as sampled, repeats included), right or wrong: learning its own sampling
    distribution holds its solving where it is while the revisions train its checks, so a
    test bed's policy still slips as often as before.
    """
    base = examples(rng, revisions=0.25)
    synthetic = examples(rng, revisions=1.0)
    distinct = list({(q, tuple(a)): (q, g, a) for q, g, a in attempts}.values())
    wrong = [a for a in distinct if a[2] != a[1]]
    right = [a for a in distinct if a[2] == a[1]]
    while True:
        r = rng.random()
        if hold_solving and wrong and right and r < 0.3:
            question, _, attempt = rng.choice(attempts)
            yield solve_example(question, attempt)
            continue
        if hold_solving and wrong and right and r < 0.4:
            yield next(synthetic)
            continue
        if r < 0.4 or not wrong or not right:
            yield next(base)
            continue
        question, gold, attempt = rng.choice(wrong if r < 0.9 else right)
        yield revision_example(question, attempt, gold)


def train_revisions(
    out_dir: Path,
    *,
    steps: int,
    seed: int,
    problems: int = 3000,
    samples: int = 4,
    batch: int = 32,
    lr: float = 1e-3,
    attempts_from: Path | None = None,
    init: Path | None = None,
    verdict_weight: float = 1.0,
    bad_weight: float = 1.0,
    minutes: float | None = None,
    hold_solving: bool = False,
) -> None:
    """Phase 2: fine-tune the policy in `out_dir` to revise its *own* attempts.

    Phase 1's synthetic slips follow the kinds the policy makes, not where it
    makes them (the steps that carry, the long chains); as Snell et al. (2024)
    train their revision model on the policy's own samples, the policy samples
    train problems and learns to revise its own attempts (`attempts_from`: another
    folder's samples, e.g. the policy's when `out_dir` starts from other weights;
    `init`: the weights to start from, e.g. the verifier's, which check steps as a
    revision does, instead of `out_dir`'s).
    `verdict_weight` and `bad_weight` weigh the verdicts of a revision's checks as
    the verifier's training does (`fit`'s `emphasis` and `rare`): a revision that
    passes the step that slipped copies the slip. `hold_solving`: see
    `revision_examples`. Phase 2 can run again on a folder it trained; each run's
    record is kept in the log.
    """
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    torch.manual_seed(seed)
    start = time.monotonic()
    source = out_dir if attempts_from is None else attempts_from
    attempts = own_attempts(
        source, problems=problems, samples=samples, seed=seed, distinct=not hold_solving
    )
    sampled = (time.monotonic() - start) / 60
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    model = LlamaForCausalLM.from_pretrained(init or out_dir, dtype=torch.float32)
    if model.config.vocab_size != len(tokenizer):
        raise SystemExit(f"{init} does not share the policy's vocabulary")
    mix = revision_examples(attempts, random.Random(seed + 3), hold_solving=hold_solving)
    stream = (encode(tokenizer, e) for e in mix)
    weighed = verdict_weight != 1 or bad_weight != 1  # else the plain loss, as before
    tag = tokenizer.convert_tokens_to_ids(TAG)
    log = fit(
        model,
        tokenizer,
        batches(stream, batch, random.Random(seed + 4)),
        steps=steps,
        lr=lr,
        warmup=100,
        weight_decay=0.1,
        emphasis=(tag, verdict_weight) if weighed else None,
        rare=(verdict_id(tokenizer, BAD), bad_weight) if weighed else None,
        deadline=None if minutes is None else start + 60 * minutes,  # sampling included
    )
    model.save_pretrained(out_dir)
    store_bfloat16(out_dir)
    path = out_dir / "training_log.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    phase = {
        "steps": log[-1]["step"] + 1,
        "seed": seed,
        "problems": problems,
        "samples": samples,
        "attempts_from": str(source),
        "init": str(init or out_dir),
        "attempts": len(attempts),
        "wrong_attempts": sum(a[2] != a[1] for a in attempts),
        "hold_solving": hold_solving,
        "batch": batch,
        "lr": lr,
        "verdict_weight": verdict_weight,
        "bad_weight": bad_weight,
        "device": training_device(),
        "sampling_minutes": sampled,
        "minutes": (time.monotonic() - start) / 60,
        "log": log,
    }
    phases = record.setdefault("revision_phases", [])
    if "revision_phase" in record:  # one run, recorded before runs were kept in a list
        phases.insert(0, record.pop("revision_phase"))
    phases.append(phase)
    path.write_text(json.dumps(record, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the embedded arith policy.")
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--steps", type=int, default=2600, help="phase 1 steps (0: phase 1 is in OUT already)"
    )
    parser.add_argument("--revision-steps", type=int, default=800, help="phase 2 steps (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--revision-lr", type=float, default=1e-3)
    parser.add_argument(
        "--revision-problems", type=int, default=3000, help="train problems phase 2 samples"
    )
    parser.add_argument(
        "--attempts-from", type=Path, default=None, help="phase 2 revises this folder's samples"
    )
    parser.add_argument(
        "--init", type=Path, default=None, help="phase 2 starts from these weights, not OUT's"
    )
    parser.add_argument(
        "--verdict-weight", type=float, default=1.0, help="phase 2: a check's verdict weighs this"
    )
    parser.add_argument(
        "--bad-weight", type=float, default=1.0, help="phase 2: a bad verdict weighs this more"
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="phase 2: fewer steps if the run would be longer",
    )
    parser.add_argument(
        "--hold-solving",
        action="store_true",
        help="phase 2: learn the policy's own samples, not gold solutions, so it solves as before",
    )
    args = parser.parse_args()
    if args.steps:  # 0: phase 1 is done in OUT_DIR already; go on with phase 2
        train(args.out, steps=args.steps, seed=args.seed, batch=args.batch)
    if args.revision_steps:
        train_revisions(
            args.out,
            steps=args.revision_steps,
            seed=args.seed,
            problems=args.revision_problems,
            batch=args.batch,
            lr=args.revision_lr,
            attempts_from=args.attempts_from,
            init=args.init,
            verdict_weight=args.verdict_weight,
            bad_weight=args.bad_weight,
            minutes=args.minutes,
            hold_solving=args.hold_solving,
        )


if __name__ == "__main__":
    main()
