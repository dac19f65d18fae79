"""Published checkpoints in and out: Hugging Face layouts and the local Hugging Face cache."""

from gptkit.convert.hf import export_hf, load_hf_model, load_hf_tokenizer
from gptkit.convert.hub import resolve_pretrained

__all__ = ["export_hf", "load_hf_model", "load_hf_tokenizer", "resolve_pretrained"]
