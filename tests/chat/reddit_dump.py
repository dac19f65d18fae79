"""A generated Reddit-style dump (threads interleaved, deleted comments, bots, orphans, deep chains)
and the straightforward in-memory sessions it should give: shared by the tests and the benchmark."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = "the cat sat on a mat and you said it was good but we do not know why they go there".split()


def generate(threads: int, seed: int = 0, deep: int = 60) -> list[dict]:
    """Submissions and comments of ``threads`` threads, shuffled together as real dumps are."""
    rng = random.Random(seed)
    records = []
    for t in range(threads):
        link = f"s{seed}x{t}"
        if t % 17 != 5:  # some threads' submissions are missing from the dump
            records.append({"id": link, "title": f"title {t} " + " ".join(rng.choices(WORDS, k=4)),
                            "selftext": "", "author": "op", "score": 1, "created_utc": 1000 + t})
        ids = []
        n = deep if t % 50 == 0 else rng.randint(0, 12)  # every 50th thread is one long chain
        for c in range(n):
            cid = f"{link}c{c}"
            if t % 50 == 0:
                parent = f"t1_{ids[-1]}" if ids else f"t3_{link}"
            else:
                parent = f"t1_{rng.choice(ids)}" if ids and rng.random() < 0.7 else f"t3_{link}"
            body = " ".join(rng.choices(WORDS, k=rng.randint(1, 8)))
            roll = rng.random() if t % 50 else 0.5  # the chains stay whole
            if roll < 0.08:
                body = rng.choice(["[deleted]", "[removed]"])
            author = "AutoModerator" if 0.08 <= roll < 0.11 else f"user{rng.randint(0, 9)}"
            if roll > 0.985:
                parent = "t1_gone"  # its parent was never archived
            records.append({"id": cid, "parent_id": parent, "link_id": f"t3_{link}", "body": body, "author": author,
                            "score": rng.randint(-5, 50), "created_utc": str(2000 + rng.randint(0, 500))})
            ids.append(cid)
    rng.shuffle(records)
    return records


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def reference_sessions(records: list[dict], skip_authors=("AutoModerator",)) -> list[list[str]]:
    """Every root-to-leaf path, the title first; a deleted comment or a skipped author's ends the
    path before it. Written plainly, recursively, with everything in memory."""
    titles = {r["id"]: r["title"] for r in records if "title" in r}
    comments = {}
    for r in records:
        if "parent_id" in r:
            comments.setdefault(r["id"], r)

    def alive(r):
        return r["body"] not in ("[deleted]", "[removed]") and r["author"] not in skip_authors

    children = {}
    for r in comments.values():
        parent = r["parent_id"][3:]
        key = (r["link_id"][3:], None) if r["parent_id"].startswith("t3_") else (r["link_id"][3:], parent)
        children.setdefault(key, []).append(r)
    sessions = []

    def walk(link, node, path):
        kids = [k for k in children.get((link, node), []) if alive(k)]
        if not kids and len(path) >= 2:
            sessions.append(path)
        for k in kids:
            walk(link, k["id"], [*path, k["body"]])

    for link, title in titles.items():
        walk(link, None, [title])
    return sessions
