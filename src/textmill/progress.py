"""Progress bars for long work (training, synth, evaluation), on standard error.

The library reports progress as calls `report(what, done, total)`: what it is doing now, how far
along it is, and of how much (`total=None` while that is unknown). `Bar` draws those calls with
rich; `TrainBar` turns the trainer's events into them. The Python API shows a bar by default
(`progress=False` turns it off; a callable receives the calls instead), as the CLI does, so that
work of minutes never looks stuck. Only rank 0 of a distributed run draws.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any, Union

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

Report = Callable[[str, float, Union[float, None]], None]  # (what, done, total or None)
ProgressOption = Union[bool, Report, None]


class Bar:
    """One bar: a description of the current work, done/total (a pulse while the total is unknown),
    a status text, elapsed and remaining time."""

    def __init__(self, what: str = "", console: Console | None = None, transient: bool = False) -> None:
        enabled = os.environ.get("RANK", "0") == "0"
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=transient,
                                 disable=not enabled)
        self.task = self.progress.add_task(what, total=None, status="")

    def __enter__(self) -> Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, what: str, done: float = 0, total: float | None = None, status: str | None = None) -> None:
        if status is None:
            status = "" if total is None else f"{_count(done)}/{_count(total)}"
        self.progress.update(self.task, description=what, completed=done, total=total, status=status)

    def print(self, text: str) -> None:
        """A line above the bar (an evaluation result, a resume notice)."""
        self.progress.console.print(text, highlight=False, markup=False)


def _count(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def reporter(progress: ProgressOption, what: str) -> tuple[Report, Bar | None]:
    """The `report` function for a `progress=` option, and the bar to enter (None when the caller draws)."""
    if callable(progress):
        return progress, None
    if progress:
        bar = Bar(what)
        return bar, bar
    return (lambda what, done, total: None), None


class TrainBar(Bar):
    """The trainer's events as a bar: steps (or the wall-clock budget, when one is set), loss and
    training tokens per second (the same measure as the run's final figure), evaluations printed
    above the bar, and a line for a resumed run."""

    def __init__(self, what: str, budget_minutes: float | None, console: Console | None = None) -> None:
        super().__init__(what, console)
        self.what = what
        self.budget = budget_minutes * 60 if budget_minutes else None
        self.started = time.perf_counter()
        self(f"{what}: preparing data and model")

    def event(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == "step":
            status = f"step {event['step']:,}"
            if not self.budget:
                status += f"/{event['max_steps']:,}"
            if math.isfinite(event["loss"]):
                status += f"  loss {event['loss']:.3f}"
            status += f"  {event['tokens_per_sec']:,.0f} tok/s"
            if self.budget:
                done = min(time.perf_counter() - self.started, self.budget)
                self(self.what, done, self.budget, status)
            else:
                self(self.what, event["step"], event["max_steps"], status)
        elif kind == "resume":
            self.print(f"resuming from step {event['step']:,} ({event['checkpoint']})")
        elif kind == "eval" and "val_bpc" in event:
            self.print(f"step {event['step']:,}: val loss {event['val_loss']:.4f}  bpc {event['val_bpc']:.3f}  "
                       f"ppl {event['val_ppl']:.2f}")
        elif kind == "end" and event["stopped"] == "fitted":
            self(self.what, 1, 1, f"fitted in {event['elapsed_s']:.1f} s")
