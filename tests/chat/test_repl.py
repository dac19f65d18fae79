"""The chat REPL: in process for the commands, and the real `gptkit chat` in a pseudo-terminal."""

import codecs
import contextlib
import io
import os
import pty
import re
import select
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

import gptkit
from gptkit.chat import Chatbot, ChatConfig
from gptkit.chat.repl import Repl
from gptkit.inference import SamplingConfig

ROOT = Path(__file__).parents[2]


def scripted(lines: list[str]):
    """An input() that types ``lines`` and then Ctrl-D (EOFError)."""
    queue = list(lines)

    def read(prompt: str) -> str:
        if not queue:
            raise EOFError
        return queue.pop(0)
    return read


def test_commands_reset_save_and_quit(chat_models, tmp_path):
    model, tokenizer = gptkit.load(chat_models[0])
    out = io.StringIO()
    bot = Chatbot(model, tokenizer)
    transcript = tmp_path / "t.txt"
    Repl(bot, out=out, read=scripted(["Good morrow", "/reset", "你好", "/nope", f"/save {transcript}",
                                      "/quit", "never read"])).run()
    text = out.getvalue()
    assert "(history cleared)" in text and "unknown command /nope" in text and text.endswith("bye\n")
    lines = transcript.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "you: Good morrow" and lines[1].startswith("bot: ")
    assert lines[2] == "--- reset ---" and lines[3] == "you: 你好" and len(lines) == 5
    assert bot.history[0] == "你好"  # the reset dropped the first exchange


def test_a_message_too_long_for_the_context_is_said_and_the_chat_goes_on(chat_models, tmp_path):
    model, tokenizer = gptkit.load(chat_models[0])
    bot = Chatbot(model, tokenizer, ChatConfig(sampling=SamplingConfig(max_new_tokens=8, seed=0)))
    out = io.StringIO()
    too_long = "to be or not to be " * model.config.block_size
    Repl(bot, out=out, read=scripted(["Good morrow", too_long, "Good night", f"/save {tmp_path / 't.txt'}"])).run()
    assert "(the latest message alone makes a prompt of" in out.getvalue() and "shorten the message)" in out.getvalue()
    assert bot.history[0] == "Good morrow" and bot.history[2] == "Good night" and len(bot.history) == 4  # never kept
    lines = (tmp_path / "t.txt").read_text(encoding="utf-8").splitlines()
    assert [line.split(":")[0] for line in lines] == ["you", "bot", "you", "bot"] and lines[2] == "you: Good night"


def test_a_reply_is_shortened_to_the_room_its_prompt_leaves(chat_models):
    model, tokenizer = gptkit.load(chat_models[0])
    block = model.config.block_size
    bot = Chatbot(model, tokenizer, ChatConfig(sampling=SamplingConfig(max_new_tokens=block, seed=0)))
    assert bot._sampling([0] * (block - 3)).max_new_tokens == 3  # as the server does: the reply gives way
    assert bot._sampling([0] * 5).max_new_tokens == block - 5


def test_ctrl_c_ends_the_session_cleanly(chat_models):
    def interrupted(prompt: str) -> str:
        raise KeyboardInterrupt
    out = io.StringIO()
    Repl(Chatbot(*gptkit.load(chat_models[0])), out=out, read=interrupted).run()
    assert out.getvalue().endswith("\nbye\n")


class InterruptedMidReply(Chatbot):
    def reply(self, text):
        yield "Good"
        raise KeyboardInterrupt  # what a Ctrl-C (SIGINT) does to the decoding loop


def test_ctrl_c_while_a_reply_streams_ends_the_session_cleanly(chat_models):
    out = io.StringIO()
    Repl(InterruptedMidReply(*gptkit.load(chat_models[0])), out=out, read=scripted(["Hello"])).run()
    assert out.getvalue().endswith("bot> Good\nbye\n")


class TerminalOutput(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_mmi_shows_a_sign_on_a_terminal_while_it_ranks_then_the_reply_in_its_place(chat_models):
    out, shown = TerminalOutput(), []

    class Watched(Chatbot):
        def reply(self, text):
            shown.append(out.getvalue())  # what the terminal shows while the samples are drawn and ranked
            yield from super().reply(text)

    (forward, tokenizer), backward = (gptkit.load(run) for run in chat_models)
    cfg = ChatConfig(SamplingConfig(max_new_tokens=8, seed=0), num_hypotheses=2)
    bot = Watched(forward, tokenizer, cfg, backward)
    Repl(bot, out=out, read=scripted(["Good morrow"])).run()
    sign = "bot> (sampling and ranking 2 replies...)"
    assert shown[0].endswith(sign)
    reply = bot.hypotheses[0].text if bot.hypotheses else ""
    assert f"{sign}\r\x1b[Kbot> {reply}\n" in out.getvalue()

    piped = io.StringIO()
    Repl(Chatbot(forward, tokenizer, cfg, backward), out=piped, read=scripted(["Good morrow"])).run()
    assert "ranking" not in piped.getvalue() and "\x1b" not in piped.getvalue()


# The prompt as a terminal shows it: prompt_toolkit draws the trailing space as a cursor movement.
PROMPT = "you>"
NOTE_LINE = "note: not in this model's vocabulary (read as unknown): 吗"
CONTROL_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
CURSOR_POSITION_REQUEST = "\x1b[6n"


class Terminal:
    """`gptkit chat` on a pseudo-terminal, read and typed into like a user would: its control sequences
    are dropped from what it shows, and it answers where the cursor is. The chat is `python -m gptkit`,
    or ``main`` called in a forked copy of this process when given (no interpreter to start)."""

    def __init__(self, *args: str, term: str = "xterm-256color", main: Callable[[], None] | None = None):
        env = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": term}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the chat, its terminal the pty
            if main is None:
                os.execve(sys.executable, [sys.executable, "-m", "gptkit", "chat", *args], {**os.environ, **env})
            os.environ.update(env)
            sys.argv = ["gptkit", "chat", *args]
            os._exit(exit_code(main))
        self.output = ""
        # A UTF-8 character can arrive split across two reads: decode incrementally, not per read.
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def expect(self, text: str, timeout: float = 60) -> str:
        """Everything shown until ``text`` appears (consumed)."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                pytest.fail(f"timed out waiting for {text!r}; the terminal shows:\n{self.output}")
            try:
                self.output += self.decoder.decode(os.read(self.fd, 4096))
            except OSError:  # the child exited
                pytest.fail(f"the chat exited before printing {text!r}:\n{self.output}")
            for _ in range(self.output.count(CURSOR_POSITION_REQUEST)):
                self.type("\x1b[1;1R")  # top left (a sequence cut across reads completes on a later one)
            self.output = CONTROL_SEQUENCE.sub("", self.output)
        before, _, self.output = self.output.partition(text)
        return before

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode("utf-8"))

    def exit_status(self) -> int:
        """Waits for the chat to exit; what it printed meanwhile is added to ``output``."""
        with contextlib.suppress(OSError):  # EIO once the child has exited
            while chunk := os.read(self.fd, 4096):
                self.output += self.decoder.decode(chunk)
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def exit_code(main: Callable[[], None]) -> int:
    """The status a process running ``main`` would exit with (click's main always raises SystemExit)."""
    try:
        main()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else int(e.code is not None)
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


@pytest.mark.slow
def test_chat_in_a_terminal_streams_replies_to_english_and_chinese_and_exits_on_ctrl_d(chat_models, tmp_path):
    transcript = tmp_path / "chat.txt"
    term = Terminal("--model", str(chat_models[0]), "--seed", "0", "--max-new-tokens", "12")
    term.expect(PROMPT)
    term.type("你好吗？\r")  # 吗 is outside the vocabulary: a note on a line of its own, before the reply's
    assert term.expect("bot> ").replace("\r", "").endswith(f"你好吗？\n{NOTE_LINE}\n")
    assert "vocabulary" not in term.expect(PROMPT)
    replies = []
    for turn in ("Good morrow, my lord.", "你好，今天天气怎么样？", "What news?"):
        term.type(turn + "\r")
        assert turn in term.expect("bot> ")  # the terminal echoes what was typed
        replies.append(term.expect(PROMPT).strip())
    term.type("\x1b[A\r")  # the up arrow recalls the last line
    assert "What news?" in term.expect("bot> ")
    term.expect(PROMPT)
    term.type(f"/save {transcript}\r")
    # The line as typed is redrawn after its prompt, so wait for the command's answer first: a Ctrl-D
    # typed before the next prompt is up would reach the terminal, not the chat.
    term.expect("transcript saved")
    term.expect(PROMPT)
    term.type("\x04")  # Ctrl-D on an empty line
    rest = term.expect("bye")
    assert term.exit_status() == 0
    assert "Traceback" not in rest + term.output and "Error" not in rest + term.output
    assert "WARNING" not in rest + term.output  # the unknown character was told once, in the note
    lines = transcript.read_text(encoding="utf-8").splitlines()[2:]  # after the exchange about 你好吗？
    assert lines[:6:2] == ["you: Good morrow, my lord.", "you: 你好，今天天气怎么样？", "you: What news?"]
    assert [line.removeprefix("bot: ").strip() for line in lines[1:6:2]] == replies
    assert lines[6] == "you: What news?" and len(lines) == 8


def press_ctrl_c_at_once(model: str, tries: int) -> None:
    """``tries`` fresh chats on a full and on a dumb terminal (whose prompt prints before prompt_toolkit
    is in raw mode), each sent Ctrl-C with no pause the moment the prompt shows. (With readline's
    input(), a SIGINT between the prompt and its select() was lost and the chat hung, in a few tries
    in ten.) Run in an interpreter of its own, as forking pytest's, with its threads, is unsafe: it
    loads the chat's modules once and forks a chat per try."""
    import prompt_toolkit  # noqa: F401  (the chat's line editor)

    from gptkit.cli.main import main

    gptkit.load(model)
    for term in ("xterm-256color", "dumb"):
        for _ in range(tries):
            chat = Terminal("--model", model, term=term, main=main)
            chat.expect(PROMPT)
            ctrl_c_ends(chat)


def ctrl_c_ends(chat: Terminal) -> None:
    chat.type("\x03")
    rest = chat.expect("bye")
    assert chat.exit_status() == 0 and "Traceback" not in rest + chat.output, rest + chat.output


@pytest.mark.slow
def test_ctrl_c_at_once_always_ends_the_chat_cleanly(chat_models):
    call = f"from tests.chat.test_repl import press_ctrl_c_at_once; press_ctrl_c_at_once({str(chat_models[0])!r}, tries=5)"
    result = subprocess.run([sys.executable, "-c", call], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr



def test_characters_outside_the_vocabulary_are_a_note_before_the_reply_once(chat_models):
    out = io.StringIO()
    bot = Chatbot(*gptkit.load(chat_models[0]), ChatConfig(SamplingConfig(max_new_tokens=4, seed=0)))
    Repl(bot, out=out, read=scripted(["你好吗？", "吗"])).run()
    lines = out.getvalue().splitlines()
    assert lines[1] == NOTE_LINE and lines[2].startswith("bot> ")  # its own line, before the bot's
    assert sum("vocabulary" in line for line in lines) == 1  # the second "吗" is not reported again
