"""ponder's import graph: no circles, and the core never imports the evaluation harness.

Every `import` in `src/ponder` counts, at module level or inside a function (a
deferred import still ties the modules together); a package's `__init__` is a
node of its own, and the top-level `ponder` package (which imports the public
API) is left out of the circle check.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ponder

ROOT = Path(ponder.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each ponder module and the ponder modules it imports."""
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]  # a name imported from a module
                if target and target != name:
                    graph[name].add(target)
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for after in graph[todo.pop()]:
            if after not in seen:
                seen.add(after)
                todo.append(after)
    return seen


def test_there_is_no_import_circle():
    graph = imports()
    circles = sorted(m for m in graph if m in reachable(graph, m) and "." in m)
    assert not circles, f"modules that import themselves through others: {circles}"


def test_nothing_but_the_cli_imports_the_evaluation_harness():
    graph = imports()
    for core in ("ponder.strategies.registry", "ponder.policy", "ponder.solve"):
        harness = sorted(m for m in reachable(graph, core) if m.startswith("ponder.evaluation"))
        assert not harness, f"{core} imports {harness}"
    for module, imported in graph.items():
        if module.startswith("ponder.evaluation") or module in ("ponder.cli", "ponder"):
            continue
        assert not any(m.startswith("ponder.evaluation") for m in imported), module


def test_solving_with_compute_optimal_loads_no_plotting(tmp_path):
    code = (
        "import sys, ponder\n"
        "r = ponder.solve('Start with 3. Add 4.', strategy='compute_optimal', budget=4)\n"
        "assert r.answer is not None\n"
        "print(sorted(m for m in sys.modules if m.startswith(('matplotlib', 'ponder.evaluation'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_wrapper_forwards_a_backends_folder_and_connect():
    from ponder import BudgetMeter, run_sync
    from ponder.generators import Generator
    from ponder.generators.transformers import TransformersGenerator
    from ponder.models import embedded_policy, embedded_verifier
    from ponder.strategies.batching import CoalescingGenerator, CoalescingVerifier
    from ponder.verifiers import Verifier, load_verifier

    meter = BudgetMeter()
    generator = TransformersGenerator(embedded_policy())
    verifier = load_verifier(embedded_verifier())  # a judge: it wraps a generator itself
    for wrapped, protocol, folder in (
        (meter.wrap(CoalescingGenerator(generator)), Generator, embedded_policy()),
        (CoalescingVerifier(meter.wrap_verifier(verifier)), Verifier, embedded_verifier()),
    ):
        assert isinstance(wrapped, protocol)
        assert wrapped.folder == folder
        assert run_sync(wrapped.connect()) == wrapped.name


def test_every_generator_wrapper_forwards_a_stream_and_the_meter_counts_it():
    from ponder import BudgetMeter, Prompt, SamplingParams, run_sync
    from ponder.generators.transformers import TransformersGenerator
    from ponder.models import embedded_policy
    from ponder.serve.upstream import WithExtra
    from ponder.strategies.batching import CoalescingGenerator

    meter = BudgetMeter()
    local = TransformersGenerator(embedded_policy())
    wrapped = meter.wrap(WithExtra(CoalescingGenerator(local), (("top_k", "1"),)))
    prompt, params = Prompt.raw("Problem: Start with 12. Add 7.\nSolution:\n"), SamplingParams()
    pieces: dict[int, str] = {}

    def on_text(index: int, piece: str) -> None:
        pieces[index] = pieces.get(index, "") + piece

    [streamed] = run_sync(
        wrapped.stream([prompt], params.replace(n=2, max_tokens=12, seed=0), on_text)
    )
    assert [pieces[0], pieces[1]] == [c.text for c in streamed.completions]
    cost = meter.cost()
    assert (cost.calls, cost.samples) == (1, 2)
    assert cost.generated_tokens == sum(c.num_tokens for c in streamed.completions)


def test_a_backend_that_subclasses_the_protocol_gets_its_defaults():
    from ponder import run_sync
    from ponder.generators import Generator

    class Served(Generator):
        name = "served"  # a served model: no folder, nothing to check

    assert Served().folder is None and run_sync(Served().connect()) == "served"
