"""The request bodies the API accepts, validated as OpenAI validates them: unknown fields are ignored,
wrong types and out-of-range values are rejected (strictly: "1" is not a number)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gptkit.inference import SamplingConfig


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
    model_config = ConfigDict(strict=True, extra="ignore")

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
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
                              seed=None if self.seed is None else self.seed + choice)


class StreamOptions(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    include_usage: bool = False


class TextPart(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
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
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for completions
    logprobs: int | None = Field(None, ge=0, le=5)


def parse(kind: type[Request], data: object) -> Request:
    """A validated request, or ApiError naming the first offending field."""
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:
        return kind.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        # The location without pydantic's names for the members of a union ("str", "list[str]")
        path = [p for p in first["loc"] if isinstance(p, int) or p in FIELDS]
        param = ".".join(f"[{p}]" if isinstance(p, int) else p for p in path) or None
        raise ApiError(400, f"{param}: {first['msg']}" if param else first["msg"], param) from None


FIELDS = {name for model in (ChatRequest, CompletionRequest, StreamOptions, Message, TextPart) for name in model.model_fields}
