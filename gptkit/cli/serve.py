"""`gptkit serve`: an OpenAI-compatible server (completions, chat, streaming) and a chat page."""

from __future__ import annotations

import click

from gptkit.cli.generate import exact_precision_options, load_for_inference
from gptkit.cli.group import cli


@cli.command()
@click.option("--model", "models", multiple=True, required=True,
              help="A model or run directory, or a cached name (gpt2); repeat to serve several. Requests name it as given.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 exposes the server to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 picks a free port.")
@click.option("--api-key", envvar="GPTKIT_API_KEY", help="Require 'Authorization: Bearer KEY' on /v1/* (or set GPTKIT_API_KEY).")
@click.option("--cors-origin", "cors_origins", multiple=True, help="Allow browser pages from this origin (repeatable); off by default.")
@click.option("--mmi-model", help="A backward model (dialogue train --reverse) that reranks the first model's non-streamed chat replies.")
@click.option("--num-hypotheses", type=click.IntRange(min=1), default=8, show_default=True, help="Replies sampled for MMI.")
@click.option("--chat-template", type=click.Choice(["auto", "dialogue", "plain"]), default="auto", show_default=True,
              help="How chat messages become a prompt. auto: dialogue (DialoGPT) for dialogue-trained models and *DialoGPT*, else plain.")
@click.option("--max-batch", type=click.IntRange(min=1), default=16, show_default=True, help="Sequences decoded together, per model.")
@click.option("--max-queue", type=click.IntRange(min=1), default=64, show_default=True,
              help="Sequences waiting for a batch slot, per model; more get 503 with Retry-After, and a request with "
                   "more than this many (n choices for each prompt) a 400.")
@click.option("--kv-cache-memory", type=click.FloatRange(min=0, min_open=True), default=None,
              help="GiB for the paged KV cache, per model (default: room for every batch row's whole context; on the CPU "
                   "memory is taken only as tokens fill it). Blocks of earlier prompts stay there for reuse until needed.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=1024, show_default=True, help="Longest reply a request may ask for.")
@click.option("--max-prompt-tokens", type=click.IntRange(min=1), default=None, help="Longest prompt (default: what fits the context).")
@click.option("--max-n", type=click.IntRange(min=1), default=16, show_default=True, help="Most choices per request.")
@click.option("--max-body-bytes", type=click.IntRange(min=1), default=1 << 20, show_default=True)
@click.option("--request-timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
              help="Seconds a request may generate.")
@click.option("--device", default="auto", show_default=True)
@exact_precision_options
def serve(models, host, port, api_key, cors_origins, mmi_model, num_hypotheses, chat_template, max_batch, max_queue,
          kv_cache_memory, max_tokens, max_prompt_tokens, max_n, max_body_bytes, request_timeout, device, dtype, quantize) -> None:
    """Serve models over OpenAI's API (/v1/completions, /v1/chat/completions, /v1/models) with a chat page
    at /, /health and /metrics. Ctrl-C or SIGTERM lets running replies finish, then exits."""
    from gptkit.serve import EngineConfig, Limits, ServerConfig, build_app
    from gptkit.serve.server import serve as run

    # ``exact``: auto keeps fp32. int8 scales activations per batch, so a reply would depend on what
    # else is being decoded beside it; --quantize int8 still asks for it.
    loaded = {name: load_for_inference(name, device, dtype, quantize, exact=True) for name in dict.fromkeys(models)}
    backward = load_for_inference(mmi_model, device, dtype, quantize, exact=True) if mmi_model else None
    limits = Limits(max_body_bytes, max_prompt_tokens, max_tokens, max_n, request_timeout)
    cfg = ServerConfig(api_key or None, list(cors_origins), limits)
    app = build_app(loaded, cfg, EngineConfig(max_batch, max_queue, kv_cache_memory), chat_template, backward, num_hypotheses)
    run(app, host, port)
