"""Every example in README.md and docs/*.md runs as written, in a real shell (issues 15 and 23):
examples are what people copy first, and one that fails costs more trust than a missing feature.

Each document runs as one `bash` script, in a fresh directory laid out as a checkout after
`make demo`: the repository's tracked files (symlinked), `.venv` (a symlink to the real one) and
`runs/shakespeare`, the demo model (the default job, trained for 2 steps here). PATH is the test's
own without the venv's bin, as in a new terminal, so only the README's activation line
(`source .venv/bin/activate`), run first in every document's script, puts `gptkit` and the venv's
`python` on it: a document that needs an unactivated venv, or a file the checkout lacks, fails.

The script holds the document's ```bash lines (`\\` continuations joined, a trailing `# comment`
dropped, heredocs whole) and its ```python blocks (as `python - <<'EOF'`), in the document's order,
under `set -e`; before each it echoes `### document:line`, which names the line that failed. A
```yaml block whose first line is `# NAME.yaml` is written to NAME.yaml first. What the harness
changes, all defined in the script before the document's lines:

- `gptkit` is a bash function. Unless PATH finds `gptkit` in the venv it fails as bash would
  (status 127); else it appends the flags of SHRINK for the subcommand (click keeps the last value
  of a repeated option, so they override the document's own: fewer steps, smaller batches, training
  windows of 8 tokens, only short dialogues, `--limit 2`, 5 new tokens; never a model's shape) and
  runs the entry point, `gptkit.cli.main:main`, in a process forked from a server that imported
  PyTorch and gptkit once: each command keeps its own stdin, stdout, stderr, directory, environment
  and exit status, and fifty commands do not spend minutes importing torch. `gptkit chat` reads
  CHAT_INPUT on stdin.
- `timeout ... gptkit ...` (a run the document interrupts) lets it finish; `torchrun ... -m gptkit
  ...` runs the same command as one process.
- OMP_NUM_THREADS=1 (tests/conftest.py): the models are tiny, and two documents run at once.

Python blocks and `python -c` / `python -` lines run as the reader's do: a fresh `python`, the
venv's once activated, in the same directory.

Not run, only checked in the test's process:

- a line whose comment says `needs:` (or `make demo`, which made the directory) uses something
  the reader brings (their files, published weights, GPUs): its `gptkit` subcommand and flags are
  parsed by click, so a renamed or unknown flag still fails. A ```python block with a `# needs:`
  line is only compiled.
- `python script.py ...` and `bash script.sh` name a benchmark that takes minutes: the script must
  exist and spell out each `--flag` given to it.
- make, pip, hf, `python -m ...` (venv, pytest) set up the machine; they are skipped.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from gptkit.cli.main import cli

REPO = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))]
TRAIN = ("--max-steps", "2", "--batch-size", "2", "--quiet")
SHRINK = {
    ("pretrain",): (*TRAIN, "--block-size", "8", "--eval-batches", "1", "--sample-tokens", "0"),
    ("dialogue", "train"): (*TRAIN, "--max-words", "8"),  # a few hundred short pairs of the bundled dialogues
    ("finetune",): TRAIN,
    ("generate",): ("--max-new-tokens", "5"),
    ("chat",): ("--max-new-tokens", "5", "--num-hypotheses", "2"),
    ("eval", "task"): ("--limit", "2", "--quiet"),
    ("eval", "perplexity"): ("--quiet",),
    ("prepare",): ("--quiet",),
}
CHAT_INPUT = "Good morrow, my lord."  # one turn, then end of input: the chat says bye
# (document, first line) of ```python blocks that need what the reader brings but carry no `# needs:` line
SKIPPED = {"make", "pip", "hf"}  # the reader's set-up: installs and downloads
BOUND_S = 300  # one document's script, generous for a loaded machine
FENCE = re.compile(r"\s*```(\w*)")
COMMENT = re.compile(r"(?:^|\s)#\s.*$")  # `# ...` after a space; `#` inside a word or a quoted prompt stays
HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?")
ASSIGN = re.compile(r"\w+=")  # `T=...`: a variable the lines after it use
ACTIVATE = re.compile(r"(?:source|\.) \.venv/bin/activate")
VENV_BIN = Path(sys.executable).parent
# imported once by the server that `gptkit` commands are forked from
PRELOAD = ("torch", "torch._dynamo", "matplotlib.figure", "gptkit.cli.main", "gptkit.checkpoint", "gptkit.inference", "gptkit.train.plot",
           "gptkit.train.pretrain", "gptkit.chat", "gptkit.finetune", "gptkit.eval")
# `gptkit ARGS` in the script: hands its argv, directory, environment and stdio to the server, exits with the status
CLIENT = """import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
request = {"argv": sys.argv[2:], "cwd": os.getcwd(), "env": dict(os.environ)}
socket.send_fds(s, [json.dumps(request).encode()], [0, 1, 2])
status = s.recv(1)
sys.exit(status[0] if status else 1)
"""


@dataclass
class Example:
    where: str  # document:line
    text: str  # the command, continuations joined, without its comment; a heredoc's body follows it
    comment: str = ""
    program: str = ""  # the command's name, after `timeout` or `torchrun ... -m`

    @property
    def args(self) -> list[str]:
        """The words after the program (for `gptkit` lines: the subcommand and its flags)."""
        argv = shlex.split(self.text.split("\n", 1)[0])
        if argv[0] == "torchrun":
            return argv[argv.index("-m") + 2:]
        return argv[argv.index(next(a for a in argv if Path(a).name == self.program)) + 1:]


@dataclass
class PythonBlock:
    where: str
    code: str


def blocks(doc: str) -> Iterator[tuple[str, int, list[str]]]:
    """(language, line number of the first line, lines) of each fenced block of a document."""
    lang, start, body = None, 0, []
    for number, line in enumerate((REPO / doc).read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if fence and lang is None:
            lang, start, body = fence.group(1), number + 1, []
        elif fence:
            yield lang, start, body
            lang = None
        elif lang is not None:
            body.append(line)


def program(text: str) -> str:
    """The program a line runs: `timeout -s KILL 8 gptkit ...` and `torchrun ... -m gptkit ...` run gptkit."""
    if ASSIGN.match(text):
        return "assign"
    argv = shlex.split(text.split("\n", 1)[0])
    if argv[0] == "timeout" and "gptkit" in argv:
        return "gptkit"
    if argv[0] == "torchrun":
        return argv[argv.index("-m") + 1]
    return Path(argv[0]).name


def shell_examples(lines: list[str], doc: str, start: int) -> Iterator[Example]:
    i = 0
    while i < len(lines):
        where, text = f"{doc}:{start + i}", lines[i].strip()
        i += 1
        while text.endswith("\\"):
            text, i = text[:-1] + " " + lines[i].strip(), i + 1
        comment = COMMENT.search(text)
        example = Example(where, text[:comment.start()].strip() if comment else text,
                          comment.group(0).strip() if comment else "")
        if heredoc := HEREDOC.search(example.text):
            end = [line.strip() for line in lines].index(heredoc.group(1), i)
            example.text, i = "\n".join([example.text, *lines[i:end + 1]]), end + 1
        if example.text:
            example.program = program(example.text)
            yield example


def steps(doc: str) -> Iterator[Example | PythonBlock]:
    """The document's shell lines and Python blocks, in order."""
    for lang, start, lines in blocks(doc):
        if lang == "bash":
            yield from shell_examples(lines, doc, start)
        elif lang == "python":
            yield PythonBlock(f"{doc}:{start}", "\n".join(lines))


def example_files(doc: str) -> dict[str, str]:
    """The ```yaml blocks that begin with `# NAME.yaml`, by NAME.yaml."""
    files = {}
    for lang, _, lines in blocks(doc):
        name = re.match(r"#\s*([\w.-]+\.ya?ml)\b", lines[0]) if lang == "yaml" and lines else None
        if name:
            files[name.group(1)] = "\n".join(lines) + "\n"
    return files


def activation() -> str:
    """The README's line that puts the venv on PATH: every document's script starts with it."""
    lines = [e.text for e in steps("README.md") if isinstance(e, Example) and ACTIVATE.fullmatch(e.text)]
    assert len(lines) == 1, "README.md must say once, in a ```bash block, how to activate .venv"
    return lines[0]


def resolve(args: list[str], where: str) -> tuple[tuple[str, ...], click.Command]:
    """The subcommand the arguments name (`eval task ...` -> ("eval", "task")) and its click command."""
    path: tuple[str, ...] = ()
    command: click.Command = cli
    while isinstance(command, click.Group):
        name = args[len(path)] if len(args) > len(path) else "(none)"
        if name not in command.commands:
            pytest.fail(f"{where}: gptkit {' '.join(path)} has no subcommand {name}")
        command, path = command.commands[name], (*path, name)
    return path, command


def check_flags(args: list[str], where: str) -> None:
    """Parse as click would, without running: unknown flags, bad choices and missing options fail."""
    path, command = resolve(args, where)
    try:
        command.make_context(f"gptkit {' '.join(path)}", args[len(path):])
    except click.BadParameter as e:  # a file the reader brings may be absent here; anything else fails
        if isinstance(e, click.MissingParameter) or not isinstance(getattr(e.param, "type", None), click.Path):
            pytest.fail(f"{where}: {e.format_message()}")
    except click.UsageError as e:
        pytest.fail(f"{where}: {e.format_message()}")


def check_script(args: list[str], where: str) -> None:
    """The script exists and defines every flag the example gives it (benchmarks take minutes: not run)."""
    script, *flags = args
    assert (REPO / script).is_file(), f"{where}: no script {script}"
    source = (REPO / script).read_text(encoding="utf-8")
    unknown = [a for a in flags if a.startswith("--") and f'"{a}"' not in source]
    assert not unknown, f"{where}: {script} has no flag {', '.join(unknown)}"


def runs(example: Example) -> bool:
    """Whether the line goes into the script; the others are checked here or skipped."""
    if ACTIVATE.fullmatch(example.text) or example.program == "assign":
        return True
    if "needs:" in example.comment or "# make demo" in example.comment:
        if example.program == "gptkit":
            check_flags(example.args, example.where)
        return False
    if example.program == "gptkit":
        return True
    if example.program in ("python", "python3", "bash") and example.args[:1] and \
            example.args[0].endswith((".py", ".sh")):
        check_script(example.args, example.where)
        return False
    if example.program in ("python", "python3") and example.args[:1] in (["-"], ["-c"]):
        return True
    assert example.program in SKIPPED or example.args[:1] == ["-m"], \
        f"{example.where}: `{example.text}` is neither gptkit nor a known tool"
    return False


def python_runs(block: PythonBlock, doc: str) -> bool:
    """A block that needs what the reader brings is only compiled."""
    needs = "# needs:" in block.code
    if needs:
        compile(block.code, block.where, "exec")
    return not needs


def prelude(server: Path) -> str:
    """The bash functions that shrink the work (see the module's docstring)."""
    cases = "\n".join(f"    {'/'.join(path) if len(path) == 2 else path[0] + '/*'}) shrink=({shlex.join(flags)});;"
                      for path, flags in SHRINK.items())
    return f"""set -e
gptkit() {{
  local shrink=()
  case "$1/${{2-}}" in
{cases}
  esac
  [ "$(type -P gptkit)" = {shlex.quote(str(VENV_BIN / "gptkit"))} ] || {{ echo "gptkit: command not found" >&2; return 127; }}
  local run=({shlex.quote(sys.executable)} -S -c {shlex.quote(CLIENT)} {shlex.quote(str(server))} "$@" "${{shrink[@]}}")
  if [ "$1" = chat ]; then "${{run[@]}}" <<< {shlex.quote(CHAT_INPUT)}; else "${{run[@]}}"; fi
}}
timeout() {{ while [[ $1 == -* ]]; do [[ $1 == -[sk] ]] && shift; shift; done; shift; "$@"; }}
torchrun() {{ while [ "$1" != -m ]; do shift; done; shift 2; gptkit "$@"; }}
"""


def script(doc: str, server: Path) -> str:
    """The document as one bash script; lines that do not run are checked on the way."""
    lines = [prelude(server)] + ([] if doc == "README.md" else [activation()])
    for step in steps(doc):
        if isinstance(step, PythonBlock) and python_runs(step, doc):
            lines += [f"echo {shlex.quote(f'### {step.where}: python')}",
                      f"python - <<'PYTHON_BLOCK'\n{step.code}\nPYTHON_BLOCK"]
        elif isinstance(step, Example) and runs(step):
            lines += [f"echo {shlex.quote(f'### {step.where}: ' + step.text.splitlines()[0])}", step.text]
    return "\n".join(lines) + "\n"


def new_terminal_env() -> dict[str, str]:
    """This process's environment as a new terminal has it: no venv on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != VENV_BIN)
    return env


def checkout(where: Path, demo: Path) -> Path:
    """A fresh checkout after `make demo`: the tracked files, .venv and runs/shakespeare."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    where.mkdir(parents=True)
    for name in {line.split("/", 1)[0] for line in tracked.splitlines()} | {".venv"}:
        (where / name).symlink_to(REPO / name)
    shutil.copytree(demo, where / "runs" / "shakespeare")
    return where


def run_script(text: str, cwd: Path) -> subprocess.CompletedProcess:
    (cwd / ".docs-test.sh").write_text(text, encoding="utf-8")
    return subprocess.run(["bash", ".docs-test.sh"], cwd=cwd, env=new_terminal_env(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=BOUND_S)


def serve(path: str) -> None:
    """The server `gptkit` commands are forked from: one child per connection, which runs the
    entry point and sends back its exit status."""
    for module in PRELOAD:
        importlib.import_module(module)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(path + ".tmp")
    server.listen(8)
    os.rename(path + ".tmp", path)  # the socket appears once it accepts
    while True:
        conn, _ = server.accept()
        if os.fork() == 0:  # the child never returns to this loop, whatever fails in it
            status = 1
            try:
                server.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                status = run_command(conn)
            finally:
                os._exit(status)
        conn.close()


def run_command(conn: socket.socket) -> int:
    """In the forked child: become the client's `gptkit` process, run it, report its status."""
    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    request = json.loads(message)
    for fd, theirs in enumerate(fds):
        os.dup2(theirs, fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.stdin, sys.stdout, sys.stderr = (open(fd, mode, closefd=False) for fd, mode in ((0, "r"), (1, "w"), (2, "w")))
    sys.argv = ["gptkit", *request["argv"]]
    try:
        sys.modules["gptkit.cli.main"].main()
        status = 0
    except SystemExit as e:  # sys.exit(message) prints it and exits with 1, as the interpreter does
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
        status = e.code if isinstance(e.code, int) else int(e.code is not None)
    except BaseException:
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    conn.send(bytes([status & 0xFF]))
    return status


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Callable[[], Path]]:
    """Starts the command server; calling the result waits until it listens."""
    path = tmp_path_factory.mktemp("server") / "gptkit.sock"
    proc = subprocess.Popen([sys.executable, __file__, str(path)], start_new_session=True)

    def listening() -> Path:
        deadline = time.monotonic() + 120
        while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert path.exists(), "the gptkit command server did not start"
        return path

    yield listening
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, server) -> Path:
    """`make demo`'s run, shrunk: the default job (shakespeare-char, bundled corpus) for 2 steps,
    with its cache of the tokenized corpus, which later `--out runs/shakespeare` runs reuse. A
    `gptkit pretrain` forked from the command server, like the documents' commands: this process
    does not import what the server has (the compiler AdamW loads, matplotlib) a second time."""
    out = tmp_path_factory.mktemp("demo") / "shakespeare"
    result = subprocess.run([sys.executable, "-S", "-c", CLIENT, str(server()), "pretrain", "--out", str(out),
                             *SHRINK[("pretrain",)]], cwd=out.parent, capture_output=True, text=True, timeout=BOUND_S)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def started(request, tmp_path_factory, server, demo_run) -> Iterator[dict[str, Future]]:
    """Every selected document's script, started at once, two at a time (each is a chain of
    processes that mostly import torch; two documents keep both cores busy)."""
    selected = [item.callspec.params["doc"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_shell_examples_run_as_written"]
    root, listening = tmp_path_factory.mktemp("docs"), server()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {}
        for n, doc in enumerate(selected):
            cwd = checkout(root / str(n), demo_run)
            for name, text in example_files(doc).items():
                (cwd / name).write_text(text, encoding="utf-8")
            futures[doc] = pool.submit(lambda doc, cwd: run_script(script(doc, listening), cwd), doc, cwd)
        yield futures


@pytest.mark.parametrize("doc", DOCS)
def test_shell_examples_run_as_written(doc, started):
    result = started[doc].result()
    if result.returncode != 0:
        markers = [line for line in result.stdout.splitlines() if line.startswith("### ")]
        pytest.fail(f"{markers[-1][4:] if markers else doc} exited with {result.returncode}\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def test_gptkit_is_not_on_path_before_activation(tmp_path):
    result = run_script("gptkit --help\n", tmp_path)
    assert result.returncode == 127, "the docs test's shell must start without the venv on PATH"


@pytest.mark.parametrize("old", [["finetune", "--warmup", "3"], ["chat", "--max-response-tokens", "9"],
                                 ["eval", "task", "--tasks", "a,b"]])
def test_a_renamed_flag_fails_the_check(old):
    with pytest.raises(pytest.fail.Exception, match="No such option"):
        check_flags(old, "scratch.md:1")


if __name__ == "__main__":
    serve(sys.argv[1])
