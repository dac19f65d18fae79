"""Generated tokens -> the text a client sees: whole characters only, cut exactly before a stop
string, even when the stop string arrives split across tokens (and so across streamed chunks)."""

from __future__ import annotations

from gptkit.inference.generate import TextDecoder
from gptkit.tokenizer import Tokenizer


class StopText:
    """Text pieces in, text out that never reaches a stop string; a tail that could still become one
    is held back until the next piece decides."""

    def __init__(self, stops: list[str]):
        self.stops, self.held, self.stopped = stops, "", False

    def push(self, piece: str) -> str:
        if self.stopped:
            return ""
        text = self.held + piece
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.held, self.stopped = "", True
            return text[:cut]
        # Only as much as the text holds: a megabyte stop string must not cost a megabyte's prefixes a token.
        keep = max((n for s in self.stops for n in range(1, min(len(s), len(text) + 1)) if text.endswith(s[:n])),
                   default=0)
        self.held = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        text, self.held = self.held, ""
        return text


class ChoiceText:
    """One choice's tokens -> its text, stopping at the first stop string. ``lstrip``: without the
    whitespace it starts with (a chat reply: the space or newline a template's ``Assistant:`` cues)."""

    def __init__(self, tokenizer: Tokenizer, stops: list[str], lstrip: bool = False):
        self.decoder, self.stop = TextDecoder(tokenizer), StopText(stops)
        self.started = not lstrip

    @property
    def stopped(self) -> bool:
        return self.stop.stopped

    def push(self, token: int) -> str:
        return self.start(self.stop.push(self.decoder.push(token)))

    def flush(self) -> str:
        """The text still held back once the choice ended without a stop string."""
        return self.start(self.stop.push(self.decoder.flush()) + self.stop.flush())

    def start(self, text: str) -> str:
        """After the stop strings (a reply may stop at once), whitespace before the first text goes."""
        if not self.started:
            text = text.lstrip()
            self.started = bool(text)
        return text
