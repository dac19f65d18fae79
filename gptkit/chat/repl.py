"""The interactive chat loop: line editing and history on a terminal, replies streamed as they are
decoded, and a clean exit on Ctrl-D, Ctrl-C or /quit (never a traceback)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from gptkit.chat.bot import Chatbot
from gptkit.errors import GptkitError
from gptkit.tokenizer.base import unknown_note

HELP = "Type a message. /reset clears the history, /save FILE writes the transcript, /quit or Ctrl-D exits."
USER, BOT, NOTE = "you> ", "bot> ", "note: "
CLEAR_LINE = "\r\x1b[K"  # back to the start of the line, and erase it


def line_reader() -> Callable[[str], str]:
    """prompt_toolkit's line editor on a terminal, plain input() otherwise (a pipe, a file).

    Not input() with readline: CPython prints readline's prompt before it waits in select(), and a
    Ctrl-C (SIGINT) in between was only noticed at the next key. Here the terminal sends no SIGINT
    while a line is read: Ctrl-C stays a key press, which prompt_toolkit turns into KeyboardInterrupt
    (Ctrl-D on an empty line into EOFError), whenever it comes. While a reply is generated, Ctrl-C is
    a SIGINT again and interrupts it.
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # Piped bytes that are not UTF-8: replaced, not a UnicodeDecodeError.
        with contextlib.suppress(AttributeError, ValueError):
            sys.stdin.reconfigure(errors="replace")
        return input
    from prompt_toolkit import PromptSession

    session = PromptSession(enable_suspend=True)  # history: the arrow keys recall lines; Ctrl-Z suspends

    def read(prompt: str) -> str:
        with _ctrl_c_as_a_key(sys.stdin.fileno()):
            line = session.prompt(prompt)
        # Bytes that are not UTF-8 (a half-erased character) arrive surrogate-escaped: replace them.
        return line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return read


@contextlib.contextmanager
def _ctrl_c_as_a_key(fd: int) -> Iterator[None]:
    """The terminal's signal keys off (ISIG) meanwhile, already before prompt_toolkit's raw mode (a dumb
    terminal shows the prompt before it): a Ctrl-C is never a SIGINT landing in the middle of its setup."""
    try:
        import termios
    except ImportError:  # Windows: the console reports Ctrl-C to prompt_toolkit as a key already
        yield
        return
    saved = termios.tcgetattr(fd)
    quiet = [*saved[:3], saved[3] & ~termios.ISIG, *saved[4:]]
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


class Repl:
    def __init__(self, bot: Chatbot, verbose: bool = False, out: TextIO | None = None,
                 read: Callable[[str], str] | None = None):
        """``read`` gets a line after showing its prompt (default: the terminal's line editor)."""
        self.bot, self.verbose, self.read = bot, verbose, read
        self.out = out or sys.stdout
        self.transcript: list[str] = []

    def say(self, text: str = "", end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()

    def run(self) -> None:
        read = self.read or line_reader()
        self.say(HELP)
        try:  # Ctrl-C at the prompt or while a reply is generated ends the chat the same way
            while self.step(read(USER)):
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
        unknown = self.bot.new_unknown(text)
        if unknown:  # a line of its own before the reply: what the model cannot read, not the bot's words
            self.say(f"{NOTE}{unknown_note(unknown)}")
        waiting = self.waiting_sign()
        self.say(BOT + waiting, end="")
        try:
            for piece in self.bot.reply(text):
                if waiting:  # the reply is here: the sign gives way to it
                    self.say(CLEAR_LINE + BOT, end="")
                    waiting = ""
                self.say(piece, end="")
        except GptkitError as e:  # a message too long for the model: say so, and the chat goes on without it
            self.say((CLEAR_LINE + BOT if waiting else "") + f"({e})")
            return
        self.say()
        self.transcript += [f"you: {self.bot.history[-2]}", f"bot: {self.bot.history[-1]}"]
        if self.verbose:
            for h in self.bot.hypotheses:
                self.say(f"    backward {h.backward:8.2f}  forward {h.forward:8.2f}  {h.text}")

    def waiting_sign(self) -> str:
        """With MMI nothing shows until every sample is ranked (seconds on a CPU): a terminal says why
        meanwhile. A pipe gets no sign, to keep its transcript clean."""
        if self.bot.backward is None or not self.out.isatty():
            return ""
        return f"(sampling and ranking {self.bot.cfg.num_hypotheses} replies...)"

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
