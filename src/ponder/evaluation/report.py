"""The report of one or more runs: one self-contained HTML file, PNGs for papers, a table.

Plots (matplotlib, embedded in the HTML as PNG data, also written as files):
- accuracy against budget N (log x) per strategy, with the bootstrap interval as a band;
- the same per difficulty bin (oracle bins, and predicted bins when there are);
- accuracy against FLOPs per problem (log x);
- coverage (pass@k) against k with the fitted exponentiated power law.
Tables: the summary, the compute-matched ratios, the coverage fits.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

from ponder.errors import ConfigError
from ponder.evaluation.analysis import BINS, Analysis, Summary
from ponder.policy import Policy

# Enough distinct colours and markers that up to 14 strategies stay apart.
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
          "#17becf", "#bcbd22", "#7f7f7f")  # fmt: skip
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _style(index: int) -> dict[str, object]:
    return {
        "color": COLORS[index % len(COLORS)],
        "marker": MARKERS[index % len(MARKERS)],
        "linestyle": "-" if index < len(COLORS) else "--",
    }


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def _curves(
    ax, summaries: Sequence[Summary], strategies: list[str], x: str, band: bool = True
) -> None:  # type: ignore[no-untyped-def]
    for index, strategy in enumerate(strategies):
        points = sorted((s for s in summaries if s.strategy == strategy), key=lambda s: s.budget)
        if not points:
            continue
        xs = [getattr(s, x) for s in points]
        ax.plot(xs, [s.accuracy for s in points], label=strategy, **_style(index))
        if band:
            ax.fill_between(
                xs,
                [s.ci_low for s in points],
                [s.ci_high for s in points],
                color=COLORS[index % len(COLORS)],
                alpha=0.12,
                linewidth=0,
            )
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)


def accuracy_plot(summaries: Sequence[Summary], task: str, x: str = "budget") -> bytes:
    """Accuracy against budget N (or `flops_mean`) per strategy, with interval bands."""
    plt = _pyplot()
    rows = [s for s in summaries if s.task == task]
    strategies = list(dict.fromkeys(s.strategy for s in rows))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    _curves(ax, rows, strategies, x)
    if x == "budget":
        ax.set_xscale("log", base=2)
        ax.set_xlabel("budget N (log scale)")
        budgets = sorted({s.budget for s in rows})
        ax.set_xticks(budgets, [str(b) for b in budgets])
    else:
        ax.set_xscale("log")
        ax.set_xlabel("FLOPs per problem (log scale)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{task}: accuracy vs {'budget' if x == 'budget' else 'FLOPs'}")
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def bins_plot(binned: Sequence[tuple[int, Summary]], task: str, kind: str) -> bytes:
    """Accuracy against budget per strategy, one panel per difficulty bin."""
    plt = _pyplot()
    rows = [(b, s) for b, s in binned if s.task == task]
    strategies = list(dict.fromkeys(s.strategy for _, s in rows))
    present = sorted({b for b, _ in rows})
    fig, axes = plt.subplots(1, len(present), figsize=(3.0 * len(present), 3.4), sharey=True)
    axes = [axes] if len(present) == 1 else list(axes)
    budgets = sorted({s.budget for _, s in rows})
    for ax, b in zip(axes, present, strict=True):
        _curves(ax, [s for bb, s in rows if bb == b], strategies, "budget", band=False)
        ax.set_xscale("log", base=2)
        ax.set_xticks(budgets, [str(v) for v in budgets])
        label = {1: "easiest", BINS: "hardest"}.get(b, "")
        ax.set_title(f"bin {b} {label}".strip(), fontsize=10)
        ax.set_xlabel("N")
    axes[0].set_ylabel("accuracy")
    axes[-1].legend(fontsize=7, loc="best")
    fig.suptitle(f"{task}: accuracy by {kind} difficulty bin", fontsize=11)
    return _png(fig)


def coverage_plot(analysis: Analysis, task: str) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for index, cov in enumerate(c for c in analysis.coverage if c.task == task):
        style = _style(index)
        label = cov.source
        if cov.law is not None:
            label += f" (fit R²={cov.law.r2:.3f})"
        ax.plot(cov.ks, cov.coverage, label=label, linestyle="none", marker=style["marker"],
                color=style["color"])  # fmt: skip
        if cov.law is not None:
            top = max(cov.ks)
            xs = [2 ** (i / 20) for i in range(0, int(20 * math.log2(top)) + 1)]
            ax.plot(xs, [cov.law(k) for k in xs], color=style["color"], linestyle="--")
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("samples k (log scale)")
    ax.set_ylabel("coverage (pass@k)")
    ax.set_title(f"{task}: coverage and its fit exp(a·k^b)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def summary_table(summaries: Sequence[Summary]) -> list[list[str]]:
    head = ["task", "strategy", "N", "problems", "accuracy", "95% CI", "gen tok", "ver tok",
            "ver gen", "FLOPs", "wall s"]  # fmt: skip
    rows = [head]
    for s in summaries:
        rows.append([
            s.task, s.strategy + (" *" if s.reused else ""), str(s.budget), str(s.n_problems),
            f"{s.accuracy:.3f}", f"{s.ci_low:.3f}-{s.ci_high:.3f}",
            f"{s.generated_tokens_mean:.0f}", f"{s.verifier_tokens_mean:.0f}",
            f"{s.verifier_generated_tokens_mean:.0f}",
            f"{s.flops_mean:.3g}", f"{s.wall_seconds_mean:.2f}",
        ])  # fmt: skip
    return rows


def ratio_table(analysis: Analysis) -> list[list[str]]:
    head = ["task", "strategy", "N", "accuracy", "gen tok", "reference", "ref tok needed", "ratio"]
    rows = [head]
    for r in analysis.ratios:
        rows.append([
            r.task, r.strategy, str(r.budget), f"{r.accuracy:.3f}", f"{r.tokens:.0f}",
            r.reference,
            "not reached" if r.reference_tokens is None else f"{r.reference_tokens:.0f}",
            "-" if r.ratio is None else f"{r.ratio:.2f}x",
        ])  # fmt: skip
    return rows


def policy_table(policy: Policy) -> list[list[str]]:
    """A policy's choice per (budget, bin): configuration, spend, estimate ± stderr; and,
    where its file records them, its cross-validated accuracy beside the best fixed
    configuration's."""
    checked = policy.made_with.get("cross_validated") or {}
    rows = [["N", *(f"bin {b}" for b in range(1, policy.bins + 1))]]
    if checked:
        rows[0].append("cross-validated: policy / best fixed")
    for budget, entries in sorted(policy.table.items()):
        cells = []
        for entry in entries:
            spend = "" if entry.budget in (None, budget) else f" (spends {entry.budget})"
            error = "" if entry.stderr is None else f" ± {entry.stderr:.2f}"
            cells.append(f"{entry.configuration}{spend}: {entry.accuracy:.2f}{error}")
        if checked:
            cv = checked.get(str(budget))
            cells.append(
                "-"
                if cv is None
                else f"{cv['policy']:.3f} / {cv['best_fixed']:.3f} ({cv['fixed']})"
            )
        rows.append([str(budget), *cells])
    return rows


def _html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; } h3 { font-size: 15px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:nth-child(-n+2) { text-align: left; }
img.plot { max-width: 100%; border: 1px solid #eee; margin: 6px 0; }
pre { background: #f7f7f7; padding: 8px; font-size: 12px; overflow-x: auto; }
.note { color: #555; font-size: 13px; }
"""


def write_report(analysis: Analysis, out: str | Path) -> list[Path]:
    """Write the HTML report to `out` and the PNGs beside it; return the files written."""
    out = Path(out)
    figures: list[tuple[str, str, bytes]] = []  # (file stem, caption, png)
    tasks = list(dict.fromkeys(s.task for s in analysis.summaries))
    if not tasks:
        raise ConfigError("the runs hold no results yet")
    for task in tasks:
        figures.append(
            (f"{task}-accuracy", "Accuracy vs budget", accuracy_plot(analysis.summaries, task))
        )
        for kind, binned in analysis.bins.items():
            if any(s.task == task for _, s in binned):
                figures.append(
                    (f"{task}-bins-{kind}", f"By {kind} difficulty", bins_plot(binned, task, kind))
                )
        if any(s.flops_mean > 0 for s in analysis.summaries if s.task == task):
            figures.append(
                (
                    f"{task}-flops",
                    "Accuracy vs FLOPs",
                    accuracy_plot(analysis.summaries, task, "flops_mean"),
                )
            )
        if any(c.task == task for c in analysis.coverage):
            figures.append((f"{task}-coverage", "Coverage", coverage_plot(analysis, task)))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        written = []
        for stem, _, png in figures:
            path = out.parent / f"{out.stem}-{stem}.png"
            path.write_bytes(png)
            written.append(path)
        out.write_text(_page(analysis, figures), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {out}: {exc.strerror}") from None
    return [out, *written]


def _page(analysis: Analysis, figures: list[tuple[str, str, bytes]]) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>ponder report: {html.escape(', '.join(analysis.runs))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>ponder report: {html.escape(', '.join(analysis.runs))}</h1>",
        "<p class='note'>Accuracy is the mean over problems of each problem's accuracy over "
        "seeds; intervals are 95% percentile bootstrap intervals over problems. Rows marked * "
        "were computed from the samples of the strategy's largest budget (sample reuse: the "
        "first n of N i.i.d. samples are a budget-n run); their wall time is their share of "
        "that run's.</p>",
    ]
    for stem, caption, png in figures:
        data = base64.b64encode(png).decode()
        parts.append(f"<h2>{html.escape(caption)}</h2>")
        parts.append(
            f"<img class='plot' id='{html.escape(stem)}' alt='{html.escape(caption)}' "
            f"src='data:image/png;base64,{data}'>"
        )
    parts.append("<h2>Summary</h2>" + _html_table(summary_table(analysis.summaries)))
    if analysis.ratios:
        parts.append(
            "<h2>Compute-matched ratios</h2><p class='note'>For each strategy and budget: the "
            "generated tokens per problem the reference needs to reach the same accuracy "
            "(interpolated on its curve, linear in log tokens), divided by the strategy's own. "
            "Above 1: the strategy is that many times cheaper.</p>"
            + _html_table(ratio_table(analysis))
        )
    for file, policy in analysis.policies.items():
        parts.append(
            f"<h2>Compute-optimal policy</h2><p class='note'>{html.escape(file)}: the "
            f"configuration <code>compute_optimal</code> runs for each budget N and bin of the "
            f"difficulty its {policy.pilot}-sample pilot predicts ({html.escape(policy.reading)} "
            "reading; bin 1 easiest), with its estimated accuracy ± standard error on the "
            f"calibration problems (rule: {html.escape(policy.rule)}), "
            "and its accuracy cross-validated on them. Its accuracy against each fixed "
            "strategy's, at equal budget "
            "and at equal FLOPs, is in the plots above.</p>" + _html_table(policy_table(policy))
        )
    if analysis.coverage:
        rows = [["task", "samples from", "k max", "coverage at k max", "a", "b", "R²"]]
        for c in analysis.coverage:
            law = c.law
            rows.append([
                c.task, c.source, str(c.ks[-1]), f"{c.coverage[-1]:.3f}",
                "-" if law is None else f"{law.a:.3f}", "-" if law is None else f"{law.b:.3f}",
                "-" if law is None else f"{law.r2:.3f}",
            ])  # fmt: skip
        parts.append("<h2>Coverage laws</h2>" + _html_table(rows))
    for name, config in analysis.configs.items():
        parts.append(
            f"<details><summary>Configuration of {html.escape(name)}</summary>"
            f"<pre>{html.escape(json.dumps(config, indent=2))}</pre></details>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)
