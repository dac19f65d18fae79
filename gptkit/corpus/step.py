"""What every step of `gptkit corpus` shares: its output directory, its part of the corpus, resuming,
and the report of what it removed.

A step reads the records of its part in order, decides for each batch which to drop (and why), and
appends the others, unchanged, to ``DIR/part-I-of-N.jsonl`` (``.gz``/``.zst`` if asked). Every
``CHECKPOINT_CHARS`` of text read it makes the output durable and records, in a hidden state file,
how far it has read, the output's length and its counts; run again with the same inputs and
settings, it truncates the output to that length and goes on from there. When the part is done it
writes its report (``report.json`` for a whole corpus, ``report-part-I-of-N.json`` for a part, and
``report.json`` for the whole once every part's is there) and prints one line.

Each part holds a lock of its own (a flock, dropped by the kernel if the process dies), so N
processes or machines write parts of one DIR at once, and a second process on the same part is
refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gptkit.corpus.records import Record, Writer, batches, output_name, read_records
from gptkit.data.plan import Plan, parse_part, plan_inputs
from gptkit.errors import GptkitError
from gptkit.io import read_json, write_text
from gptkit.run_dir import check_output, kind_of

CHECKPOINT_CHARS = 64 << 20
STEPS = ("dedup", "filter", "decontaminate")



@dataclass
class Replace:
    """A verdict that keeps a record as other records (decontaminate --cut: the pieces left)."""

    raws: list[str]  # the records to write instead, as JSON lines
    chars: int  # their text's characters


# decide(batch) -> for each record of the batch, None to keep it, the reason to drop it, or a Replace
Decide = Callable[[list[Record]], list]


def part_name(part: tuple[int, int]) -> str:
    return f"part-{part[0]:05d}-of-{part[1]:05d}"


def check_out(out: str | Path, step: str, inputs: list[str], parts: int) -> Path:
    """``out`` may hold this step's files of a run in ``parts`` parts, and nothing gptkit wrote of
    another kind or step."""
    out = Path(out)
    found = kind_of(out)
    if found is not None:
        raise GptkitError(f"--out {out} holds {found} data of gptkit's (not a corpus step's output); give another --out")
    check_output(out, "data", inputs)  # not a file, not an input, not in use
    if out.is_dir():
        for other in STEPS:
            if other != step and any(out.glob(f".{other}-*.json")):
                raise GptkitError(f"--out {out} holds the output of `gptkit corpus {other}`; give each step its own --out")
        for state in out.glob(f".{step}-part-*-of-*.json"):
            if not state.name.endswith(f"-of-{parts:05d}.json"):
                raise GptkitError(f"--out {out} holds a run of `gptkit corpus {step}` in another number of parts "
                                  f"({state.name}); run with the same --part N, or give another --out")
    return out


@contextlib.contextmanager
def part_lock(out: Path, name: str) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f".lock-{name}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise GptkitError(f"{out} ({name}) is in use by another process: wait for it to finish or stop it") from None
    try:
        yield
    finally:
        os.close(fd)  # the flock goes with it; the file stays (removing it would race a waiter)


def settings_key(plan: Plan, step: str, settings: dict) -> str:
    text = json.dumps([step, plan.files_digest, plan.lo, plan.hi, plan.text_field, settings], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Progress:
    """Counts a step keeps as it goes (saved at each checkpoint, so a resumed run continues them)."""

    documents: int = 0
    kept: int = 0
    chars_in: int = 0
    chars_kept: int = 0
    removed: Counter = field(default_factory=Counter)
    extra: dict = field(default_factory=dict)  # the step's own counters (JSON values)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"documents": self.documents, "kept": self.kept, "chars_in": self.chars_in, "chars_kept": self.chars_kept,
                "removed": dict(self.removed), "extra": self.extra, "seconds": self.seconds}

    @classmethod
    def from_json(cls, raw: dict) -> Progress:
        return cls(raw["documents"], raw["kept"], raw["chars_in"], raw["chars_kept"], Counter(raw["removed"]),
                   raw["extra"], raw["seconds"])


def run_step(step: str, plan: Plan, part: tuple[int, int], out: Path, decide: Decide, settings: dict,
             compression: str = "none", extra: dict | None = None, progress=None) -> tuple[Path, Progress]:
    """Run ``decide`` over the plan's records, writing the kept ones to DIR/part-I-of-N.jsonl;
    resumable. (the output, the counts) ``extra`` holds the step's own counters, updated in place by
    ``decide`` and saved at each checkpoint."""
    name = part_name(part)
    state_path = out / f".{step}-{name}.json"
    output = out / output_name(name, compression)
    key = settings_key(plan, step, {**settings, "compression": compression})
    state = read_json(state_path) if state_path.is_file() else None
    if state is None or state.get("key") != key:
        state = {"key": key, "next": plan.lo, "length": 0, "progress": Progress(extra=extra or {}).to_json(), "done": False}
        for stale in out.glob(f"{name}.jsonl*"):
            stale.unlink()
    counts = Progress.from_json(json.loads(json.dumps(state["progress"])))  # a copy: extra may be the same dict
    if extra is not None and not state["done"]:
        extra.clear()
        extra.update(counts.extra)  # a resumed run continues the saved counters
        counts.extra = extra
    if state["done"]:
        return output, counts
    writer = Writer(output, state["length"])
    started, read_since = time.perf_counter(), 0
    base_seconds = counts.seconds
    try:
        for batch in batches(read_records(plan, state["next"])):
            verdicts = decide(batch)
            for record, verdict in zip(batch, verdicts):
                chars = len(record.text)
                counts.documents += 1
                counts.chars_in += chars
                if verdict is None:
                    counts.kept += 1
                    counts.chars_kept += chars
                    writer.write(record.raw)
                elif isinstance(verdict, Replace):
                    counts.kept += 1
                    counts.chars_kept += verdict.chars
                    for raw in verdict.raws:
                        writer.write(raw)
                else:
                    counts.removed[verdict] += 1
                read_since += chars
            state["next"] += len(batch)
            if progress is not None:
                progress(len(batch), sum(len(r.text) for r in batch))
            if read_since >= CHECKPOINT_CHARS:
                counts.seconds = base_seconds + time.perf_counter() - started
                state.update(length=writer.checkpoint(), progress=counts.to_json())
                write_text(state_path, json.dumps(state))
                read_since = 0
        counts.seconds = base_seconds + time.perf_counter() - started
        state.update(length=writer.close(), progress=counts.to_json(), done=True)
        write_text(state_path, json.dumps(state))
    except BaseException:
        writer.raw.close()
        raise
    return output, counts


def plan_for(inputs: list[str], text_field: str, part: str) -> tuple[Plan, tuple[int, int]]:
    return plan_inputs(list(inputs), text_field, part), parse_part(part)


def write_report(out: Path, step: str, part: tuple[int, int], report: dict) -> Path:
    """Write this part's report; the whole corpus's ``report.json`` once every part's is there."""
    index, parts = part
    path = out / ("report.json" if parts == 1 else f"report-{part_name(part)}.json")
    write_text(path, json.dumps(report, indent=2) + "\n")
    if parts > 1:
        paths = [out / f"report-{part_name((i, parts))}.json" for i in range(1, parts + 1)]
        if all(p.is_file() for p in paths):
            whole = combine([read_json(p) for p in paths])
            write_text(out / "report.json", json.dumps(whole, indent=2) + "\n")
    return path


def combine(reports: list[dict]) -> dict:
    """The reports of all parts as one: counts added, the slowest part's time."""
    whole = {k: v for k, v in reports[0].items() if k not in ("part", "documents", "kept", "removed", "chars_in",
                                                               "chars_kept", "seconds", "mb_per_s", "extra", "summary")}
    whole["parts"] = len(reports)
    for k in ("documents", "kept", "chars_in", "chars_kept"):
        whole[k] = sum(r[k] for r in reports)
    removed = Counter()
    for r in reports:
        removed.update(r["removed"])
    whole["removed"] = dict(removed)
    whole["seconds"] = max(r["seconds"] for r in reports)
    whole["extra"] = _add([r["extra"] for r in reports])
    whole["summary"] = summary_line(whole["step"], whole)
    return whole


def _add(values: list):
    """Numbers added, dicts merged key by key, lists concatenated (capped), anything else: the first."""
    first = values[0]
    if isinstance(first, bool) or not isinstance(first, (int, float, dict, list)):
        return first
    if isinstance(first, dict):
        keys = [k for v in values for k in v]
        return {k: _add([v[k] for v in values if k in v]) for k in dict.fromkeys(keys)}
    if isinstance(first, list):
        return [x for v in values for x in v][:20]
    return sum(values)


def base_report(step: str, plan: Plan, part: tuple[int, int], settings: dict, counts: Progress, outputs: list[str]) -> dict:
    report = {
        "step": step,
        "part": f"{part[0]}/{part[1]}",
        "inputs": plan.inputs,
        "documents_range": [plan.lo, plan.hi],
        "settings": settings,
        "documents": counts.documents,
        "kept": counts.kept,
        "removed": dict(sorted(counts.removed.items())),
        "chars_in": counts.chars_in,
        "chars_kept": counts.chars_kept,
        "seconds": round(counts.seconds, 3),
        "mb_per_s": round(counts.chars_in / 1e6 / counts.seconds, 2) if counts.seconds else None,
        "outputs": outputs,
        "extra": counts.extra,
    }
    report["summary"] = summary_line(step, report)
    return report


def summary_line(step: str, report: dict) -> str:
    n, kept = report["documents"], report["kept"]
    removed = sum(report["removed"].values())
    why = ", ".join(f"{count:,} {reason}" for reason, count in sorted(report["removed"].items(), key=lambda kv: -kv[1]))
    share = f" ({removed / n:.1%})" if n else ""
    speed = f" in {report['seconds']:.1f} s" + (f" ({report['chars_in'] / 1e6 / report['seconds']:.1f} MB/s)"
                                                  if report["seconds"] else "")
    line = f"{step}: {n:,} documents, kept {kept:,}, removed {removed:,}{share}" + (f": {why}" if why else "") + speed
    cut = report.get("extra", {}).get("cut_documents")
    if cut:  # decontaminate --cut
        line += f"; cut {cut:,} into {report['extra']['pieces']:,} pieces"
    tasks = report.get("extra", {}).get("tasks")
    if isinstance(tasks, dict):  # decontaminate: which tasks were hit
        hit = sorted(((name, t["documents_hit"]) for name, t in tasks.items() if t["documents_hit"]), key=lambda kv: -kv[1])
        line += "; tasks hit: " + (", ".join(f"{name} ({count:,})" for name, count in hit) if hit else "none")
    return line
