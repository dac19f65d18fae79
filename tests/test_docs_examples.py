"""Every shell example in README.md and docs/*.md runs as written (issue 15): examples are what
people copy first, and one that fails costs more trust than a missing feature.

The fenced ```bash blocks of each document are read line by line (`\\` continuations joined, a
trailing `# comment` set aside) and run in order in a fresh directory whose `runs/shakespeare` is the
demo model (`make demo`'s run, trained for 2 steps here), so each example may use what the
repository provides, what `make demo` makes and what an earlier example of the same document made:

- `gptkit ...` (also behind `timeout`, which here lets it finish, or `torchrun ... -m gptkit`, which
  here is one process) runs in-process through click's
  CliRunner and must exit with status 0. To keep it fast the test appends the flags of SHRINK for
  that subcommand; click keeps the last value of a repeated option, so these override the
  document's own (fewer steps, smaller batches, training windows of 8 tokens, only short dialogues,
  `--limit 2`, 5 new tokens), and never change a model's shape. Inputs that no flag shrinks are cut
  instead: fine-tuning files are read to their first ROWS rows, and the works of
  `gptkit.data.shakespeare()`, from which examples' Python writes sample files, to their first
  WORK_CHARS characters. A command that only prints (PRINT_ONLY) runs once per session however many
  documents show it.
- A command whose comment says `needs:` uses something the reader must bring (their own files,
  published weights, a GPU): its subcommand and flags are only parsed by click, so a renamed or
  unknown flag still fails.
- Python that makes an example's inputs runs in-process: `NAME=$(python -c "...")` sets $NAME for
  the lines after it, and `python - <<'EOF'` runs the script up to EOF.
- `python script.py ...` and `bash script.sh` must name a script that exists and spells out each
  `--flag` given to it; other programs (make, pip, hf, python -m ..., python -c) are the reader's
  tools and are skipped.
- A ```yaml block whose first line is `# NAME.yaml` is written to NAME.yaml first: the examples of
  that document read it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner

import gptkit.data
from gptkit.cli.main import cli
from gptkit.finetune import data as finetune_data

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
CHAT_INPUT = "Good morrow, my lord.\n"  # one turn, then end of input: the chat says bye
ROWS = 16  # rows read of a fine-tuning file: every label of the bundled sets occurs in their first 10
WORK_CHARS = 5_000
PRINT_ONLY = {("info",), ("eval", "list")}
PRINTED: set[tuple[str, ...]] = set()  # the PRINT_ONLY commands run so far in this session
SKIPPED = {"make", "pip", "hf", "python", "python3", "bash"}  # the reader's tools, unless running a script of ours
FENCE = re.compile(r"\s*```(\w*)")
COMMENT = re.compile(r"(?:^|\s)#\s.*$")  # `# ...` after a space; `#` inside a word or a quoted prompt stays
HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?")
ASSIGN = re.compile(r"(\w+)=\$\((.*)\)")


@dataclass
class Example:
    where: str  # document:line
    text: str  # the command, continuations joined, without its comment
    comment: str = ""
    stdin: str | None = None  # the body of a heredoc


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


def shell_examples(doc: str) -> list[Example]:
    examples = []
    for lang, start, lines in blocks(doc):
        i = 0
        while lang == "bash" and i < len(lines):
            where, text = f"{doc}:{start + i}", lines[i].strip()
            i += 1
            while text.endswith("\\"):
                text, i = text[:-1] + " " + lines[i].strip(), i + 1
            comment = COMMENT.search(text)
            example = Example(where, text[:comment.start()].strip() if comment else text,
                              comment.group(0).strip() if comment else "")
            if heredoc := HEREDOC.search(example.text):
                end = [line.strip() for line in lines].index(heredoc.group(1), i)
                example.text, example.stdin, i = example.text[:heredoc.start()].strip(), "\n".join(lines[i:end]), end + 1
            if example.text:
                examples.append(example)
    return examples


def example_files(doc: str) -> dict[str, str]:
    """The ```yaml blocks that begin with `# NAME.yaml`, by NAME.yaml."""
    files = {}
    for lang, _, lines in blocks(doc):
        name = re.match(r"#\s*([\w.-]+\.ya?ml)\b", lines[0]) if lang == "yaml" and lines else None
        if name:
            files[name.group(1)] = "\n".join(lines) + "\n"
    return files


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


def run_gptkit(args: list[str], example: Example) -> None:
    path, _ = resolve(args, example.where)
    done = "# make demo" in example.comment  # the README's set-up, which made the directory's runs/shakespeare
    if "needs:" in example.comment or tuple(args) in PRINTED or done:
        return check_flags(args, example.where)
    if path in PRINT_ONLY and "--model" not in args:
        PRINTED.add(tuple(args))
    result = CliRunner().invoke(cli, [*args, *SHRINK.get(path, ())], input=CHAT_INPUT if path == ("chat",) else None,
                                prog_name="gptkit")
    if result.exit_code != 0:
        trace = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
        pytest.fail(f"{example.where}: `{example.text}` exited with {result.exit_code}\n{result.output[-3000:]}"
                    f"\n{trace if not isinstance(result.exception, SystemExit) else ''}")


def check_script(script: str, args: list[str], where: str) -> None:
    """The script exists and defines every flag the example gives it (benchmarks take minutes: not run)."""
    assert (REPO / script).is_file(), f"{where}: no script {script}"
    source = (REPO / script).read_text(encoding="utf-8")
    unknown = [a for a in args if a.startswith("--") and f'"{a}"' not in source]
    assert not unknown, f"{where}: {script} has no flag {', '.join(unknown)}"


def run_python(code: str, where: str) -> str:
    """Run Python in-process, as `python -c` or `python -` would, and return what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, where, "exec"), {"__name__": "__main__"})
    return out.getvalue()


def run_example(example: Example, monkeypatch) -> None:
    if assign := ASSIGN.fullmatch(example.text):
        program, flag, code = shlex.split(assign.group(2))
        assert (program, flag) == ("python", "-c"), f"{example.where}: only $(python -c ...) is supported"
        return monkeypatch.setenv(assign.group(1), run_python(code, example.where).strip())
    argv = [os.path.expandvars(a) for a in shlex.split(example.text)]
    if argv[0] == "timeout" and "gptkit" in argv:  # a deliberately interrupted run: here it just runs
        argv = argv[argv.index("gptkit"):]
    program = Path(argv[0]).name
    if program == "torchrun":  # `torchrun [its flags] -m gptkit ...`: here, the same command in one process
        assert argv[argv.index("-m") + 1:][:1] == ["gptkit"], f"{example.where}: torchrun runs `-m gptkit ...` here"
        argv, program = argv[argv.index("-m") + 1:], "gptkit"
    if program == "gptkit":
        run_gptkit(argv[1:], example)
    elif program.startswith("python") and example.stdin is not None and argv[1:] == ["-"]:
        run_python(example.stdin, example.where)
    elif program in ("python", "python3", "bash") and len(argv) > 1 and argv[1].endswith((".py", ".sh")):
        check_script(argv[1], argv[2:], example.where)
    else:
        assert program in SKIPPED, f"{example.where}: `{example.text}` is neither gptkit nor a known tool"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread per matmul: these models are tiny, and on a busy machine a second thread only waits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """`make demo`'s run, shrunk: the default job (shakespeare-char, bundled corpus) for 2 steps,
    with its cache of the tokenized corpus, which later `--out runs/shakespeare` runs reuse."""
    out = tmp_path_factory.mktemp("demo") / "shakespeare"
    result = CliRunner().invoke(cli, ["pretrain", "--out", str(out), *SHRINK[("pretrain",)]])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def workspace(tmp_path, demo_run, monkeypatch) -> Path:
    """A fresh directory after `make demo`: runs/shakespeare is the demo model. Inputs are cut short."""
    shutil.copytree(demo_run, tmp_path / "runs" / "shakespeare")
    monkeypatch.chdir(tmp_path)
    read_rows, works = finetune_data.read_rows, gptkit.data.shakespeare
    monkeypatch.setattr(finetune_data, "read_rows", lambda path: read_rows(path)[:ROWS])
    monkeypatch.setattr(gptkit.data, "shakespeare", lambda: [dict(w, text=w["text"][:WORK_CHARS]) for w in works()])
    return tmp_path


@pytest.mark.parametrize("doc", DOCS)
def test_shell_examples_run_as_written(doc, workspace, monkeypatch):
    for name, text in example_files(doc).items():
        (workspace / name).write_text(text, encoding="utf-8")
    for example in shell_examples(doc):
        run_example(example, monkeypatch)


def test_readme_python_api_runs(workspace):
    (code,) = ["\n".join(lines) for lang, _, lines in blocks("README.md") if lang == "python"]
    run_python(code, "README.md (Python API)")
    assert (workspace / "my-model" / "model.safetensors").is_file()


@pytest.mark.parametrize("old", [["finetune", "--warmup", "3"], ["chat", "--max-response-tokens", "9"],
                                 ["eval", "task", "--tasks", "a,b"]])
def test_a_renamed_flag_fails_the_check(old):
    with pytest.raises(pytest.fail.Exception, match="No such option"):
        check_flags(old, "scratch.md:1")
