"""The progress bar of `ponder eval`: results done, accuracy so far, tokens spent, time left."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as _RichProgress

from ponder.evaluation.runner import Progress


class RichProgress(Progress):
    """A rich progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, enabled: bool = True) -> None:
        self._console = Console(stderr=True)
        self._enabled = enabled
        self._bar: _RichProgress | None = None
        self._task = None
        self._right = self._graded = self._tokens = 0

    def start(self, total: int) -> None:
        if not self._enabled:
            return
        self._bar = _RichProgress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("acc {task.fields[accuracy]}"),
            TextColumn("{task.fields[tokens]} tok"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self._console,
        )
        self._bar.start()
        self._task = self._bar.add_task("starting", total=total, accuracy="-", tokens=0)

    def advance(self, label: str, correct: bool | None, tokens: int) -> None:
        if correct is not None:
            self._graded += 1
            self._right += int(correct)
        self._tokens += tokens
        if self._bar is None or self._task is None:
            return
        accuracy = f"{self._right / self._graded:.3f}" if self._graded else "-"
        self._bar.update(
            self._task, advance=1, description=label, accuracy=accuracy, tokens=self._tokens
        )

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
