"""The package's layers import downwards only: no module imports one that imports it back, not
even through an import inside a function (which hides a cycle until the call)."""

from __future__ import annotations

import ast
from pathlib import Path

import gptkit

ROOT = Path(gptkit.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every gptkit module ``path`` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gptkit"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("gptkit"))
    return found


# The one call up the layers, made at call time: GPT.from_pretrained is the front door users of
# transformers and nanoGPT reach for first, and hands every layout (gptkit's, Hugging Face's, runs,
# cached names) to gptkit.checkpoint.load_model, the one loader.
FRONT_DOOR = ("gptkit.model.gpt", "gptkit.checkpoint")


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name and (name, m) != FRONT_DOOR}
            for name, path in modules.items()}


def test_the_front_door_is_the_only_upward_import():
    # If GPT.from_pretrained stopped importing gptkit.checkpoint, FRONT_DOOR would hide nothing: drop it.
    assert FRONT_DOOR[1] in imports_of(ROOT / "model" / "gpt.py")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer(module: str) -> str:
    """The folder (capability) a module belongs to; package __init__ files re-export, so they are
    the folder itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "gptkit"


CORE = {"model", "tokenizer", "convert", "checkpoint"}


def test_no_import_cycle_between_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_no_import_cycle_among_model_tokenizer_convert_and_checkpoint():
    folders: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        if layer(module) in CORE:
            folders.setdefault(layer(module), set()).update(layer(t) for t in targets if layer(t) in CORE - {layer(module)})
    cycle = find_cycle(folders)
    assert cycle is None, " -> ".join(cycle)


def test_the_model_and_the_tokenizers_depend_on_neither_each_other_nor_what_reads_checkpoints():
    graph = import_graph()
    for module, targets in graph.items():
        if layer(module) in ("model", "tokenizer"):
            above = {layer(t) for t in targets} & {"convert", "checkpoint", "model", "tokenizer"} - {layer(module)}
            assert not above, f"{module} imports {above}"
