"""Hugging Face checkpoints in and out: the only module that knows their key names and that their
Conv1D weights are stored transposed relative to nn.Linear.

Supported: GPT-2 layout (`model_type` "gpt2": GPT-2, DialoGPT and their fine-tunes) and GPT-1
("openai-gpt"), from model.safetensors (single or sharded) or pytorch_model.bin.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import torch

from gptkit.config import GPTConfig
from gptkit.data.documents import expect
from gptkit.errors import GptkitError
from gptkit.io import read_json, write_text
from gptkit.model.gpt import GPT, check_state_dict
from gptkit.tensor_io import iter_tensors, save_tensors
from gptkit.tokenizer import ByteLevelBPETokenizer, GPT1BPETokenizer, Tokenizer

SUPPORTED = ("gpt2", "openai-gpt")
CONV1D = re.compile(r"\.(c_attn|c_proj|c_fc)\.weight$")  # stored (in, out) by HF, (out, in) by nn.Linear
BUFFERS = re.compile(r"\.attn\.(bias|masked_bias)$")  # causal-mask buffers some old checkpoints carry
TANH_GELU = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
log = logging.getLogger("gptkit")


def config_from_hf(hf: dict, source: Path) -> GPTConfig:
    """A GPTConfig from a Hugging Face config.json; absent keys take transformers' own defaults."""
    model_type = hf.get("model_type")
    if model_type not in SUPPORTED:
        raise GptkitError(f"{source}: model_type {model_type!r} is not supported; supported: {', '.join(SUPPORTED)}")
    n_embd = hf.get("n_embd", 768)
    shape = dict(vocab_size=hf.get("vocab_size", 50257), block_size=hf.get("n_positions", 1024), n_embd=n_embd,
                 n_layer=hf.get("n_layer", 12), n_head=hf.get("n_head", 12),
                 embd_pdrop=hf.get("embd_pdrop", 0.1), attn_pdrop=hf.get("attn_pdrop", 0.1),
                 resid_pdrop=hf.get("resid_pdrop", 0.1), layer_norm_epsilon=hf.get("layer_norm_epsilon", 1e-5))
    if model_type == "openai-gpt":
        _require(hf.get("afn", "gelu") == "gelu", source, f"activation afn={hf.get('afn')!r}")
        return _config(source, **shape, ln_order="post")
    _require(hf.get("activation_function", "gelu_new") in TANH_GELU, source,
             f"activation_function={hf.get('activation_function')!r}")
    _require(hf.get("n_inner") in (None, 4 * n_embd), source, f"n_inner={hf.get('n_inner')} (gptkit uses 4 x n_embd)")
    _require(not hf.get("scale_attn_by_inverse_layer_idx", False), source, "scale_attn_by_inverse_layer_idx")
    _require(hf.get("scale_attn_weights", True), source, "scale_attn_weights=false")
    return _config(source, **shape, ln_order="pre")


def _config(source: Path, **keys) -> GPTConfig:
    try:
        return GPTConfig(**keys)
    except GptkitError as e:
        raise GptkitError(f"{source / 'config.json'}: {e}") from None


def _require(ok: bool, source: Path, feature: str) -> None:
    if not ok:
        raise GptkitError(f"{source}: {feature} is not supported by gptkit's GPT")


def _hf_tensors(directory: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) one at a time, so a big checkpoint is never held twice in memory."""
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        for name in _shards(index):
            yield from iter_tensors(directory / name)
    elif (directory / "model.safetensors").is_file():
        yield from iter_tensors(directory / "model.safetensors")
    elif (directory / "pytorch_model.bin").is_file():
        path = directory / "pytorch_model.bin"
        try:  # no mmap: popping each tensor as it is converted frees it, so the peak stays ~1x
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for a damaged zip/pickle
            raise GptkitError(f"{path} is truncated or corrupt ({str(e).splitlines()[0]})") from None
        for name in list(state):
            yield name, state.pop(name)
    else:
        raise GptkitError(f"{directory} has config.json but no model.safetensors or pytorch_model.bin")


def _shards(index: Path) -> list[str]:
    """The shard files a model.safetensors.index.json names: plain file names beside it that exist."""
    weight_map = expect(read_json(index, fix="the checkpoint is damaged").get("weight_map"), "a mapping",
                        f"{index}: weight_map")
    for tensor, name in weight_map.items():
        expect(name, "a non-empty string", f"{index}: weight_map[{json.dumps(tensor)}]")
        if Path(name).name != name or not (index.parent / name).is_file():
            raise GptkitError(f"{index}: weight_map[{json.dumps(tensor)}] names {json.dumps(name)}, which is not a "
                              "file beside it; the checkpoint is incomplete, download it again")
    return sorted(set(weight_map.values()))


def _our_name(hf_name: str) -> str | None:
    """HF key -> gptkit key, or None for keys that carry no weights of ours."""
    name = hf_name.removeprefix("transformer.")
    if BUFFERS.search(name) or name == "lm_head.weight":
        return None
    return name.replace("tokens_embed.", "wte.").replace("positions_embed.", "wpe.")


def load_hf_model(directory: Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
    """A Hugging Face GPT-2 / GPT-1 checkpoint as a gptkit GPT, loaded tensor by tensor onto ``device``."""
    config = config_from_hf(read_json(directory / "config.json", fix="the checkpoint is damaged"), directory)
    with torch.device("meta"):
        model = GPT(config)
    state: dict[str, torch.Tensor] = {}
    lm_head = None
    for hf_name, tensor in _hf_tensors(directory):
        if hf_name.endswith("lm_head.weight"):
            lm_head = tensor
            continue
        name = _our_name(hf_name)
        if name is None:
            continue
        if CONV1D.search(name):
            tensor = tensor.t()
        state[name] = tensor.to(device=device, dtype=dtype or tensor.dtype).contiguous()
    check_state_dict(model, state, directory)
    if lm_head is not None and not torch.equal(lm_head.to(state["wte.weight"]), state["wte.weight"]):
        raise GptkitError(f"{directory}: lm_head.weight differs from the token embedding; gptkit ties them")
    model.load_state_dict(state, assign=True)
    return model.eval()


def load_hf_tokenizer(directory: Path, model_type: str) -> Tokenizer:
    """The vocab.json + merges.txt of a Hugging Face checkpoint, read as its model_type's tokenizer."""
    cls = GPT1BPETokenizer if model_type == "openai-gpt" else ByteLevelBPETokenizer
    return cls.from_directory(directory)


# --- export -------------------------------------------------------------------------------------

def hf_config(config: GPTConfig, eot_id: int | None) -> dict:
    for ok, feature in ((config.attention == "dense", "alternating dense/banded attention"),
                        (config.position == "learned", "sinusoidal positions"), (config.bias, "bias=False")):
        if not ok:
            raise GptkitError(f"this model uses {feature}, which transformers' GPT-2 / GPT-1 classes cannot express")
    common = dict(vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.n_embd,
                  n_layer=config.n_layer, n_head=config.n_head, resid_pdrop=config.resid_pdrop,
                  embd_pdrop=config.embd_pdrop, attn_pdrop=config.attn_pdrop,
                  layer_norm_epsilon=config.layer_norm_epsilon, initializer_range=0.02, tie_word_embeddings=True,
                  bos_token_id=eot_id, eos_token_id=eot_id)  # generate() stops at end-of-text as gptkit does
    if config.ln_order == "post":
        return {"architectures": ["OpenAIGPTLMHeadModel"], "model_type": "openai-gpt", "afn": "gelu", **common}
    return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
            "n_inner": None, **common}


def export_hf(model, tokenizer, out: str | Path) -> Path:
    """Write ``model`` and its tokenizer as a directory transformers loads whole with from_pretrained
    (AutoModelForCausalLM, AutoTokenizer, pipeline). Without a tokenizer only the weights and config."""
    out = Path(out)
    config = hf_config(model.config, tokenizer.eot_id if tokenizer is not None else None)
    post = model.config.ln_order == "post"
    state = {}
    for name, tensor in model.state_dict().items():
        if CONV1D.search(name):
            tensor = tensor.t()
        if post:
            name = name.replace("wte.", "tokens_embed.").replace("wpe.", "positions_embed.")
        state[f"transformer.{name}"] = tensor
    out.mkdir(parents=True, exist_ok=True)
    save_tensors(out / "model.safetensors", state, metadata={"format": "pt"})
    write_text(out / "config.json", json.dumps(config, indent=2) + "\n")
    if tokenizer is None:
        log.warning("no tokenizer files were written to %s: the model came without a tokenizer", out)
    else:
        tokenizer.save(out)
    return out
