"""The README's Python names resolve the way a user would write them, and CI runs the README's commands."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import textmill

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FROM_IMPORT = re.compile(r"from (textmill(?:\.\w+)*) import (\w+)")


def test_from_imports_in_the_readme_resolve():
    found = FROM_IMPORT.findall(README)
    assert found
    for module, name in found:
        assert hasattr(importlib.import_module(module), name), f"from {module} import {name}"


def test_dotted_names_in_the_readme_resolve_by_attribute_access():
    """`textmill.evaluate` is the evaluate function, so `textmill.evaluation.plots.x` fails for a user
    even after `import textmill.evaluation.plots`; the README must not tell them to write it."""
    prose = FROM_IMPORT.sub("", README)
    names = set(re.findall(r"\btextmill(?:\.\w+)+", prose))
    assert "textmill.load" in names
    for dotted in sorted(names):
        parts = dotted.split(".")
        for i in range(len(parts), 1, -1):  # import the longest module prefix, as `import textmill.synth` would
            try:
                importlib.import_module(".".join(parts[:i]))
                break
            except ImportError:
                continue
        obj = textmill
        for part in parts[1:]:
            assert hasattr(obj, part), f"{dotted}: {part!r} is not an attribute of {obj!r}"
            obj = getattr(obj, part)


def test_ci_runs_the_readme_install_and_test_commands():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    install = re.search(r"```bash\n(pip install -e .*quickstart)\n```", README)
    assert install, "the README's install-and-quickstart command"
    steps = install.group(1).split(" && ")
    assert len(steps) == 3 and "\n" + "\n".join(steps) + "\n" in ci  # one a line, so that `set -e` stops on a failure
    assert "```bash\npython -m pytest -q\n```" in README and "\npython -m pytest -q\n" in ci
