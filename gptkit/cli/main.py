"""The `gptkit` command: parse flags, call the library, print. No logic the Python API lacks.

Each capability's commands live in their own module and register on the group when imported.
"""

from gptkit.cli import chat, convert, corpus, data, eval, finetune, generate, info, serve, train  # noqa: F401  (registration)
from gptkit.cli.group import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="gptkit")
