"""Command-line options built from a pydantic declaration, so a command never re-spells a model's
fields: `@model_options(GenerationOptions)` gives `textmill generate` one option per field, with the
field's type, default and description, and hands the command the values as one `options` dict."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Optional, get_origin

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo


def _cli_type(field: FieldInfo) -> Any:
    """The annotation Typer reads for a field: a list field is a repeatable option, None when not given."""
    annotation = field.annotation
    return Optional[annotation] if get_origin(annotation) is list else annotation


def model_options(model: type[BaseModel], *, names: dict[str, list[str]] | None = None,
                  help: dict[str, str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a Typer command that takes `options: dict`: every field of `model` becomes an option
    (`--field-name`, or the flags `names` gives it; a list field repeats; a Literal offers its
    choices), and the command is called with `options` holding each field's value."""
    names, help = names or {}, help or {}
    fields = model.model_fields

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)  # the command's own options, as Typer reads them
        own = [p for p in signature.parameters.values() if p.name != "options"]
        added, annotations = [], {}
        for name, field in fields.items():
            annotation = _cli_type(field)
            default = None if get_origin(field.annotation) is list else field.get_default(call_default_factory=True)
            flag = name.replace("_", "-")
            flags = names.get(name, [f"--{flag}/--no-{flag}" if field.annotation is bool else f"--{flag}"])
            option = typer.Option(default, *flags, help=help.get(name, field.description), show_default=default is not None)
            added.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation))
            annotations[name] = annotation

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            options = {name: kwargs.pop(name) for name in fields}
            options.update({name: [] for name, value in options.items() if value is None and get_origin(fields[name].annotation) is list})
            return command(options=options, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {**{p.name: p.annotation for p in own}, **annotations}
        return wrapper

    return decorate
