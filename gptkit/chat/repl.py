"""The interactive chat loop: line editing where readline exists, replies streamed as they are
decoded, and a clean exit on Ctrl-D, Ctrl-C or /quit (never a traceback)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from gptkit.chat.bot import Chatbot

HELP = "Type a message. /reset clears the history, /save FILE writes the transcript, /quit or Ctrl-D exits."
USER, BOT = "you> ", "bot> "


def _enable_line_editing() -> None:
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (importing it gives input() history and editing)
    # A terminal can send bytes that are not UTF-8 (a half-erased character): replace, don't crash.
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdin.reconfigure(errors="replace")


class Repl:
    def __init__(self, bot: Chatbot, verbose: bool = False, out: TextIO | None = None,
                 read: Callable[[str], str] = input):
        self.bot, self.verbose, self.read = bot, verbose, read
        self.out = out or sys.stdout
        self.transcript: list[str] = []

    def say(self, text: str = "", end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()

    def run(self) -> None:
        if self.read is input:
            _enable_line_editing()
        self.say(HELP)
        try:
            while self.step(self.read(USER)):
                pass
        except (EOFError, KeyboardInterrupt):
            self.say()
        self.say("bye")

    def step(self, line: str) -> bool:
        """Handle one input line; False when the user asked to quit."""
        text = line.strip()
        if text in ("/quit", "/exit"):
            return False
        if text == "/reset":
            self.bot.reset()
            self.transcript.append("--- reset ---")
            self.say("(history cleared)")
        elif text.startswith("/save"):
            self.save(text[len("/save"):].strip())
        elif text.startswith("/"):
            self.say(f"unknown command {text.split()[0]}. {HELP}")
        elif text:
            self.respond(text)
        return True

    def respond(self, text: str) -> None:
        self.transcript.append(f"you: {' '.join(text.split())}")
        self.say(BOT, end="")
        for piece in self.bot.reply(text):
            self.say(piece, end="")
        self.say()
        self.transcript.append(f"bot: {self.bot.history[-1]}")
        if self.verbose:
            for h in self.bot.hypotheses:
                self.say(f"    backward {h.backward:8.2f}  forward {h.forward:8.2f}  {h.text}")

    def save(self, name: str) -> None:
        if not name:
            self.say("usage: /save FILE")
            return
        try:
            Path(name).write_text("\n".join(self.transcript) + "\n", encoding="utf-8")
        except OSError as e:
            self.say(f"cannot write {name}: {e.strerror}")
            return
        self.say(f"(transcript saved to {name})")
