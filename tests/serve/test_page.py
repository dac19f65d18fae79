"""The chat page (gptkit/serve/static/index.html) in headless Chromium against a real `gptkit serve`.

A conversation in English and Chinese, a long reply stopped mid-stream (and cancelled on the server),
a new conversation, a reload that restores both from localStorage, a phone-sized screen, and a server
that wants an API key and fails requests. With a model of the demo's 128-token context: a conversation
ten times longer, a failed turn that later ones leave out, and the heading and the MMI note following
the model picked. Every wait is on a condition in the page or the server,
never a fixed sleep. Without chromium these tests skip, except under CI=true, where they fail.

GPTKIT_UPDATE_SCREENSHOT=1 rewrites docs/img/serve_chat.png (install a CJK font, e.g. Debian's
fonts-wqy-microhei, or the Chinese shows as boxes).
"""

from __future__ import annotations

import os
import shutil
import string
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect, sync_playwright

from gptkit.chat.examples import DIALOGUE_TEMPLATE
from gptkit.tokenizer import Tokenizer
from tests.conftest import tiny_model
from tests.serve.conftest import Server, pin_special_tokens_low

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "serve_chat.png"
MODEL = "runs/chat"
CONTEXT = 8192
DEMO, DEMO_CONTEXT = "runs/demo", 128  # a plain language model with the demo's context (make demo)
MMI = "runs/chat-mmi"
TURN = "Good morrow, my lord! What news from the court, pray you?"  # 57 characters, as the newcomer's first
LONG_REPLY = 8000  # tokens: tens of seconds to generate on a CPU, so Stop lands mid-stream
VOCABULARY = string.ascii_letters + string.digits + " .,;:!?'-" + "你好今天气怎么样很我们去公园吧的是不了人有在这，。？！"
ENGLISH = "Good morrow, my lord.\nWhat news?"  # typed with Shift+Enter between the lines
TITLE = "Good morrow, my lord."  # the conversation's name: its first line
CHINESE = "你好，今天天气怎么样？"
TIMEOUT_MS = 60_000  # generous: the machine may be loaded; no wait below expects to come near it
expect.set_options(timeout=TIMEOUT_MS)


# --- the browser -------------------------------------------------------------------------------

def find_chromium() -> str | None:
    found = shutil.which("chromium")
    return found or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)


@pytest.fixture(scope="module")
def browser():
    path = find_chromium()
    if path is None:
        why = "the chat page tests need Debian's chromium (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}; .ci/run installs it when it is missing")
        pytest.skip(why)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[Page]:
    """A fresh page (empty localStorage) that fails the test on any uncaught script error."""
    context = browser.new_context(viewport={"width": 1200, "height": 760}, locale="en-US", reduced_motion="reduce")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"script errors in the page: {errors}"


# --- the server --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A directory holding tiny untrained models over English and Chinese characters: runs/chat, a
    dialogue model, and runs/demo, a plain language model with a short context, whose replies never
    end by themselves; and runs/chat-mmi, a backward model for runs/chat."""
    root = tmp_path_factory.mktemp("serve_page")
    tokenizer = Tokenizer.char(VOCABULARY)
    tiny_model(1, vocab_size=tokenizer.vocab_size, block_size=DEMO_CONTEXT).save_pretrained(root / MMI, tokenizer)
    demo = tiny_model(2, vocab_size=tokenizer.vocab_size, block_size=DEMO_CONTEXT)
    pin_special_tokens_low(demo, tokenizer)
    demo.save_pretrained(root / DEMO, tokenizer)
    tokenizer.chat_template = DIALOGUE_TEMPLATE  # as `gptkit dialogue train` saves it
    model = tiny_model(vocab_size=tokenizer.vocab_size, block_size=CONTEXT)
    pin_special_tokens_low(model, tokenizer)
    model.save_pretrained(root / MODEL, tokenizer)
    return root


def wait_until_idle(server: Server, timeout: float = 60.0) -> None:
    """Until no sequence is being decoded: the server's own view, polled."""
    deadline = time.monotonic() + timeout
    while server.metric("gptkit_running_sequences") or server.metric("gptkit_queue_depth"):
        assert time.monotonic() < deadline, f"the server still decodes after {timeout:.0f} s"
        time.sleep(0.02)  # the polling interval, not a wait for something to happen


@pytest.fixture(scope="module")
def server(workdir) -> Iterator[Server]:
    server = Server("--model", MODEL, "--max-tokens", str(LONG_REPLY), cwd=workdir)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def demo_server(workdir) -> Iterator[Server]:
    """runs/chat, reranked by runs/chat-mmi, and runs/demo."""
    server = Server("--model", MODEL, "--model", DEMO, "--mmi-model", MMI, "--max-batch", "4", cwd=workdir)
    yield server
    server.stop()


# --- the page ----------------------------------------------------------------------------------

def last_reply(page: Page):
    return page.locator(".message.assistant").last


def open_settings(page: Page) -> None:
    settings = page.get_by_role("button", name="Settings")
    if settings.get_attribute("aria-expanded") == "false":
        settings.click()
    expect(page.get_by_role("region", name="Settings")).to_be_visible()


def set_setting(page: Page, label: str, value) -> None:
    open_settings(page)
    page.get_by_label(label, exact=True).fill(str(value))


def say(page: Page, text: str) -> None:
    """Type ``text`` as a person would, Shift+Enter between its lines, and send it with Enter."""
    prompt = page.get_by_label("Message", exact=True)
    first, *rest = text.split("\n")
    prompt.fill(first)
    for line in rest:
        prompt.press("Shift+Enter")
        page.keyboard.insert_text(line)
    expect(prompt).to_have_value(text)  # nothing sent yet
    prompt.press("Enter")


def reply_text(page: Page) -> str:
    return last_reply(page).locator(".text").text_content()


def wait_for_reply_longer_than(page: Page, length: int) -> dict:
    """The streaming reply's length and status once it has more than ``length`` characters."""
    grown = page.wait_for_function(
        """length => {
            const reply = [...document.querySelectorAll(".message.assistant")].pop();
            const text = reply?.querySelector(".text").textContent ?? "";
            return text.length > length && {length: text.length, status: reply.dataset.status};
        }""", arg=length)
    return grown.json_value()


def press_stop(page: Page, server: Server) -> None:
    try:
        page.get_by_role("button", name="Stop").click(timeout=15_000)
    except PlaywrightError as error:
        reply = last_reply(page)
        raise AssertionError(
            f"could not press Stop: the reply is {reply.get_attribute('data-status')!r} with "
            f"{len(reply_text(page))} characters and the note {reply.locator('.meta').text_content()!r}; "
            f"the server said:\n{''.join(server.output[-30:])}") from error


def pick_model(page: Page, model: str) -> None:
    picker = page.get_by_label("Model", exact=True)
    expect(picker.locator("option")).to_have_count(2)  # listed by /v1/models
    picker.select_option(model)


def sent_chat(page: Page):
    """The chat request the page sends inside the ``with`` block (``.value`` once it is over)."""
    return page.expect_request(lambda request: request.url.endswith("/v1/chat/completions"))


def conversation_titles(page: Page) -> list[str]:
    return page.locator(".conversation-title").all_text_contents()


# --- the tests ---------------------------------------------------------------------------------

def test_chat_streams_stops_and_remembers(page: Page, server: Server):
    page.goto(server.url)
    expect(page.get_by_label("Model", exact=True)).to_have_value(MODEL)  # listed by /v1/models
    expect(page.locator(".welcome")).to_contain_text(MODEL)

    # English, then Chinese in the same conversation; each reply runs to max tokens (12 characters).
    set_setting(page, "Max tokens", 12)
    replies = []
    for count, text in enumerate((ENGLISH, CHINESE), start=1):
        say(page, text)
        expect(page.locator(".message.assistant")).to_have_count(count)
        expect(last_reply(page)).to_have_attribute("data-status", "length")
        expect(last_reply(page).locator(".meta")).to_have_text(
            "Cut at the length limit (the reply's max tokens, or the room the model's context leaves)")
        replies.append(reply_text(page))
        assert 0 < len(replies[-1]) <= 12, replies
    assert page.locator(".message.user .text").all_text_contents() == [ENGLISH, CHINESE]
    expect(page.locator(".message.user").last).to_have_attribute("lang", "zh")
    assert conversation_titles(page) == [TITLE]
    first = page.locator(".message .text").all_text_contents()

    # A new conversation; a long reply, seen growing, stopped mid-stream.
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".message")).to_have_count(0)
    expect(page.locator(".welcome")).to_be_visible()
    set_setting(page, "Max tokens", LONG_REPLY)
    tokens_before = server.metric("gptkit_completion_tokens_total")
    say(page, "Tell me a long story.")
    seen = [wait_for_reply_longer_than(page, 0)]
    seen.append(wait_for_reply_longer_than(page, seen[0]["length"]))
    assert [s["status"] for s in seen] == ["streaming", "streaming"], seen
    press_stop(page, server)
    expect(last_reply(page)).to_have_attribute("data-status", "stopped")
    expect(last_reply(page).locator(".meta")).to_have_text("Stopped")
    expect(page.get_by_role("button", name="Send")).to_be_visible()

    # The server cancelled it: it stops decoding long before max tokens, and the page shows no more.
    wait_until_idle(server)
    generated = server.metric("gptkit_completion_tokens_total") - tokens_before
    stopped_text = reply_text(page)
    assert seen[1]["length"] <= len(stopped_text) <= generated < LONG_REPLY, (seen, len(stopped_text), generated)
    assert conversation_titles(page) == ["Tell me a long story.", TITLE]  # newest first

    # A reload restores both conversations from localStorage, the newest one open.
    page.reload()
    expect(page.locator(".message.user .text")).to_have_text(["Tell me a long story."])
    expect(last_reply(page)).to_have_attribute("data-status", "stopped")
    assert reply_text(page) == stopped_text
    page.locator(".conversation-open", has_text=TITLE).click()
    expect(page.locator(".message .text")).to_have_text(first)
    expect(page.locator(".conversation[aria-current=true] .conversation-title")).to_have_text(TITLE)

    if os.environ.get("GPTKIT_UPDATE_SCREENSHOT") == "1":
        set_setting(page, "Max tokens", 64)
        page.get_by_label("Message", exact=True).fill("What says the king?")
        page.screenshot(path=SCREENSHOT)

    # A phone-sized screen: nothing wider than the screen, the conversations behind a menu.
    page.set_viewport_size({"width": 390, "height": 844})
    assert_no_horizontal_overflow(page)
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    page.get_by_role("button", name="Show conversations").click()
    expect(page.locator("#sidebar")).to_be_in_viewport()
    page.locator(".conversation-open", has_text="Tell me a long story.").click()
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    expect(page.locator(".message.user .text")).to_have_text(["Tell me a long story."])
    expect(page.get_by_role("button", name="Send")).to_be_in_viewport()
    expect(page.get_by_label("Model", exact=True)).to_have_value(MODEL)  # its label hidden, not gone
    open_settings(page)
    assert_no_horizontal_overflow(page)


def assert_no_horizontal_overflow(page: Page) -> None:
    widths = page.evaluate("""() => [...document.querySelectorAll("body, body *")]
        .filter((e) => e.checkVisibility() && !e.closest(".sidebar:not(.open)"))
        .map((e) => e.getBoundingClientRect().right)""")
    viewport = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport
    assert max(widths) <= viewport + 0.5, f"an element reaches x={max(widths)} on a {viewport}px screen"


def test_api_key_and_errors(page: Page, workdir: Path):
    """A server that wants a key: the page asks for it, then uses it. Errors show as the server wrote
    them: an HTTP error body, and an error that ends a stream after it started."""
    server = Server("--model", MODEL, "--api-key", "sesame", "--max-tokens", "100", "--request-timeout", "0.001",
                    cwd=workdir)
    try:
        page.goto(server.url)
        expect(page.locator("#notice")).to_contain_text("The server needs an API key")
        key = page.get_by_label("API key", exact=True)
        expect(key).to_be_focused()
        key.fill("sesame")
        key.press("Enter")
        expect(page.get_by_label("Model", exact=True)).to_have_value(MODEL)
        expect(page.locator("#notice")).to_be_hidden()

        set_setting(page, "Max tokens", 101)  # the key is sent: a 400 for max_tokens comes only after it passed
        say(page, ENGLISH)
        expect(last_reply(page)).to_have_attribute("data-status", "error")
        expect(last_reply(page)).to_contain_text("max_tokens is 101, more than this server's limit of 100")
        expect(last_reply(page)).to_contain_text("(HTTP 400)")

        set_setting(page, "Max tokens", 100)
        say(page, CHINESE)  # the 1 ms time limit passes after the stream opened
        expect(last_reply(page)).to_have_attribute("data-status", "error")
        expect(last_reply(page)).to_contain_text("time limit")
        expect(last_reply(page)).not_to_contain_text("HTTP")  # an error chunk, not an error status
    finally:
        server.stop()


def test_a_conversation_ten_times_longer_than_the_context_gets_every_reply(page: Page, demo_server: Server):
    """Each turn alone and the default 64 reply tokens overflow the 128-token context: the server keeps
    the latest turn and shortens the reply to what fits, and no reply starts with the template's space."""
    page.goto(demo_server.url)
    pick_model(page, DEMO)
    for turn in range(1, 11):
        text = f"{turn:02} {TURN}"
        assert len(text) == 60
        say(page, text)
        expect(page.locator(".message.assistant")).to_have_count(turn)
        expect(last_reply(page)).to_have_attribute("data-status", "length")
        reply = reply_text(page)
        assert 0 < len(reply) <= DEMO_CONTEXT - len(f"User: {text}\nAssistant:") and reply == reply.lstrip(), reply
    assert len(page.locator(".message .text").all_text_contents()) == 20


def test_a_failed_turn_is_left_out_of_the_next_request(page: Page, demo_server: Server):
    page.goto(demo_server.url)
    pick_model(page, DEMO)
    say(page, TURN)
    expect(last_reply(page)).to_have_attribute("data-status", "length")
    first_reply = reply_text(page)

    too_long = "Hark! " * 25  # 150 characters: no room for a reply in 128 tokens
    say(page, too_long.strip())
    expect(last_reply(page)).to_have_attribute("data-status", "error")
    expect(last_reply(page)).to_contain_text("the latest message alone makes a prompt of")
    expect(last_reply(page)).to_contain_text("(HTTP 400)")
    expect(last_reply(page).locator(".meta")).to_contain_text("left out of what the model sees next")

    with sent_chat(page) as sent:
        say(page, "What news?")
    expect(last_reply(page)).to_have_attribute("data-status", "length")
    assert reply_text(page)
    assert sent.value.post_data_json["messages"] == [
        {"role": "user", "content": TURN}, {"role": "assistant", "content": first_reply},
        {"role": "user", "content": "What news?"}]


def test_the_heading_and_the_mmi_note_follow_the_model_picked(page: Page, demo_server: Server):
    page.goto(demo_server.url)
    heading, note = page.locator(".welcome strong"), page.locator("#model-note")
    expect(page.get_by_label("Model", exact=True)).to_have_value(MODEL)
    expect(heading).to_have_text(f"Start a conversation with {MODEL}")
    expect(note).to_be_visible()  # runs/chat is reranked, but not on this page: it streams
    expect(note).to_contain_text("--mmi-model")

    pick_model(page, DEMO)
    expect(heading).to_have_text(f"Start a conversation with {DEMO}")
    expect(note).to_be_hidden()
    with sent_chat(page) as sent:
        say(page, "What news?")
    assert sent.value.post_data_json["model"] == DEMO
    expect(last_reply(page)).to_have_attribute("data-status", "length")

    page.get_by_role("button", name="New conversation").click()
    expect(heading).to_have_text(f"Start a conversation with {DEMO}")
    pick_model(page, MODEL)
    expect(heading).to_have_text(f"Start a conversation with {MODEL}")
    expect(note).to_be_visible()
    page.reload()  # the choice is kept (the page opens the conversation above, so no heading)
    expect(page.get_by_label("Model", exact=True)).to_have_value(MODEL)
    expect(note).to_be_visible()


def test_characters_the_model_cannot_read_are_noted_under_the_message_not_in_the_reply(page: Page, demo_server: Server):
    page.goto(demo_server.url)
    pick_model(page, DEMO)
    set_setting(page, "Max tokens", 4)
    say(page, "你好吗？")  # 吗 is outside the vocabulary: the server's warning comes with the stream
    expect(last_reply(page)).to_have_attribute("data-status", "length")
    sent = page.locator(".message.user").last
    expect(sent.locator(".meta")).to_have_text("Not in this model's vocabulary (read as unknown): 吗")
    expect(sent).to_have_attribute("data-warned", "true")
    assert "vocabulary" not in reply_text(page) + last_reply(page).locator(".meta").text_content()
    say(page, "你好")  # every character known: no note (the request still holds 吗, in the first message)
    expect(page.locator(".message.assistant")).to_have_count(2)
    expect(last_reply(page)).to_have_attribute("data-status", "length")
    expect(page.locator(".message.user").last.locator(".meta")).to_have_text("")
    page.reload()  # the note is kept with the conversation
    expect(page.locator(".message.user").first.locator(".meta")).to_contain_text("吗")
