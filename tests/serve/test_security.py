"""A server with an API key, one allowed CORS origin and a request time limit too short to finish
anything: 401s with OpenAI's error body, open /health and page, CORS for that origin only, and a time
limit that fails a reply (504) or ends a started stream with an error chunk, then [DONE]."""

from __future__ import annotations

import json
from contextlib import closing

import pytest

from tests.serve.conftest import Server, connect, raw

pytestmark = pytest.mark.slow

KEY = "s3cret"
ORIGIN = "http://page.test"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(model_dirs):
    server = Server("--model", model_dirs["lm"], "--cors-origin", ORIGIN, "--request-timeout", "0.001",
                          env={"GPTKIT_API_KEY": KEY})
    yield server
    code, output = server.stop()
    assert code == 0, output


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/models"), ("POST", "/v1/chat/completions")])
def test_v1_without_the_key_is_a_401(server, headers, method, path):
    status, _, body = raw(server, method, path, {}, headers)
    assert status == 401 and body["error"]["type"] == "authentication_error" and body["error"]["code"] == "invalid_api_key"


def test_with_the_key_the_api_answers_and_health_needs_none(server, model_dirs):
    status, _, body = raw(server, "GET", "/v1/models", headers=AUTH)
    assert status == 200 and [m["id"] for m in body["data"]] == [model_dirs["lm"]]
    assert raw(server, "GET", "/health")[0] == 200
    with closing(connect(server)) as conn:
        conn.request("GET", "/")
        assert conn.getresponse().status == 200


@pytest.mark.parametrize(("origin", "allowed"), [(ORIGIN, True), ("http://evil.test", False)])
def test_cors_allows_only_the_given_origin(server, origin, allowed):
    with closing(connect(server)) as conn:
        conn.request("OPTIONS", "/v1/chat/completions", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        response = conn.getresponse()
        response.read()
    assert (response.status == 200) == allowed
    assert response.getheader("access-control-allow-origin") == (origin if allowed else None)


def test_a_reply_over_the_time_limit_is_a_504(server, model_dirs):
    status, _, body = raw(server, "POST", "/v1/completions", {"model": model_dirs["lm"], "prompt": "a", "max_tokens": 400},
                          AUTH)
    assert status == 504 and body["error"]["type"] == "timeout_error"


def test_a_stream_over_the_time_limit_ends_with_an_error_chunk_then_done(server, model_dirs):
    body = {"model": model_dirs["lm"], "messages": [{"role": "user", "content": "hi"}], "max_tokens": 400, "stream": True}
    with closing(connect(server)) as conn:
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json", **AUTH})
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("content-type").startswith("text/event-stream")
        events = [e.removeprefix("data: ") for e in response.read().decode().split("\n\n") if e]
    assert events[-1] == "[DONE]"
    assert json.loads(events[0])["choices"][0]["delta"]["role"] == "assistant"
    assert json.loads(events[-2])["error"]["message"] == "the request took longer than the server's time limit"


def test_sigterm_the_moment_the_url_is_printed_exits_cleanly(model_dirs):
    """SIGTERM can come before uvicorn has installed its handlers: it must still end the server with 0."""
    code, output = Server("--model", model_dirs["chat"]).stop()
    assert code == 0, output
