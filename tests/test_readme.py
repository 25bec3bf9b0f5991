"""The README and docs/ say what the code does: their Python names resolve the way a user would write
them, every `textmill` command they show exists with the options they give it, the files and pages
they point to exist, and CI runs the README's install and test commands."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest
import typer.main

import textmill
from textmill.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = {path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
         for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "benchmarks").glob("*.md"))]}
FROM_IMPORT = re.compile(r"from (textmill(?:\.\w+)*) import (\w+)")
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)
ids = list(PAGES)


def shell_commands(text: str) -> list[str]:
    """The `textmill ...` command lines of a page's bash blocks (backslash continuations joined)."""
    found = []
    for lang, block in FENCE.findall(text):
        if lang not in ("bash", "sh", ""):
            continue
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("textmill "):
                found.append(line)
    return found


def test_the_readme_is_short_and_every_topic_has_its_page():
    assert len(README.splitlines()) < 200
    for page in ("configs-and-data", "tokenizers", "models", "pretrained", "decoding", "training", "evaluation", "synth",
                 "content", "serving", "safety", "exchange", "architecture"):
        assert f"(docs/{page}.md)" in README, page


@pytest.mark.parametrize("page", ids)
def test_from_imports_resolve(page):
    for module, name in FROM_IMPORT.findall(PAGES[page]):
        assert hasattr(importlib.import_module(module), name), f"{page}: from {module} import {name}"


@pytest.mark.parametrize("page", ids)
def test_dotted_names_resolve_by_attribute_access(page):
    """`textmill.train` is the train function; a page must not tell users to write a dotted name that
    attribute access does not reach."""
    prose = FROM_IMPORT.sub("", PAGES[page])
    for dotted in sorted(set(re.findall(r"\btextmill(?:\.\w+)+", prose))):
        parts = dotted.split(".")
        if parts[-1] in ("py", "md", "json", "yaml"):  # a file name, not a Python name
            continue
        for i in range(len(parts), 1, -1):  # import the longest module prefix, as `import textmill.synth` would
            try:
                importlib.import_module(".".join(parts[:i]))
                break
            except ImportError:
                continue
        obj = textmill
        for part in parts[1:]:
            assert hasattr(obj, part), f"{page}: {dotted}: {part!r} is not an attribute of {obj!r}"
            obj = getattr(obj, part)


def _options(command) -> set[str]:
    return {name for p in command.params if p.param_type_name == "option" for name in [*p.opts, *p.secondary_opts]}


@pytest.mark.parametrize("page", ids)
def test_every_command_shown_exists_with_the_options_given(page):
    root = typer.main.get_command(app)
    for line in shell_commands(PAGES[page]):
        words = shlex.split(line.replace("...", "x"))[1:]
        command = root
        while hasattr(command, "commands") and words and words[0] in command.commands:
            command = command.commands[words.pop(0)]
        assert not hasattr(command, "commands"), f"{page}: `{line}` names no command"
        allowed = _options(command)
        for word in words:
            flag = word.split("=", 1)[0]
            if flag.startswith("-") and flag != "-":
                assert flag in allowed, f"{page}: `{line}`: {flag} is not an option of `textmill {command.name}`"


@pytest.mark.parametrize("page", ids)
def test_the_files_and_pages_a_page_points_to_exist(page):
    base = (ROOT / page).parent
    for target in re.findall(r"\]\(([^)#:]+)\)", PAGES[page]):  # markdown links to local files
        assert (base / target).exists(), f"{page}: link to {target}"
    for config in re.findall(r"\bconfigs/[\w/]+\.yaml\b", PAGES[page]):
        assert (ROOT / config).is_file(), f"{page}: {config}"


def test_the_decoding_page_lists_every_decoding_option():
    from textmill.decoding import GenerationOptions

    page = PAGES["docs/decoding.md"]
    missing = [name for name in GenerationOptions.model_fields if f"| `{name}` |" not in page]
    assert not missing, f"docs/decoding.md lists no row for {missing}"


def test_the_synth_page_lists_each_generators_options():
    from textmill.synth.generators import GENERATORS

    page = PAGES["docs/synth.md"]
    for name in GENERATORS.names():
        options = ", ".join(f"`{k}`" for k in GENERATORS.get(name).Options.model_fields) or "none"
        assert f"| `{name}` | {options} |" in page, f"docs/synth.md: the options of generator {name!r}"


def test_ci_runs_the_readme_install_and_test_commands():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    install = re.search(r"```bash\n(pip install -e .*quickstart)\n```", README)
    assert install, "the README's install-and-quickstart command"
    steps = install.group(1).split(" && ")
    assert len(steps) == 3 and "\n" + "\n".join(steps) + "\n" in ci  # one a line, so that `set -e` stops on a failure
    assert "```bash\npython -m pytest -q\n```" in README and "\npython -m pytest -q\n" in ci
    assert '```bash\npython -m pytest -q -m "not slow"\n```' in README
