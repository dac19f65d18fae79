"""The request bodies the API accepts, validated as OpenAI validates them: unknown fields are ignored,
wrong types and out-of-range values are rejected (strictly: "1" is not a number; nor is NaN, nor
Infinity), and so is any body no request can be (nested too deep, strings that are not Unicode): every
field is checked here, before anything reaches the engine."""

from __future__ import annotations

import json
import re
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gptkit.inference import SamplingConfig
from gptkit.inference.sampling import MAX_SEED, offset_seed

MAX_DEPTH = 64  # arrays and objects inside each other; a request needs a handful
SURROGATE = re.compile(r"[\ud800-\udfff]")  # json.loads pairs the valid ones: any left is lone, and no text
STRICT = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)


class ApiError(Exception):
    """An error the client sees as OpenAI's error body, with this HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class Request(BaseModel):
    model_config = STRICT
    default_max_tokens: ClassVar[int | None] = None  # None: what the server allows

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, le=MAX_SEED)  # torch's generators take a uint64
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    stream: bool = False
    stream_options: StreamOptions | None = None
    top_k: int | None = Field(None, ge=1)  # gptkit's extensions
    repetition_penalty: float = Field(1.0, gt=0)

    @property
    def stops(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > 4 or not all(stops):
            raise ApiError(400, "stop must be a non-empty string or a list of at most 4 non-empty strings", "stop")
        return stops

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    def sampling(self, max_tokens: int, choice: int) -> SamplingConfig:
        """The sampler's settings for choice number ``choice``: each choice has its own seed."""
        return SamplingConfig(max_new_tokens=max_tokens, temperature=self.temperature, top_k=self.top_k,
                              top_p=self.top_p, repetition_penalty=self.repetition_penalty,
                              presence_penalty=self.presence_penalty, frequency_penalty=self.frequency_penalty,
                              seed=offset_seed(self.seed, choice))


class StreamOptions(BaseModel):
    model_config = STRICT
    include_usage: bool = False


class TextPart(BaseModel):
    model_config = STRICT
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = STRICT
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    @property
    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatRequest(Request):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)


class CompletionRequest(Request):
    prompt: str | list[str]  # "" starts from end-of-text, as GPT-2's unconditional samples do
    default_max_tokens: ClassVar[int | None] = 16  # OpenAI's default for completions (capped at the server's limit)
    logprobs: int | None = Field(None, ge=0, le=5)


def loads(body: bytes) -> object:
    """The body's JSON, or a 400 when it is not JSON or not one a request can be."""
    try:
        data = json.loads(body)
    except RecursionError:  # json.loads nests by recursion: this body nests far deeper than MAX_DEPTH
        raise too_deep() from None
    except ValueError as e:  # also UnicodeDecodeError
        raise ApiError(400, f"the request body is not valid JSON: {e}", code="invalid_json") from None
    check_values(data)
    return data


def check_values(data: object) -> None:
    """Refuse nesting deeper than MAX_DEPTH and strings with lone surrogates (a JSON escape such as
    \\ud800 alone), which no tokenizer can encode. A loop, not recursion, whatever the depth."""
    stack: list[tuple[object, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if not isinstance(value, (dict, list)):
            continue
        if len(path) >= MAX_DEPTH:
            raise too_deep()
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            if isinstance(key, str) and SURROGATE.search(key):
                raise not_unicode(param_name(path))  # the key itself cannot be named
            if isinstance(item, str) and SURROGATE.search(item):
                raise not_unicode(param_name((*path, key)))
            stack.append((item, (*path, key)))


def not_unicode(param: str | None) -> ApiError:
    return ApiError(400, f"{param or 'the request body'}: a string holds a lone UTF-16 surrogate, which is not text; "
                         "send valid Unicode (a character past U+FFFF as a pair of \\u escapes)", param, "invalid_unicode")


def too_deep() -> ApiError:
    return ApiError(400, f"the request body nests arrays and objects more than {MAX_DEPTH} deep; no request needs that",
                    code="invalid_json")


def param_name(path: tuple[str | int, ...]) -> str | None:
    """A field's location as OpenAI's ``param`` names it: messages.[0].content."""
    return ".".join(f"[{p}]" if isinstance(p, int) else p for p in path) or None


def parse(kind: type[Request], data: object) -> Request:
    """A validated request, or ApiError naming the first offending field."""
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:
        return kind.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        # The location without pydantic's names for the members of a union ("str", "list[str]")
        param = param_name(tuple(p for p in first["loc"] if isinstance(p, int) or p in FIELDS))
        raise ApiError(400, f"{param}: {first['msg']}" if param else first["msg"], param) from None


FIELDS = {name for model in (ChatRequest, CompletionRequest, StreamOptions, Message, TextPart) for name in model.model_fields}
