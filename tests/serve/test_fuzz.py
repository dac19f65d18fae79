"""One request can never break another's reply: every body no request can be (out-of-range seeds,
NaN and Infinity, lone surrogates anywhere, nesting 10,000 deep, more sequences than the queue holds)
is a 400 with OpenAI's error body, extreme but valid settings decode, and a stream decoding beside
all of them ends with the text it has alone."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from openai import OpenAI

from gptkit.cli.main import cli
from gptkit.inference.sampling import MAX_SEED
from gptkit.serve.schema import MAX_DEPTH
from tests.serve.conftest import Server, raw, save_model

pytestmark = pytest.mark.slow

DEEP = 10_000


@pytest.fixture(scope="module")
def short(tmp_path_factory) -> str:
    """A model whose context (12) leaves a reply less than completions' default of 16 tokens."""
    return save_model(tmp_path_factory.mktemp("short") / "short", 3, block_size=12, eot=False)


@pytest.fixture(scope="module")
def server(model_dirs, short):
    server = Server("--model", model_dirs["lm"], "--model", short, "--max-batch", "4", "--max-queue", "4",
                    "--max-n", "8", "--max-tokens", "300")
    yield server
    code, output = server.stop()
    assert code == 0 and "Traceback" not in output, output


@pytest.fixture(scope="module")
def client(server) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def nested(depth: int) -> list:
    """Lists in lists, ``depth`` of them."""
    return [nested(depth - 1)] if depth > 1 else []


def bad_bodies(lm: str) -> list[tuple[str, bytes | dict, str | None]]:
    """(route, body, the param the error names) for each body that must be a 400. json.dumps writes a
    lone surrogate as its \\ud800 escape and NaN as NaN; bodies it cannot write are bytes."""
    chat = {"model": lm, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    completion = {"model": lm, "prompt": "a", "max_tokens": 4}
    model = json.dumps(lm)
    return [
        ("completions", {**completion, "seed": MAX_SEED + 1}, "seed"),
        ("completions", {**completion, "seed": -1}, "seed"),
        ("chat/completions", {**chat, "seed": 2**70}, "seed"),
        ("completions", {**completion, "prompt": "ab\ud800cd"}, "prompt"),
        ("completions", {**completion, "prompt": ["ok", "\udc00"]}, "prompt.[1]"),
        ("completions", {**completion, "stop": ["x", "y\ud800"]}, "stop.[1]"),
        ("completions", {**completion, "stop": "\ud800"}, "stop"),
        ("completions", {**completion, "model": "\ud800"}, "model"),
        ("chat/completions", {**chat, "messages": [{"role": "user", "content": "\ud800"}]}, "messages.[0].content"),
        ("chat/completions", {**chat, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi \udfff"}]}]},
         "messages.[0].content.[0].text"),
        ("completions", {**completion, "user": {"\ud800": 1}}, "user"),  # in a key, of a field the server ignores
        ("completions", b"[" * DEEP + b"]" * DEEP, None),
        ("completions", b'{"model": %s, "prompt": "a", "x": ' % model.encode() + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}",
         None),
        ("completions", {**completion, "metadata": nested(MAX_DEPTH)}, None),  # one past the limit, in the body object
        ("completions", {**completion, "repetition_penalty": float("inf")}, "repetition_penalty"),
        ("completions", {**completion, "temperature": float("nan")}, "temperature"),
        ("chat/completions", {**chat, "top_p": float("-inf")}, "top_p"),
        ("completions", b'{"model": %s, "prompt": "a", "presence_penalty": 1e400}' % model.encode(), "presence_penalty"),
        ("completions", b'{"model": %s, "prompt": "a", "seed": 1%s}' % (model.encode(), b"0" * 5000), None),
        ("completions", {**completion, "max_tokens": 10**30}, "max_tokens"),
        ("completions", {**completion, "n": 5}, "n"),  # at most --max-n 8, but more than --max-queue 4
        ("completions", {**completion, "prompt": ["a"] * 5}, "n"),
        ("chat/completions", {**chat, "n": 8, "stream": True}, "n"),
    ]


def extreme_bodies(lm: str) -> list[dict]:
    """Valid settings at the edges of their ranges: they decode, beside the other requests."""
    completion = {"model": lm, "prompt": "a", "max_tokens": 8}
    return [{**completion, "metadata": nested(MAX_DEPTH - 1)}, {**completion, "prompt": "a😀"},  # sent as a pair of \\u escapes
            {**completion, "temperature": 1e-300}, {**completion, "seed": MAX_SEED, "n": 2},
            {**completion, "repetition_penalty": 1e-300}, {**completion, "repetition_penalty": 1e300},
            {**completion, "top_p": 1e-300}, {**completion, "top_k": 10**30, "temperature": 2}]


@pytest.mark.parametrize("case", range(len(bad_bodies(""))))
def test_a_body_no_request_can_be_is_a_400_naming_the_field(server, model_dirs, case):
    route, body, param = bad_bodies(model_dirs["lm"])[case]
    status, _, error = raw(server, "POST", f"/v1/{route}", body)
    assert status == 400 and set(error) == {"error"}, error
    assert set(error["error"]) == {"message", "type", "param", "code"} and error["error"]["message"]
    assert (error["error"]["type"], error["error"]["param"]) == ("invalid_request_error", param)


@pytest.mark.parametrize("body", range(len(extreme_bodies(""))))
def test_settings_at_the_edges_of_their_ranges_decode(server, model_dirs, body):
    status, _, out = raw(server, "POST", "/v1/completions", extreme_bodies(model_dirs["lm"])[body])
    assert status == 200 and {c["finish_reason"] for c in out["choices"]} == {"length"}, out
    assert out["usage"]["completion_tokens"] == 8 * len(out["choices"])


def completion(client: OpenAI, model: str, **fields) -> list[str]:
    return [c.text for c in client.completions.create(model=model, prompt="a", max_tokens=8, **fields).choices]


def test_a_tiny_temperature_or_top_p_is_greedy(client, model_dirs):
    lm = model_dirs["lm"]
    greedy = completion(client, lm, temperature=0)
    assert completion(client, lm, temperature=1e-300) == greedy == completion(client, lm, top_p=1e-300, seed=1)


def test_the_seed_of_a_choice_past_the_largest_wraps_to_zero(client, model_dirs):
    lm = model_dirs["lm"]
    assert completion(client, lm, seed=MAX_SEED, n=2)[1] == completion(client, lm, seed=0)[0]


def test_a_string_stop_is_one_stop_sequence_never_its_characters(client, model_dirs):
    lm = model_dirs["lm"]
    text = completion(client, lm, temperature=0)[0]
    whole = client.completions.create(model=lm, prompt="a", max_tokens=8, temperature=0, stop=text[0] + "~~").choices[0]
    assert (whole.text, whole.finish_reason) == (text, "length")  # "~" is not in the vocabulary: it never stops
    cut = client.completions.create(model=lm, prompt="a", max_tokens=8, temperature=0, stop=text[3:5]).choices[0]
    assert (cut.text, cut.finish_reason) == (text[: text.find(text[3:5])], "stop")


def test_a_completion_without_max_tokens_gets_at_most_what_the_server_allows(server, short):
    """Completions default to 16 tokens; this model's context leaves 11 beside a one-token prompt."""
    status, _, out = raw(server, "POST", "/v1/completions", {"model": short, "prompt": "a"})
    assert status == 200 and out["usage"]["completion_tokens"] == 11 and out["choices"][0]["finish_reason"] == "length"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_a_queue_of_zero_is_refused_at_startup():
    result = run("serve", "--model", "unused", "--max-queue", "0")
    assert result.exit_code == 2 and "Invalid value for '--max-queue': 0 is not in the range x>=1" in result.output


def test_more_mmi_hypotheses_than_the_queue_holds_are_refused_at_startup(model_dirs):
    result = run("serve", "--model", model_dirs["chat"], "--mmi-model", model_dirs["mmi"], "--num-hypotheses", "5",
                 "--max-queue", "4")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == "error: --num-hypotheses 5 is more than --max-queue 4 sequences; lower it " \
                                             "or raise --max-queue"


def test_a_stream_beside_every_bad_and_extreme_request_has_its_text_alone(server, client, model_dirs):
    lm = model_dirs["lm"]

    def stream():
        return client.completions.create(model=lm, prompt="Good morrow", max_tokens=300, temperature=1.0, seed=7,
                                         stream=True)

    alone = "".join(c.choices[0].text for c in stream())
    with stream() as beside:
        chunks = iter(beside)
        text = next(chunks).choices[0].text  # decoding: what follows joins its batch or is refused beside it
        statuses = [raw(server, "POST", f"/v1/{route}", body)[0] for route, body, _ in bad_bodies(lm)]
        statuses += [raw(server, "POST", "/v1/completions", body)[0] for body in extreme_bodies(lm)]
        text += "".join(c.choices[0].text for c in chunks)
    assert statuses == [400] * len(bad_bodies(lm)) + [200] * len(extreme_bodies(lm))
    assert alone and text == alone
    assert "".join(c.choices[0].text for c in stream()) == alone  # and the server serves on
