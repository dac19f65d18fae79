"""The `gptkit` command group: every subcommand registers on ``cli``; errors become one line."""

from __future__ import annotations

import logging
import os
import re
import sys

import click

from gptkit.errors import GptkitError, RankError

_SURROGATE = re.compile("[\ud800-\udfff]")  # the only text that cannot be written as UTF-8


class Group(click.Group):
    """Turns GptkitError into a one-line message and exit status 2, never a traceback."""

    def parse_args(self, ctx, args):
        """Refuses an argument that is not UTF-8 before any command reads it: Python passes such bytes on
        as lone surrogates, which fail wherever the text is later encoded (a prompt, a file written)."""
        for i, arg in enumerate(args):
            if _SURROGATE.search(arg):
                after = f" (after {_escaped(args[i - 1])})" if i else ""
                click.echo(f"error: argument {i + 1} '{_escaped(arg)}'{after} is not valid UTF-8; give it as UTF-8 text",
                           err=True)
                ctx.exit(2)
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GptkitError as e:
            if isinstance(e, RankError) or _main_process():
                click.echo(f"error: {e}", err=True)
            ctx.exit(2)
        except OSError as e:  # a path that cannot be read or written: name it, no traceback
            where = f": {e.filename}" if e.filename else ""
            click.echo(f"error: {e.strerror or e}{where}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            if _main_process():
                click.echo("\ninterrupted", err=True)
            ctx.exit(130)


def _escaped(arg: str) -> str:
    """``arg`` printable: a byte Python could not decode (U+DC80..U+DCFF) as the \\xNN the user typed."""
    return _SURROGATE.sub(lambda m: _escape(ord(m[0])), arg)


def _escape(code: int) -> str:
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def _main_process() -> bool:
    """Not a second or later process of a torchrun job: those meet the same errors as rank 0, which speaks."""
    return os.environ.get("RANK", "0") == "0"


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="gptkit")
def cli() -> None:
    """gptkit: pretrain, sample from and inspect GPT-family models.

    Run `gptkit pretrain` with no arguments to train a small model on the bundled Shakespeare.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    logging.getLogger("gptkit").setLevel(logging.INFO)  # our own notes; other libraries' only from warnings up
