"""`gptkit serve` as a client sees it: the official openai client (completions and chat, streamed and
not, stop, n, seed, usage, logprobs, penalties), continuous batching that never changes a greedy
reply, cancellation when a client goes away, and a SIGTERM that lets a running stream finish."""

from __future__ import annotations

import json
from contextlib import closing

import pytest
from openai import OpenAI

import gptkit
from gptkit.chat.mmi import rerank
from gptkit.inference import generate
from gptkit.serve.app import WARNING_HEADER
from gptkit.tokenizer.wordpiece import CJK_CHAR
from tests.serve.conftest import Server, connect, raw

pytestmark = pytest.mark.slow

PROMPT = "Good morrow, my lord."


@pytest.fixture(scope="module")
def server(model_dirs):
    server = Server("--model", model_dirs["lm"], "--model", model_dirs["chat"], "--model", model_dirs["zh"],
                    "--mmi-model", model_dirs["mmi"],
                          "--num-hypotheses", "3", "--max-batch", "4", "--max-queue", "6", "--max-n", "8")
    yield server
    if server.process.poll() is None:  # test_sigterm_lets_a_running_stream_finish stops it itself
        server.stop()


@pytest.fixture(scope="module")
def client(server) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def lm(model_dirs) -> str:
    return model_dirs["lm"]


def greedy(client: OpenAI, model: str, prompt: str, max_tokens: int = 20) -> str:
    return client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens, temperature=0).choices[0].text


def test_models_lists_every_model_by_the_name_it_was_given(client, model_dirs):
    models = client.models.list().data
    assert [(m.id, m.max_model_len) for m in models] == [(model_dirs["lm"], 512), (model_dirs["chat"], 64),
                                                         (model_dirs["zh"], 64)]


def test_a_completion_runs_to_max_tokens_and_says_length(client, lm):
    out = client.completions.create(model=lm, prompt=PROMPT, max_tokens=7, temperature=0)
    assert out.object == "text_completion" and out.model == lm
    choice = out.choices[0]
    assert choice.finish_reason == "length" and len(choice.text) == 7  # one character per token
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (len(PROMPT), 7, len(PROMPT) + 7)


def test_an_empty_prompt_starts_from_end_of_text(client, lm):
    out = client.completions.create(model=lm, prompt="", max_tokens=3, temperature=0)
    assert out.usage.prompt_tokens == 1 and len(out.choices[0].text) == 3


def test_a_streamed_completion_is_the_whole_one_in_pieces_with_usage_last(client, lm):
    chunks = list(client.completions.create(model=lm, prompt=PROMPT, max_tokens=7, temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks[:-1]) == greedy(client, lm, PROMPT, 7)
    assert [c.choices[0].finish_reason for c in chunks[:-1]][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 7
    assert all(c.usage is None for c in chunks[:-1])


def test_a_stop_string_cuts_exactly_even_across_streamed_chunks(client, lm):
    text = greedy(client, lm, PROMPT, 30)
    stop = text[5:7]  # two characters: two tokens, so two chunks when streamed
    expected = text[: text.find(stop)]
    out = client.completions.create(model=lm, prompt=PROMPT, max_tokens=30, temperature=0, stop=[stop, "never"])
    assert (out.choices[0].text, out.choices[0].finish_reason) == (expected, "stop")
    chunks = list(client.completions.create(model=lm, prompt=PROMPT, max_tokens=30, temperature=0, stop=stop, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_n_choices_with_a_seed_are_reproducible_and_differ_from_each_other(client, lm):
    def texts(seed: int) -> list[str]:
        out = client.completions.create(model=lm, prompt=PROMPT, max_tokens=12, temperature=1.0, n=3, seed=seed)
        assert [c.index for c in out.choices] == [0, 1, 2]
        return [c.text for c in out.choices]

    first = texts(5)
    assert texts(5) == first and len(set(first)) == 3 and texts(6) != first


def test_chat_streams_the_role_first_then_the_same_reply(client, lm):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is the king?"}]
    whole = client.chat.completions.create(model=lm, messages=messages, max_tokens=10, temperature=0)
    assert whole.object == "chat.completion" and whole.choices[0].message.role == "assistant"
    chunks = list(client.chat.completions.create(model=lm, messages=messages, max_tokens=10, temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == whole.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()


def test_chat_with_a_seed_is_reproducible(client, model_dirs):
    def reply() -> str:
        out = client.chat.completions.create(model=model_dirs["chat"], messages=[{"role": "user", "content": "你好"}],
                                             max_tokens=8, seed=3, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in out)

    assert reply() == reply()


def test_mmi_answers_with_the_sample_the_backward_model_ranks_best(client, model_dirs):
    """Streamed replies are not reranked, so streaming n=3 with the seed shows the samples MMI ranks."""
    chat, messages = model_dirs["chat"], [{"role": "user", "content": "Where is the king?"}]
    texts, finish = ["", "", ""], ["", "", ""]
    for chunk in client.chat.completions.create(model=chat, messages=messages, max_tokens=8, seed=1, n=3, stream=True):
        for c in chunk.choices:
            texts[c.index] += c.delta.content or ""
            finish[c.index] = c.finish_reason or finish[c.index]
    (forward, tok), (backward, _) = gptkit.load(chat), gptkit.load(model_dirs["mmi"])
    finished = [t for t, f in zip(texts, finish) if f == "stop"] or texts
    ranked = rerank(forward, backward, tok, ["Where is the king?"], [tok.encode(t) for t in finished])
    reply = client.chat.completions.create(model=chat, messages=messages, max_tokens=8, seed=1)
    assert reply.choices[0].message.content.strip() == (ranked[0].text if ranked else finished[0].strip())


def test_an_mmi_reply_counts_the_tokens_of_the_sample_it_chose_not_of_all(client, model_dirs):
    """Sample i of the reranked three is the reply with seed 1 + i alone, which says its own usage."""
    chat, messages = model_dirs["chat"], [{"role": "user", "content": "Where is the king?"}]
    samples = {}
    for seed in (1, 2, 3):
        *chunks, last = client.chat.completions.create(model=chat, messages=messages, max_tokens=8, seed=seed,
                                                       stream=True, stream_options={"include_usage": True})
        samples["".join(c.choices[0].delta.content or "" for c in chunks)] = last.usage.completion_tokens
    reply = client.chat.completions.create(model=chat, messages=messages, max_tokens=8, seed=1)
    assert reply.usage.completion_tokens == samples[reply.choices[0].message.content]
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_a_chat_too_long_for_max_tokens_loses_old_turns_then_reply_room(client, server, model_dirs):
    """The dialogue model's context is 64: the old turns go first, then the reply gets what remains
    (a 400 only when no token remains)."""
    chat, turn = model_dirs["chat"], "Good morrow, my lord. What news from the court?"  # 47 characters, 48 tokens
    messages = [{"role": role, "content": turn} for role in ("user", "assistant", "user")]
    reply = client.chat.completions.create(model=chat, messages=messages, max_tokens=30, seed=0)
    assert reply.usage.prompt_tokens == 48 and reply.usage.completion_tokens <= 64 - 48
    status, _, body = raw(server, "POST", "/v1/chat/completions", chat_body(chat, messages=[
        {"role": "user", "content": turn * 2}]))
    assert status == 400 and body["error"]["code"] == "context_length_exceeded"
    assert body["error"]["message"].startswith("the latest message alone makes a prompt of 95 tokens")


def test_logprobs_name_each_token_and_its_most_likely_alternatives(client, lm):
    choice = client.completions.create(model=lm, prompt=PROMPT, max_tokens=5, temperature=0, logprobs=2).choices[0]
    lp = choice.logprobs
    assert "".join(lp.tokens) == choice.text and lp.text_offset == [0, 1, 2, 3, 4]
    assert all(len(top) == 2 for top in lp.top_logprobs)
    assert [max(top.values()) for top in lp.top_logprobs] == pytest.approx(lp.token_logprobs)  # greedy: the top one


def test_penalties_and_gptkit_extensions_shape_the_sampling(client, lm):
    # Logits of this model differ by less than 4, so a token once generated never wins again.
    out = client.completions.create(model=lm, prompt=PROMPT, max_tokens=30, temperature=0, presence_penalty=2,
                                    frequency_penalty=2, logprobs=0)
    assert len(set(out.choices[0].logprobs.tokens)) == 30
    top1 = client.completions.create(model=lm, prompt=PROMPT, max_tokens=12, temperature=1.5, extra_body={"top_k": 1})
    assert top1.choices[0].text == greedy(client, lm, PROMPT, 12)


def test_greedy_replies_are_the_same_in_a_batch_as_alone(client, lm):
    prompts = [PROMPT, "a", "Where is the king? He is in the garden."]  # three lengths in one batch
    alone = [greedy(client, lm, p) for p in prompts]
    batched = client.completions.create(model=lm, prompt=prompts, max_tokens=20, temperature=0)
    assert [c.text for c in batched.choices] == alone


def test_a_greedy_reply_is_what_generate_gives_and_a_prompt_that_extends_it_reuses_its_blocks(server, client, lm):
    """The server decodes through the same engine as generate(): the same greedy text. A second
    prompt that starts with the first one's text (a chat's next turn) takes its cached blocks."""
    model, tok = gptkit.load(lm)
    first = PROMPT * 3  # 63 characters: three whole cache blocks of 16
    assert greedy(client, lm, first) == generate(model, tok, first, max_new_tokens=20, temperature=0)[0]
    hits = server.metric("gptkit_prefix_cache_hit_tokens")
    longer = first + " What news?"
    assert greedy(client, lm, longer) == generate(model, tok, longer, max_new_tokens=20, temperature=0)[0]
    assert server.metric("gptkit_prefix_cache_hit_tokens") >= hits + 48


def test_a_request_joining_a_running_stream_gets_its_greedy_reply_and_a_closed_stream_is_cancelled(server, client, lm):
    alone = greedy(client, lm, PROMPT)
    with client.completions.create(model=lm, prompt="a", max_tokens=480, temperature=1.0, stream=True) as long:
        next(iter(long))  # decoding: the next request joins it mid-way
        assert greedy(client, lm, PROMPT) == alone
    # The long stream is closed; the server drops it at its next token, long before this reply is done.
    greedy(client, lm, PROMPT)
    assert server.metric("gptkit_running_sequences") == 0


def test_a_client_that_hangs_up_on_a_whole_reply_cancels_it(server, client, lm):
    with closing(connect(server)) as conn:
        conn.request("POST", "/v1/completions", json.dumps({"model": lm, "prompt": "a", "max_tokens": 480}),
                     {"Content-Type": "application/json"})
    greedy(client, lm, PROMPT)
    assert server.metric("gptkit_running_sequences") == 0


def test_chat_without_max_tokens_fills_what_the_context_leaves(client, model_dirs):
    out = client.chat.completions.create(model=model_dirs["chat"], messages=[{"role": "user", "content": "Hi"}], seed=0)
    assert out.usage.prompt_tokens == 3 and out.usage.total_tokens <= 64  # "Hi" and end-of-text; the context is 64


def test_metrics_count_requests_and_tokens(server, client, lm):
    before = server.metric("gptkit_completion_tokens_total")
    greedy(client, lm, PROMPT, 5)
    assert server.metric("gptkit_completion_tokens_total") == before + 5
    assert server.metric("gptkit_requests_total", path="/v1/completions", status="200") > 0
    assert server.metric("gptkit_time_to_first_token_seconds_count") > 0
    assert server.metric("gptkit_time_per_output_token_seconds_count") > 0


# --- every error case, over plain HTTP: status and OpenAI's error body ---------------------------

def chat_body(model: str, **fields) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4, **fields}


@pytest.mark.parametrize(("fields", "param"), [
    ({"temperature": "hot"}, "temperature"), ({"temperature": 2.5}, "temperature"), ({"top_p": 0}, "top_p"),
    ({"n": 0}, "n"), ({"max_tokens": 0}, "max_tokens"), ({"presence_penalty": 3}, "presence_penalty"),
    ({"stream": "yes"}, "stream"), ({"top_k": 0}, "top_k"), ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"messages": []}, "messages"), ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.[0].role"),
    ({"messages": [{"role": "user", "content": 7}]}, "messages.[0].content"), ({"stop": 3}, "stop"),
    ({"max_tokens": 5000}, "max_tokens"), ({"n": 9}, "n"),
])
def test_a_bad_field_is_a_400_naming_it(server, lm, fields, param):
    status, _, body = raw(server, "POST", "/v1/chat/completions", chat_body(lm, **fields))
    assert status == 400 and body["error"]["param"] == param and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"] and set(body["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(("fields", "param"), [({"prompt": []}, "prompt"), ({"prompt": 5}, "prompt"),
                                               ({"prompt": ["a", 1]}, "prompt"), ({"logprobs": 6}, "logprobs")])
def test_a_bad_completion_field_is_a_400_naming_it(server, lm, fields, param):
    status, _, body = raw(server, "POST", "/v1/completions", {"model": lm, "prompt": "a", **fields})
    assert (status, body["error"]["param"]) == (400, param)


def test_unknown_fields_are_ignored(server, lm):
    status, _, body = raw(server, "POST", "/v1/chat/completions", chat_body(lm, user="me", logit_bias={}, future=1))
    assert status == 200 and body["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"{not json", 400, "invalid_json"), (b"[1, 2]", 400, None), (b"\xff\xfe", 400, "invalid_json"),
    (b"{" + b" " * (1 << 20) + b"}", 413, "request_too_large"),
])
def test_a_body_that_is_no_request_is_refused(server, body, status, code):
    got, _, error = raw(server, "POST", "/v1/completions", body)
    assert (got, error["error"]["code"]) == (status, code)


def test_an_unknown_model_is_a_404(server, lm):
    status, _, body = raw(server, "POST", "/v1/completions", {"model": "gpt-4", "prompt": "hi"})
    assert status == 404 and body["error"]["code"] == "model_not_found" and body["error"]["param"] == "model"
    assert lm in body["error"]["message"]


def test_a_prompt_with_max_tokens_over_the_context_is_a_400(server, lm):
    status, _, body = raw(server, "POST", "/v1/completions", {"model": lm, "prompt": "a" * 200, "max_tokens": 400})
    assert status == 400 and body["error"]["code"] == "context_length_exceeded" and body["error"]["param"] == "prompt"


def test_unknown_routes_and_methods_get_openai_error_bodies(server):
    assert raw(server, "GET", "/v1/nothing")[0::2] == (404, {"error": {
        "message": "GET /v1/nothing: Not Found", "type": "invalid_request_error", "param": None, "code": None}})
    assert raw(server, "GET", "/v1/chat/completions")[0] == 405


def test_a_full_queue_is_a_503_with_retry_after(server, client, lm):
    long = {"model": lm, "prompt": "a", "max_tokens": 480, "stream": True}
    with client.completions.create(**long, n=4) as running:  # --max-batch 4: every row decodes ...
        next(iter(running))
        with client.completions.create(**long, n=6):  # ... and these fill the queue (--max-queue 6)
            status, headers, body = raw(server, "POST", "/v1/completions", {"model": lm, "prompt": "hi"})
    assert status == 503 and headers["retry-after"] == "1" and body["error"]["code"] == "server_busy"


def test_health_page_and_no_cors_by_default(server):
    status, headers, body = raw(server, "GET", "/health", headers={"Origin": "http://elsewhere.test"})
    assert (status, body) == (200, {"status": "ok"}) and "access-control-allow-origin" not in headers
    with closing(connect(server)) as conn:
        conn.request("GET", "/")
        page = conn.getresponse()
        assert page.status == 200 and page.getheader("content-type").startswith("text/html")


# --- Chinese, and characters a model cannot read ----------------------------------------------

NOTE = "not in this model's vocabulary (read as unknown): "


def chinese_in_vocabulary(text: str, tok) -> bool:
    return bool(text) and all(CJK_CHAR.match(c) for c in text) and not tok.unknown_characters(text)


def test_a_wordpiece_dialogue_model_answers_the_openai_client_in_chinese(client, model_dirs):
    zh, tok = model_dirs["zh"], gptkit.load(model_dirs["zh"])[1]
    messages = [{"role": "user", "content": "你好"}]
    reply = client.chat.completions.create(model=zh, messages=messages, max_tokens=6, seed=0)
    assert chinese_in_vocabulary(reply.choices[0].message.content, tok), reply.choices[0].message.content
    assert "warnings" not in reply.model_extra  # every character of the request is in the vocabulary
    pieces = [c.choices[0].delta.content or "" for c in
              client.chat.completions.create(model=zh, messages=messages, max_tokens=6, seed=0, stream=True)]
    assert chinese_in_vocabulary("".join(pieces), tok) and len([p for p in pieces if p]) > 1


def test_characters_outside_the_vocabulary_are_a_warning_field_and_header(client, model_dirs):
    zh, messages = model_dirs["zh"], [{"role": "user", "content": "你好吗？"}]  # 吗 is not in the vocabulary
    raw_reply = client.chat.completions.with_raw_response.create(model=zh, messages=messages, max_tokens=4, seed=0)
    assert raw_reply.headers[WARNING_HEADER] == NOTE + "U+5417"
    reply = raw_reply.parse()
    assert reply.model_extra["warnings"] == [{"code": "unknown_characters", "message": NOTE + "吗", "characters": ["吗"]}]
    assert reply.choices[0].message.content  # the reply comes all the same
    chunks = list(client.chat.completions.create(model=zh, messages=messages, max_tokens=4, seed=0, stream=True))
    assert chunks[0].model_extra["warnings"][0]["characters"] == ["吗"]  # on the first chunk only
    assert all("warnings" not in c.model_extra for c in chunks[1:])
    completion = client.completions.create(model=zh, prompt="吗呢", max_tokens=2)
    assert completion.model_extra["warnings"][0]["characters"] == ["吗", "呢"]
    assert "warnings" not in client.completions.create(model=zh, prompt="你好", max_tokens=2).model_extra



# Last: it stops the module's server.
def test_sigterm_lets_a_running_stream_finish_then_exits_cleanly(server, client, lm):
    stream = client.completions.create(model=lm, prompt="a", max_tokens=300, temperature=1.0, stream=True,
                                       stream_options={"include_usage": True})
    chunks = iter(stream)
    next(chunks)
    server.process.terminate()
    rest = list(chunks)
    assert rest[-2].choices[0].finish_reason == "length" and rest[-1].usage.completion_tokens == 300
    assert server.process.wait(timeout=60) == 0

