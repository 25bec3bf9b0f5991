"""What every command shares: the Typer app, the consoles, and the helpers that print errors."""

from __future__ import annotations

import logging
import os
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, compare, generate with and evaluate text generation models.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
IS_MAIN = os.environ.get("RANK", "0") == "0"

SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="override a config value: section.key=value")]


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def unescape(text: str) -> str:
    """Shell arguments cannot easily hold newlines: `\\n` and `\\t` in prompts and stop strings mean them."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
    raise typer.Exit(2)


def load_safety(spec: str | None) -> Any:
    if spec is None:
        return None
    from ..safety import Safety

    return Safety.load(spec)


def safety_summary(policy: Any) -> None:
    if policy is not None and policy.counts:
        err.print("safety: " + ", ".join(f"{v} {k}" for k, v in sorted(policy.counts.items())))
