"""Deciding whether an answer equals the gold answer, with math-verify.

`math_verify` parses both answers (LaTeX or plain expressions) into SymPy and
compares them as numbers, sets, intervals, equations or matrices. Its time
limit rests on `SIGALRM`, which only the main thread may use; elsewhere (a
worker thread, an async server) ponder runs the comparison in a helper process
and gives up on it after the same limit, replacing the helper if it hangs.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import threading
from dataclasses import dataclass

from ponder.errors import ConfigError, GradingTimeout


def _normalise(answer: str) -> str:
    text = answer.strip().strip("$").strip()
    for wrapper in ("\\text{", "\\textbf{", "\\mathrm{"):
        if text.startswith(wrapper) and text.endswith("}"):
            text = text[len(wrapper) : -1]
    return "".join(text.split()).rstrip(".")


def _verify(gold: str, answer: str, timeout_seconds: int | None) -> bool:
    from math_verify.errors import TimeoutException

    try:
        return _compare(gold, answer, timeout_seconds)
    except TimeoutException:  # a BaseException: math-verify's own handlers let it through
        raise GradingTimeout(f"comparing {answer!r} with {gold!r} took too long") from None


def _compare(gold: str, answer: str, timeout_seconds: int | None) -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(), ExprExtractionConfig()]
    # Wrapping in \boxed{} tells the LaTeX extractor exactly what to parse.
    parsed_gold = parse(
        f"\\boxed{{{gold}}}", extraction_config=config, parsing_timeout=timeout_seconds
    )  # type: ignore[arg-type]
    parsed_answer = parse(
        f"\\boxed{{{answer}}}", extraction_config=config, parsing_timeout=timeout_seconds
    )  # type: ignore[arg-type]
    if not parsed_gold or not parsed_answer:
        return False
    return bool(verify(parsed_gold, parsed_answer, timeout_seconds=timeout_seconds))


def _verify_in_helper(gold: str, answer: str, timeout_seconds: int) -> bool:
    # In the helper's main thread the alarm works; it is a second line of defence.
    return _verify(gold, answer, timeout_seconds)


class _Helper:
    """One helper process for comparisons made outside the main thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        # Shut the helper down before interpreter teardown, which would otherwise
        # print an ignored exception from the pool's manager thread.
        atexit.register(self.close)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def run(self, gold: str, answer: str, timeout_seconds: int) -> bool:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=1)
            pool = self._pool
        future = pool.submit(_verify_in_helper, gold, answer, timeout_seconds)
        try:
            return future.result(timeout=timeout_seconds + 5)
        except concurrent.futures.TimeoutError:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)
            raise GradingTimeout(f"comparing {answer!r} with {gold!r} took too long") from None


_helper = _Helper()


@dataclass(frozen=True, slots=True)
class MathGrader:
    """Grades a predicted answer against a gold answer by mathematical equivalence.

    `timeout_seconds` bounds each comparison; a comparison that runs out of time
    grades as wrong (a degenerate answer must not stall an evaluation).
    """

    timeout_seconds: int = 5

    def __post_init__(self) -> None:
        if self.timeout_seconds < 1:
            raise ConfigError(f"timeout_seconds must be at least 1, got {self.timeout_seconds}")

    def __call__(self, answer: str | None, gold: str) -> bool:
        if answer is None or not answer.strip():
            return False
        if _normalise(answer) == _normalise(gold):
            return True
        # math-verify reports unparsable input as "not equal" itself; only time-outs escape it.
        try:
            if threading.current_thread() is threading.main_thread():
                return _verify(gold, answer, self.timeout_seconds)
            return _helper.run(gold, answer, self.timeout_seconds)
        except GradingTimeout:
            return False
