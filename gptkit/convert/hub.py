"""Model names resolved in the local Hugging Face cache, never over the network."""

from __future__ import annotations

from pathlib import Path

from gptkit.errors import GptkitError

# Short names users type, and the repositories that hold them today.
ALIASES = {
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
    "openai-gpt": "openai-community/openai-gpt",
    "dialogpt-small": "microsoft/DialoGPT-small",
    "dialogpt-medium": "microsoft/DialoGPT-medium",
    "dialogpt-large": "microsoft/DialoGPT-large",
}
FILES = "config.json model.safetensors vocab.json merges.txt"


def resolve_pretrained(name_or_path: str | Path) -> Path:
    """A local directory as is; otherwise a model name looked up in the local Hugging Face cache."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    name = str(name_or_path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise GptkitError(f"{name} does not exist; pass a model directory or a model name such as gpt2")
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repos = list(dict.fromkeys([ALIASES.get(name.lower(), name), name]))
    for repo in repos:
        try:
            return Path(snapshot_download(repo, local_files_only=True))
        except (LocalEntryNotFoundError, ValueError, OSError):
            continue
    cache = constants.HF_HUB_CACHE
    raise GptkitError(
        f"{name} is neither a directory nor in the local Hugging Face cache ({cache}); nothing is downloaded "
        f"at run time. On a machine with internet run `hf download {repos[0]} {FILES}` and copy "
        f"{cache}/models--{repos[0].replace('/', '--')} into this machine's cache (or set HF_HUB_CACHE), "
        f"or pass the directory that holds those files"
    )
