"""The `ponder` command line.

    ponder solve "Start with 37. Add 48. Multiply by 6."    # the embedded arith policy
    ponder solve "Start with 37. Add 48." --strategy beam_search --budget 16 --param beam_width=4
    ponder solve "What is 17 * 23?" --model PATH_OR_URL [--json]
    ponder strategies                                        # the strategies and their parameters

Errors the user can fix (a missing model folder, an unreachable server, an
unknown option, an empty problem) end with one line on stderr and exit status
1 (2 for a malformed command line); never with a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ponder.errors import ConfigError, PonderError
from ponder.policy import AUTO, RULES
from ponder.verifiers.base import KINDS

MODEL_CONFIG_HELP = (
    "the served model's folder (config.json, *.safetensors): its size, for FLOPs estimates"
)
VERIFIER_CONFIG_HELP = "the served verifier's folder: its size, for FLOPs estimates"
VERIFIER_KIND_HELP = (
    "read the verifier as a judge that checks each step before its verdict, or as a PRM "
    "in one pass (default auto: the reading its folder names in ponder_verifier.json, else "
    "a judge when it declares a ponder_judge.json)"
)

EXIT_ERROR, EXIT_USAGE = 1, 2


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, not usage text plus a line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ponder: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    from ponder import __version__

    parser = _Parser(prog="ponder", description="Compute-optimal test-time scaling for LLMs.")
    parser.add_argument("--version", action="version", version=f"ponder {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    solve = commands.add_parser("solve", help="answer one problem")
    solve.add_argument("problem", help="the problem text")
    solve.add_argument(
        "--model",
        help="a Hugging Face model folder, or an OpenAI-compatible server URL "
        "(default: ponder's embedded arith policy)",
    )
    solve.add_argument("--served-model", help="the model name on the server (default: its first)")
    solve.add_argument("--model-config", help=MODEL_CONFIG_HELP)
    solve.add_argument(
        "--format",
        choices=("auto", "chat", "raw"),
        default="auto",
        help="prompt as chat messages or raw text (default: by the model)",
    )
    solve.add_argument(
        "--strategy",
        default="single",
        help="the test-time scaling strategy (default: single; see `ponder strategies`)",
    )
    solve.add_argument(
        "--budget",
        help="N (solutions' worth of samples), or samples=N; tokens=T and flops=X cap a run",
    )
    solve.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a strategy parameter, e.g. beam_width=4 (repeatable)",
    )
    solve.add_argument(
        "--verifier",
        "--prm",
        dest="prm",
        help="the verifier's model folder or server URL, for strategies that use one "
        "(default with the embedded policy: the embedded arith verifier)",
    )
    _verifier_options(solve)
    solve.add_argument("--max-tokens", type=int, help="tokens per solution (default 512)")
    solve.add_argument(
        "--temperature", type=float, help="sampling temperature (default: the strategy's)"
    )
    solve.add_argument("--seed", type=int, default=0)
    solve.add_argument("--trace-html", metavar="FILE", help="write the search trace as HTML")
    solve.add_argument("--json", action="store_true", help="print the whole result as JSON")
    solve.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print the solution and its cost on stderr",
    )
    commands.add_parser("strategies", help="list the strategies and their parameters")
    _eval_parser(commands)
    report = commands.add_parser("report", help="plot and tabulate evaluation runs")
    report.add_argument("runs", nargs="+", help="run folders written by `ponder eval`")
    report.add_argument(
        "--out", help="the HTML file (default: report.html in the first run's folder)"
    )
    report.add_argument(
        "--reference", help="the strategy compute-matched ratios compare with (default: majority)"
    )
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    _serve_parser(commands)
    return parser


def _serve_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = commands.add_parser(
        "serve",
        help="serve test-time scaling behind an OpenAI-compatible API (docs/serving.md)",
        description="With no flags: the embedded policy, verifier and compute-optimal policy "
        "as model 'arith' on 127.0.0.1:8000.",
    )
    serve.add_argument("--config", help="a TOML file of [server] limits and [[route]]s")
    serve.add_argument("--host", help="the address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="default 8000")
    serve.add_argument(
        "--api-key",
        default=os.environ.get("PONDER_API_KEY"),
        help="requests must send 'Authorization: Bearer KEY' (default: $PONDER_API_KEY)",
    )
    serve.add_argument(
        "--allow-open-access",
        action="store_true",
        help="listen beyond this machine without an API key",
    )
    serve.add_argument("--name", help="the served model name (one route; default arith)")
    serve.add_argument("--model", help="a model folder or OpenAI-compatible URL (one route)")
    serve.add_argument("--served-model", help="the model's name on its server")
    serve.add_argument("--model-config", help=MODEL_CONFIG_HELP)
    serve.add_argument(
        "--upstream-timeout",
        type=float,
        help="seconds a served model has to answer one call, then retried (default 120)",
    )
    serve.add_argument(
        "--format",
        help="auto (default), chat, raw, or a folder or file with the model's ponder_prompt.json",
    )
    serve.add_argument(
        "--verifier", help="a verifier folder or URL; 'none' for no verifier (one route)"
    )
    serve.add_argument("--served-verifier", help="the verifier's name on its server")
    serve.add_argument("--strategy", help="the default strategy (one route)")
    serve.add_argument("--budget", type=int, help="the default budget N (one route)")
    serve.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a default parameter"
    )
    serve.add_argument("--policy", help="the compute-optimal policy file (one route)")
    for name, kind, what in (
        ("max-budget", int, "the largest budget N a request may ask for (default 64)"),
        ("max-tokens", int, "the largest max_tokens a request may ask for (default 2048)"),
        ("max-body-bytes", int, "the largest request body (default 1 MiB)"),
        ("max-concurrent", int, "requests solved at once (default 8)"),
        ("max-queued", int, "requests waiting for a slot before 429 (default 32)"),
        ("deadline-s", float, "seconds a request may run before 504 (default 300)"),
    ):
        serve.add_argument(f"--{name}", type=kind, help=what)


def _verifier_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--served-verifier", "--served-prm", dest="served_prm", help="its model name on its server"
    )
    command.add_argument(
        "--verifier-config", "--prm-config", dest="prm_config", help=VERIFIER_CONFIG_HELP
    )
    command.add_argument(
        "--verifier-format",
        "--prm-format",
        dest="prm_format",
        help="its ponder_judge.json or ponder_prm.json (how it reads solutions)",
    )
    command.add_argument("--verifier-kind", choices=KINDS, default="auto", help=VERIFIER_KIND_HELP)


def _eval_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ev = commands.add_parser(
        "eval", help="sweep tasks x strategies x budgets x seeds into a run folder"
    )
    ev.add_argument("--out", required=True, help="the run folder (resumed when it exists)")
    _sweep_options(ev, split="test", strategies="majority", budgets="1,4,16")
    ev.add_argument(
        "--difficulty-samples",
        type=int,
        default=16,
        help="samples per problem for the difficulty bins and coverage (0: none; default 16)",
    )
    ev.add_argument(
        "--no-reuse",
        action="store_true",
        help="run every budget afresh, not from the largest budget's samples",
    )
    ev.add_argument("--json", action="store_true", help="print the summary as JSON")
    ev.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        metavar="ADDRESS",
        help="run the sweep on a Ray cluster: auto (default; the cluster this node belongs to), "
        "HOST:PORT, or local (one started in this process); needs ponder[ray]",
    )
    ev.add_argument(
        "--ray-workers",
        type=int,
        help="Ray workers, each holding its own models or model clients (default: one per node)",
    )
    ev.add_argument(
        "--shard",
        metavar="I/N",
        help="run only the I-th of N interleaved slices of the problems (one job of an array; "
        "each shard its own --out; `ponder report` over the N folders reads them as one run)",
    )

    cal = commands.add_parser(
        "calibrate",
        help="measure candidate strategies on a dev split and write a compute-optimal policy",
    )
    cal.add_argument("--out", required=True, help="the policy file to write (JSON)")
    cal.add_argument(
        "--runs", help="the calibration runs' folder (resumed when it exists; default: OUT.runs)"
    )
    _sweep_options(
        cal, split="dev", strategies="majority,weighted_majority,beam_search", budgets="4,16,64"
    )
    cal.add_argument("--pilot", type=int, default=4, help="pilot samples per prompt (default 4)")
    cal.add_argument("--bins", type=int, default=5, help="difficulty bins (default 5)")
    cal.add_argument(
        "--shrink",
        type=float,
        default=10.0,
        help="weight, in problems, of a configuration's accuracy over all bins in its "
        "estimate for one bin (default 10; 0: each bin's own rate)",
    )
    cal.add_argument(
        "--folds",
        type=int,
        default=5,
        help="folds of the policy's cross-validated accuracy (default 5; 0: none)",
    )
    cal.add_argument(
        "--rule",
        choices=(*RULES, AUTO),
        default=RULES[0],
        help="per (budget, bin), keep the best estimated accuracy (default) or, with one-se, "
        "the fewest generated tokens within one standard error of the best; auto: per budget, "
        "the rule whose policy cross-validates better there (the cheaper on a tie)",
    )


def _sweep_options(
    command: argparse.ArgumentParser, *, split: str, strategies: str, budgets: str
) -> None:
    """The options `eval` and `calibrate` share: tasks, strategies, budgets, models."""
    command.add_argument(
        "--task",
        default="arith",
        help="tasks, comma-separated: arith, math500, gsm8k, aime2024, or your own data files "
        "(.jsonl, .json, .csv, .parquet)",
    )
    data = command.add_argument_group("your own data files (--task FILE)")
    data.add_argument("--question-field", default="question", help="(default question)")
    data.add_argument("--answer-field", default="answer", help="the gold answer (default answer)")
    data.add_argument(
        "--id-field", default="id", help="problem ids, when the file has them (default id)"
    )
    data.add_argument(
        "--grader",
        default="math",
        help="math (math-verify; default), integer, exact, or regex:PATTERN (the answer is "
        "PATTERN's last match in the solution, its first group if it has one)",
    )
    command.add_argument(
        "--prompt-template", help="the prompt, with a {question} field (every task but arith)"
    )
    command.add_argument("--split", default=split, help=f"(default {split})")
    command.add_argument("--limit", type=int, help="the first N problems of each task")
    command.add_argument("--data", help="a folder holding TASK/SPLIT.jsonl for the benchmarks")
    command.add_argument(
        "--strategies", default=strategies, help=f"comma-separated strategy names ({strategies})"
    )
    command.add_argument(
        "--budgets", default=budgets, help=f"comma-separated budgets N ({budgets})"
    )
    command.add_argument("--seeds", default="0", help="comma-separated seeds")
    command.add_argument(
        "--model", help="model folder or OpenAI-compatible URL (default: embedded)"
    )
    command.add_argument("--served-model", help="the model name on the server")
    command.add_argument("--model-config", help=MODEL_CONFIG_HELP)
    command.add_argument(
        "--verifier",
        "--prm",
        dest="prm",
        help="the verifier folder or server URL (default with the embedded policy: its verifier)",
    )
    _verifier_options(command)
    command.add_argument("--format", choices=("auto", "chat", "raw"), default="auto")
    command.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="[STRATEGY.]NAME=VALUE",
        help="a strategy parameter, for one strategy or all that have it (repeatable)",
    )
    command.add_argument("--batch", type=int, default=16, help="problems solved together")
    command.add_argument("--no-progress", action="store_true", help="no progress bar")


def _strategies() -> int:
    import dataclasses

    from ponder.strategies import STRATEGIES

    for name, cls in STRATEGIES.items():
        doc = (cls.__module__ and __import__(cls.__module__, fromlist=["_"]).__doc__) or ""
        print(f"{name}: {doc.strip().splitlines()[0] if doc.strip() else ''}")
        values = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls.Params))
        needs = "  (needs a verifier)" if cls.uses_verifier(cls.Params()) else ""
        print(f"    {values}{needs}")
    return 0


def _int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise _UsageError(f"--{what} takes comma-separated integers, not {text!r}") from None


def _sweep_config(
    args: argparse.Namespace,
    specs: Callable[[list[str], dict[str, str]], tuple[Any, ...]],
    **options: Any,
) -> Any:
    """The `EvalConfig` of an `eval` or `calibrate` command line."""
    from ponder.evaluation import EvalConfig
    from ponder.strategies import parse_pairs

    try:
        return EvalConfig(
            tasks=tuple(t.strip() for t in args.task.split(",") if t.strip()),
            strategies=specs(
                [s.strip() for s in args.strategies.split(",") if s.strip()],
                parse_pairs(args.param),
            ),
            budgets=_int_list(args.budgets, "budgets"),
            seeds=_int_list(args.seeds, "seeds"),
            split=args.split,
            limit=args.limit,
            data=args.data,
            model=args.model,
            served_model=args.served_model,
            model_config=args.model_config,
            prm=args.prm,
            served_prm=args.served_prm,
            prm_config=args.prm_config,
            prm_format=args.prm_format,
            verifier_kind=args.verifier_kind,
            prompt_format=args.format,
            batch=args.batch,
            question_field=args.question_field,
            answer_field=args.answer_field,
            id_field=args.id_field,
            grader=args.grader,
            prompt_template=args.prompt_template,
            **options,
        )
    except ConfigError as exc:
        raise _UsageError(str(exc)) from None


def _tokens(checked: dict, key: str) -> str:
    """A cross-validation record's tokens, shown as ' (N tokens)'; nothing for an older
    record, which has none."""
    return f" ({checked[key]:,.0f} tokens)" if key in checked else ""


def _calibrate(args: argparse.Namespace) -> int:
    from ponder.evaluation.calibrate import calibrate, candidate_specs
    from ponder.evaluation.progress import RichProgress

    if args.pilot < 1 or args.bins < 1:
        raise _UsageError("--pilot and --bins must be at least 1")
    if args.shrink < 0 or args.folds < 0 or args.folds == 1:
        raise _UsageError("--shrink must be >= 0 and --folds 0 or at least 2")
    config = _sweep_config(
        args, lambda names, pairs: candidate_specs(names, pairs, pilot=args.pilot)
    )
    runs = args.runs or f"{args.out}.runs"
    policy = calibrate(
        config,
        runs,
        args.out,
        bins=args.bins,
        pilot=args.pilot,
        command=" ".join(["ponder", *sys.argv[1:]]),
        progress=RichProgress(enabled=not args.no_progress),
        shrink=args.shrink,
        folds=args.folds,
        rule=args.rule,
    )
    print(f"policy: {args.out} (runs in {runs})", file=sys.stderr)
    checked = policy.made_with.get("cross_validated", {})
    for budget, choices in sorted(policy.table.items()):
        row = "  ".join(
            f"bin {b}: {c.configuration}"
            + (f" at N={c.budget}" if c.budget not in (None, budget) else "")
            + f" ({c.accuracy:.2f}"
            + (f" ± {c.stderr:.2f}" if c.stderr is not None else "")
            + ")"
            for b, c in enumerate(choices, 1)
        )
        print(f"N={budget}: {row}")
        cv = checked.get(str(budget))
        if cv:
            print(
                f"  cross-validated ({cv['folds']} folds, {cv['problems']} problems): policy "
                f"{cv['policy']:.3f}{_tokens(cv, 'policy_tokens')}, best fixed ({cv['fixed']}) "
                f"{cv['best_fixed']:.3f}{_tokens(cv, 'fixed_tokens')}; "
                f"in-sample {cv['in_sample']:.3f}"
            )
        compared = policy.made_with.get("rule_chosen_from")
        if compared:  # --rule auto: each rule's policy held out at this budget
            scores = ", ".join(
                f"{rule} {by[str(budget)]['policy']:.3f} at {by[str(budget)]['policy_tokens']:.0f} "
                "tokens"
                for rule, by in compared.items()
            )
            print(f"  rule: {policy.made_with['rule'][str(budget)]} (held out: {scores})")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from ponder.evaluation import Sweep, analyze
    from ponder.evaluation.config import strategy_specs
    from ponder.evaluation.progress import RichProgress
    from ponder.sync import run_sync

    config = _sweep_config(
        args,
        strategy_specs,
        difficulty_samples=args.difficulty_samples,
        reuse=not args.no_reuse,
        shard=args.shard,
    )
    if args.ray_workers is not None and args.ray is None:
        raise _UsageError("--ray-workers needs --ray")
    if args.ray_workers is not None and args.ray_workers < 1:
        raise _UsageError(f"--ray-workers must be at least 1, got {args.ray_workers}")
    if args.ray is not None:  # joined from the main thread, where Ray sets its signal handlers
        from ponder.evaluation.distributed import connect

        connect(args.ray)
    sweep = Sweep(config, args.out, progress=RichProgress(enabled=not args.no_progress))
    # Stdout is the summary's alone (--json is piped): what libraries print as the sweep
    # runs (Ray's notices of nodes that died) goes to stderr.
    try:
        with contextlib.redirect_stdout(sys.stderr):
            run_sync(sweep.run(ray=args.ray, actors=args.ray_workers))
    finally:
        sweep.close()
    _print_summary(analyze([args.out]), args.json)
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ponder.evaluation import analyze, write_report

    analysis = analyze(args.runs, reference=args.reference)
    out = Path(args.out) if args.out else Path(args.runs[0]) / "report.html"
    written = write_report(analysis, out)
    _print_summary(analysis, args.json)
    if not args.json:
        print(f"report: {written[0]} ({len(written) - 1} PNG files beside it)", file=sys.stderr)
    return 0


def _print_summary(analysis: object, as_json: bool) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ponder.evaluation import Analysis
    from ponder.evaluation.report import summary_table

    assert isinstance(analysis, Analysis)
    if as_json:
        print(json.dumps([s.as_json() for s in analysis.summaries], indent=2))
        return
    rows = summary_table(analysis.summaries)
    table = Table(*rows[0])
    for row in rows[1:]:
        table.add_row(*(escape(cell) for cell in row))  # labels hold [brackets]
    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
        console = Console(width=200)
    console.print(table)


def _solve(args: argparse.Namespace) -> int:
    from ponder.budget import Budget
    from ponder.generators import load_generator
    from ponder.solve import asolve
    from ponder.strategies import parse_pairs
    from ponder.strategies.registry import needs_verifier, parse_params
    from ponder.sync import run_sync
    from ponder.tasks import MATH_CHAT, MATH_RAW
    from ponder.verifiers import load_verifier

    if not args.problem.strip():
        raise _UsageError("the problem is empty: give the question to solve")
    try:  # a strategy or parameter that does not exist or fit is a command-line error
        values = parse_pairs(args.param)
        for option, key in ((args.temperature, "temperature"), (args.max_tokens, "max_tokens")):
            if option is not None:
                if key in values:
                    raise _UsageError(f"--{key.replace('_', '-')} and --param {key}= both given")
                values[key] = str(option)
        params = parse_params(args.strategy, values)
    except ConfigError as exc:
        raise _UsageError(str(exc)) from None
    budget = Budget.parse(args.budget) if args.budget else None
    verifier = None
    if args.prm is not None or needs_verifier(args.strategy, params):
        if args.prm is None and args.model is not None:
            raise _UsageError(
                f"the {args.strategy} strategy needs a verifier: give --verifier FOLDER"
            )
        verifier = load_verifier(
            args.prm,
            kind=args.verifier_kind,
            format=args.prm_format,
            model=args.served_prm,
            shape_from=args.prm_config,
        )
        run_sync(verifier.connect())
    generator = load_generator(args.model, model=args.served_model, shape_from=args.model_config)
    run_sync(generator.connect())
    prompt_format = {"chat": MATH_CHAT, "raw": MATH_RAW, "auto": None}[args.format]
    result = run_sync(
        asolve(
            args.problem,
            generator,
            strategy=args.strategy,
            budget=budget,
            verifier=verifier,
            prompt_format=prompt_format,
            params=params,
            seed=args.seed,
        )
    )
    if args.trace_html:
        from ponder.trace_html import write_trace_html

        try:
            write_trace_html(result, args.trace_html)
        except OSError as exc:
            raise _UsageError(f"cannot write {args.trace_html}: {exc.strerror}") from None
    if args.json:
        payload = {"model": generator.name, **result.to_dict()}
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print(result.answer if result.answer is not None else "(no answer found)")
    if args.verbose and result.chosen is not None:
        cost = result.cost
        print(f"\n{result.chosen.text}\n", file=sys.stderr)
        print(
            f"[{cost.generated_tokens} generated + {cost.prompt_tokens} prompt tokens, "
            f"{cost.flops:.3g} FLOPs, {cost.wall_seconds:.2f} s]",
            file=sys.stderr,
        )
        if result.details:
            shown = ", ".join(f"{k}={_short(v)}" for k, v in result.details.items())
            print(f"[{result.strategy}: {shown}]", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ponder.serve.config import EMBEDDED, ServeConfig, load_config, with_overrides
    from ponder.strategies import parse_pairs

    try:
        import uvicorn

        from ponder.serve.app import create_app
    except ImportError as exc:
        raise _UsageError(
            f"serving needs the serve extra ({exc.name} is missing): pip install 'ponder[serve]'"
        ) from None
    config = load_config(args.config) if args.config else ServeConfig()
    route_flags = {
        "name": args.name,
        "model": args.model,
        "served_model": args.served_model,
        "model_config": args.model_config,
        "timeout_s": args.upstream_timeout,
        "prompt_format": args.format,
        "verifier": args.verifier,
        "served_verifier": args.served_verifier,
        "strategy": args.strategy,
        "budget": args.budget,
        "policy": args.policy,
    }
    given = {k: v for k, v in route_flags.items() if v is not None}
    if args.param:
        given["params"] = parse_pairs(args.param)
    if given:
        if len(config.routes) > 1:
            raise _UsageError("route flags apply to one route; edit the config file for several")
        if given.get("verifier") == "none":
            given["verifier"] = None
        elif "model" in given and given["model"] != EMBEDDED and "verifier" not in given:
            given["verifier"] = None  # the embedded verifier judges the embedded policy only
        if "model" in given and given["model"] != EMBEDDED and "strategy" not in given:
            given["strategy"] = "single" if given.get("verifier") is None else "best_of_n"
        config = replace(config, routes=(replace(config.routes[0], **given),))
    config = with_overrides(
        config,
        host=args.host,
        port=args.port,
        api_key=args.api_key or None,
        max_budget=args.max_budget,
        max_tokens=args.max_tokens,
        max_body_bytes=args.max_body_bytes,
        max_concurrent=args.max_concurrent,
        max_queued=args.max_queued,
        deadline_s=args.deadline_s,
    )
    config.check_exposure(args.allow_open_access)
    routes = ", ".join(f"{r.name} ({r.strategy}@{r.budget})" for r in config.routes)
    print(f"ponder: serving {routes} on http://{config.host}:{config.port}/v1", file=sys.stderr)
    app = create_app(config, freeze_gc=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False)
    return 0


def _short(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class _UsageError(Exception):
    """A command line that parses but makes no sense (exit status 2)."""


def _quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _quiet_libraries()
    try:
        if args.command == "strategies":
            return _strategies()
        commands = {
            "solve": _solve,
            "eval": _eval,
            "calibrate": _calibrate,
            "report": _report,
            "serve": _serve,
        }
        return commands[args.command](args)
    except _UsageError as exc:
        print(f"ponder: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PonderError as exc:
        print(f"ponder: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("ponder: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
