"""The HTTP API: OpenAI's completions, chat completions and models routes, plus /health, /metrics
and the chat page at /. Every error is OpenAI's error body; an error after a stream started is a
last data chunk, then ``[DONE]``."""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request as HttpRequest

from gptkit.chat.mmi import rerank
from gptkit.serve.engine import Busy, Finish, TooMany
from gptkit.serve.generation import Delta, Generation
from gptkit.serve.metrics import Metrics
from gptkit.serve.models import ServedModel
from gptkit.serve.schema import ApiError, ChatRequest, CompletionRequest, Request, loads, parse
from gptkit.serve.template import render
from gptkit.tokenizer.base import unknown_note

ROUTES = ("/", "/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions")
WARNING_HEADER = "X-Gptkit-Warning"


@dataclass
class Limits:
    max_body_bytes: int = 1 << 20
    max_prompt_tokens: int | None = None  # None: what fits the context
    max_tokens: int = 1024  # per choice; never more than fits the context
    max_n: int = 16
    request_timeout: float = 300.0  # seconds a request may generate


@dataclass
class ServerConfig:
    api_key: str | None = None  # required as a Bearer token on /v1/* when set
    cors_origins: list[str] = field(default_factory=list)  # CORS stays off without any
    limits: Limits = field(default_factory=Limits)


def create_app(models: dict[str, ServedModel], cfg: ServerConfig, metrics: Metrics) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for served in models.values():
            served.engine.start()
        yield  # uvicorn drains in-flight responses before this returns
        for served in models.values():
            served.engine.stop()

    app = FastAPI(title="gptkit", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    api = Api(models, cfg, metrics)
    app.add_middleware(Guard, api_key=cfg.api_key, metrics=metrics)
    if cfg.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cfg.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"], expose_headers=[WARNING_HEADER])
    app.add_exception_handler(ApiError, lambda request, e: error_response(e))
    app.add_exception_handler(Exception, lambda request, e: error_response(  # a bug; the log has the traceback
        ApiError(500, "internal server error; the server log has the details", type="server_error")))
    app.add_exception_handler(HTTPException, lambda request, e: error_response(
        ApiError(e.status_code, f"{request.method} {request.url.path}: {e.detail}")))
    app.get("/", response_class=HTMLResponse)(page)
    app.get("/health")(lambda: {"status": "ok"})
    app.get("/metrics")(lambda: Response(metrics.render(), media_type=metrics.content_type))
    app.get("/v1/models")(api.list_models)
    app.post("/v1/completions")(api.completions)
    app.post("/v1/chat/completions")(api.chat_completions)
    return app


def error_response(e: ApiError) -> JSONResponse:
    return JSONResponse(e.body(), e.status, headers=e.headers)


def page() -> HTMLResponse:
    """The chat page, shipped inside the package (no CDN: it works offline)."""
    path = resources.files("gptkit.serve") / "static" / "index.html"
    if not path.is_file():
        raise ApiError(404, "the chat page is not installed with this copy of gptkit", code="not_found")
    return HTMLResponse(path.read_text(encoding="utf-8"))


class Guard:
    """ASGI middleware: the API key on /v1/*, and every response counted by route and status."""

    def __init__(self, app, api_key: str | None, metrics: Metrics):
        self.app, self.metrics = app, metrics
        self.expected = f"Bearer {api_key}".encode() if api_key else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500

        async def counting_send(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if self.refused(scope):
                await error_response(ApiError(401, "missing or wrong API key: send it as 'Authorization: Bearer KEY'",
                                              code="invalid_api_key", type="authentication_error"))(scope, receive, counting_send)
            else:
                await self.app(scope, receive, counting_send)
        finally:
            path = scope["path"] if scope["path"] in ROUTES else "other"
            self.metrics.requests.labels(path, str(status)).inc()

    def refused(self, scope) -> bool:
        if self.expected is None or not scope["path"].startswith("/v1/") or scope["method"] == "OPTIONS":
            return False
        return not hmac.compare_digest(Headers(scope=scope).get("authorization", "").encode(), self.expected)


class Api:
    def __init__(self, models: dict[str, ServedModel], cfg: ServerConfig, metrics: Metrics):
        self.models, self.cfg, self.limits, self.metrics = models, cfg, cfg.limits, metrics
        self.created = int(time.time())

    def list_models(self) -> dict:
        # max_model_len (as vLLM names it): the context, which prompt and reply share
        # mmi: whether --mmi-model reranks the model's non-streamed chat replies (the chat page says so)
        return {"object": "list", "data": [{"id": name, "object": "model", "created": self.created, "owned_by": "gptkit",
                                            "max_model_len": served.context, "mmi": served.reranks}
                                           for name, served in self.models.items()]}

    async def completions(self, request: HttpRequest) -> Response:
        req = parse(CompletionRequest, await self.read_json(request))
        served = self.checked_model(req)
        texts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        if not texts:
            raise ApiError(400, "prompt must not be an empty list", "prompt")
        max_tokens = self.max_tokens(served, req.max_tokens, req.default_max_tokens)
        prompts = [self.check_prompt(self.encode(served, t), served, max_tokens, "prompt") for t in texts]
        gen = self.start(served, req, prompts, max_tokens, req.stops, req.logprobs)
        shape = CompletionShape(served, req, texts)
        if req.stream:
            return self.stream(gen, shape, req)
        return JSONResponse(shape.response(await self.collect(gen, request), gen.usage()), headers=shape.headers())

    async def chat_completions(self, request: HttpRequest) -> Response:
        req = parse(ChatRequest, await self.read_json(request))
        served = self.checked_model(req)
        asked = req.max_completion_tokens or req.max_tokens
        max_tokens = self.max_tokens(served, asked)
        # The reply's room: as asked, or unasked what leaves the prompt at least half the context. Old
        # turns make way for it; a latest message too long for it leaves the reply what remains.
        reserve = max_tokens if asked else min(max_tokens, served.context // 2)
        prompt = render(served.template, served.tokenizer, req.messages, served.context, reserve)
        max_tokens = min(max_tokens, served.context - len(prompt.ids))
        ids = self.check_prompt(prompt.ids, served, max_tokens, "messages")
        shape = ChatShape(served, req, [m.text for m in req.messages])
        stops = req.stops + prompt.stops
        if req.stream:
            return self.stream(self.start(served, req, [ids], max_tokens, stops, lstrip=True), shape, req)
        if served.reranks:
            reply = await self.mmi_reply(request, served, req, prompt.turns, ids, max_tokens, stops, shape)
            return JSONResponse(reply, headers=shape.headers())
        gen = self.start(served, req, [ids], max_tokens, stops, lstrip=True)
        return JSONResponse(shape.response(await self.collect(gen, request), gen.usage()), headers=shape.headers())

    async def mmi_reply(self, request: HttpRequest, served: ServedModel, req: ChatRequest, turns: list[str], ids: list[int],
                        max_tokens: int, stops: list[str], shape: ChatShape) -> dict:
        """Sample several replies and keep the ``n`` the backward model ranks best (as ``gptkit chat``)."""
        samples = req.model_copy(update={"n": max(req.n, served.num_hypotheses)})
        gen = self.start(served, samples, [ids], max_tokens, stops, lstrip=True)
        choices = await self.collect(gen, request)
        finished = [c for c in choices if c.finish_reason == "stop"] or choices  # unfinished replies only if nothing finished
        ranked = await asyncio.to_thread(rerank, served.model, served.backward, served.tokenizer, turns,
                                         [[t.id for t in c.tokens] for c in finished])
        by_text = {c.text.strip(): c for c in finished}
        ranked_choices = [by_text[h.text] for h in ranked if h.text in by_text]
        best = (ranked_choices + [c for c in finished if c not in ranked_choices])[: req.n]
        return shape.response([Delta(i, c.text, c.tokens, c.finish_reason) for i, c in enumerate(best)], gen.usage(best))

    # --- request checks ---------------------------------------------------------------------

    async def read_json(self, request: HttpRequest) -> object:
        limit = self.limits.max_body_bytes
        too_large = ApiError(413, f"the request body is larger than the server's limit of {limit} bytes",
                             code="request_too_large")
        if int(request.headers.get("content-length") or 0) > limit:
            raise too_large
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
        return loads(body)

    def checked_model(self, req: Request) -> ServedModel:
        """The model a request names, once the checks every request gets have passed."""
        if req.model not in self.models:
            raise ApiError(404, f"the model '{req.model}' does not exist; this server has: {', '.join(self.models)}",
                           "model", "model_not_found")
        if req.n > self.limits.max_n:
            raise ApiError(400, f"n: at most {self.limits.max_n} choices per request", "n")
        return self.models[req.model]

    def max_tokens(self, served: ServedModel, asked: int | None, default: int | None = None) -> int:
        """The reply's length limit: as asked, or by default (``None``: what the server allows), which
        the server's limit caps: a request that leaves max_tokens out is never refused for it."""
        limit = min(self.limits.max_tokens, served.context - 1)
        if asked is not None and asked > limit:
            raise ApiError(400, f"max_tokens is {asked}, more than this server's limit of {limit}", "max_tokens")
        return asked or min(default or limit, limit)

    def encode(self, served: ServedModel, text: str) -> list[int]:
        """A completion prompt's tokens; an empty prompt starts from end-of-text, as GPT-2's samples do."""
        ids = served.tokenizer.encode(text)
        if not ids and served.tokenizer.eot_id is None:
            raise ApiError(400, "an empty prompt needs an end-of-text token, which this model's vocabulary lacks", "prompt")
        return ids or [served.tokenizer.eot_id]

    def check_prompt(self, ids: list[int], served: ServedModel, max_tokens: int, param: str) -> list[int]:
        limit = self.limits.max_prompt_tokens
        if limit is not None and len(ids) > limit:
            raise ApiError(400, f"the prompt has {len(ids)} tokens, more than this server's limit of {limit}", param,
                           "context_length_exceeded")
        if len(ids) + max_tokens > served.context:
            raise ApiError(400, f"this model's context is {served.context} tokens, but {len(ids)} in the prompt plus "
                                f"max_tokens {max_tokens} make {len(ids) + max_tokens}; shorten the prompt or lower max_tokens",
                           param, "context_length_exceeded")
        return ids

    def start(self, served: ServedModel, req: Request, prompts: list[list[int]], max_tokens: int, stops: list[str],
              logprobs: int | None = None, lstrip: bool = False) -> Generation:
        """``lstrip``: a chat reply, which starts at its first text, not at the template's separator."""
        try:
            gen = Generation(served, req, prompts, max_tokens, stops, self.limits.request_timeout, logprobs, lstrip)
        except Busy as e:
            raise ApiError(503, str(e), code="server_busy", type="server_error", headers={"Retry-After": "1"}) from None
        except TooMany as e:  # no retry can help
            raise ApiError(400, str(e), "n", "too_many_sequences") from None
        self.metrics.prompt_tokens.inc(gen.prompt_tokens)
        return gen

    # --- responses --------------------------------------------------------------------------

    @staticmethod
    async def collect(gen: Generation, request: HttpRequest) -> list[Delta]:
        """Every choice whole; a client that disconnects first cancels them (before the next step)."""
        watcher = asyncio.create_task(cancel_on_disconnect(request, gen))
        try:
            choices = await gen.collect()
        finally:
            watcher.cancel()
            gen.cancel()
        if failure := next((c.failure for c in choices if c.failure), None):
            raise failure_error(failure)
        return choices

    def stream(self, gen: Generation, shape: Shape, req: Request) -> Response:
        return EventStream(server_sent_events(gen, shape, req.include_usage), on_close=gen.cancel, headers=shape.headers())


def failure_error(failure: Finish) -> ApiError:
    if failure.reason == "timeout":
        return ApiError(504, failure.error, type="timeout_error")
    return ApiError(500, failure.error, type="server_error")


async def cancel_on_disconnect(request: HttpRequest, gen: Generation) -> None:
    """With the body read, the next message the server receives is the client's disconnect."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    gen.cancel()


class EventStream(StreamingResponse):
    """Server-Sent Events that cancel their generation however the response ends: finished, failed,
    or the client gone (Starlette stops the response when it receives the disconnect)."""

    def __init__(self, events: AsyncIterator[str], on_close: Callable[[], None], headers: dict[str, str]):
        super().__init__(events, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers})
        self.on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


async def server_sent_events(gen: Generation, shape: Shape, include_usage: bool) -> AsyncIterator[str]:
    notes = shape.notes()  # on the first chunk only

    def event(data: dict) -> str:
        nonlocal notes
        data, notes = {**data, **notes}, {}
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    extra = {"usage": None} if include_usage else {}
    for chunk in shape.opening(len(gen.sequences)):
        yield event({**chunk, **extra})
    async for delta in gen.deltas():
        if delta.failure:
            yield event(failure_error(delta.failure).body())
            break
        yield event({**shape.chunk(delta), **extra})
    else:
        if include_usage:
            yield event({**shape.header(chunk=True), "choices": [], "usage": gen.usage()})
    yield "data: [DONE]\n\n"


class Shape:
    """OpenAI's response objects for one request: the whole response and its stream's chunks."""

    kind: str  # the prefix of the id
    object: str  # the type of the whole response
    chunk_object: str  # the type of a stream's chunk

    def __init__(self, served: ServedModel, req: Request, texts: list[str]):
        """``texts``: what the request gives the model to read (a prompt, the messages)."""
        self.served, self.req = served, req
        self.id, self.created = f"{self.kind}-{uuid.uuid4().hex}", int(time.time())
        self.unknown = served.tokenizer.unknown_characters("\n".join(texts))

    def notes(self) -> dict:
        """Beside OpenAI's fields (clients keep unknown ones): ``warnings``, when the model cannot read
        part of the request, each with a ``code`` and a ``message``."""
        if not self.unknown:
            return {}
        return {"warnings": [{"code": "unknown_characters", "message": unknown_note(self.unknown),
                              "characters": self.unknown}]}

    def headers(self) -> dict[str, str]:
        """The same warning as an HTTP header, in ASCII (code points): it comes before a stream's first chunk."""
        if not self.unknown:
            return {}
        return {WARNING_HEADER: unknown_note([f"U+{ord(c):04X}" for c in self.unknown])}

    def header(self, chunk: bool = False) -> dict:
        return {"id": self.id, "object": self.chunk_object if chunk else self.object, "created": self.created,
                "model": self.served.name}

    def opening(self, n: int) -> list[dict]:
        return []


class ChatShape(Shape):
    kind, object, chunk_object = "chatcmpl", "chat.completion", "chat.completion.chunk"

    def response(self, choices: list[Delta], usage: dict) -> dict:
        return {**self.header(), "choices": [
            {"index": c.index, "message": {"role": "assistant", "content": c.text}, "logprobs": None,
             "finish_reason": c.finish_reason} for c in choices], "usage": usage, **self.notes()}

    def opening(self, n: int) -> list[dict]:
        """Each choice's first chunk names the role."""
        return [{**self.header(chunk=True), "choices": [
            {"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}]}
            for i in range(n)]

    def chunk(self, d: Delta) -> dict:
        delta = {"content": d.text} if d.text else {}
        return {**self.header(chunk=True), "choices": [
            {"index": d.index, "delta": delta, "logprobs": None, "finish_reason": d.finish_reason}]}


class CompletionShape(Shape):
    kind, object, chunk_object = "cmpl", "text_completion", "text_completion"

    def response(self, choices: list[Delta], usage: dict) -> dict:
        return {**self.header(), "choices": [self.choice(c) for c in choices], "usage": usage, **self.notes()}

    def chunk(self, d: Delta) -> dict:
        return {**self.header(chunk=True), "choices": [self.choice(d)]}

    def choice(self, d: Delta) -> dict:
        return {"index": d.index, "text": d.text, "logprobs": self.logprobs(d), "finish_reason": d.finish_reason}

    def logprobs(self, d: Delta) -> dict | None:
        """OpenAI's legacy logprobs: each token, its log-probability, the most likely alternatives."""
        if self.req.logprobs is None:
            return None
        decode = self.served.tokenizer.decode
        tokens = [decode([t.id]) for t in d.tokens]
        offsets = list(itertools.accumulate(map(len, tokens), initial=0))[:-1]  # where each token's text starts
        return {"tokens": tokens, "token_logprobs": [t.logprob for t in d.tokens],
                "top_logprobs": [{decode([i]): lp for i, lp in t.top or []} for t in d.tokens], "text_offset": offsets}
