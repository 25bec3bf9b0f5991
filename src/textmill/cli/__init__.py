"""The `textmill` command line: train | generate | summarize | transfer | eval | compare | synth | serve | humaneval | redact | audit |
import | export | info | arpa | quickstart.

Only this package prints. Errors a user can cause print one clear line and exit with status 2.
"""

from . import runs, content, exchange, synth, serve, safety  # noqa: F401, I001  (each registers its commands, in this order)
from .common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
