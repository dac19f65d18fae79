"""The chatbot's prompt, sampling settings and MMI reranking on a tiny model with known scores."""

import importlib

import pytest
import torch
import torch.nn.functional as F

from gptkit import GPT, GPTConfig
from gptkit.chat import bot as bot_module
from gptkit.chat.bot import Chatbot, ChatConfig
from gptkit.chat.mmi import check_same_tokenizer, rerank
from gptkit.errors import GptkitError
from gptkit.inference import SamplingConfig, generate
from gptkit.tokenizer import Tokenizer

TOK = Tokenizer.char("abcdefgh 你好")
EOT = TOK.eot_id


def tiny(seed: int) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig.preset("tiny", vocab_size=TOK.vocab_size)).eval()


def backward_logprob(model: GPT, hypothesis: list[int], reversed_source: list[int]) -> float:
    """log P(source | hypothesis) by hand: one forward pass, the source tokens' log-probabilities summed."""
    seq = torch.tensor([[*hypothesis, EOT, *reversed_source]])
    logprobs = F.log_softmax(model(seq[:, :-1]), dim=-1)[0]
    start = len(hypothesis) + 1
    return sum(logprobs[i - 1, seq[0, i]].item() for i in range(start, seq.shape[1]))


def test_mmi_returns_the_hypothesis_with_the_highest_backward_score():
    forward, backward = tiny(0), tiny(1)
    source = ["ab", "cd"]
    hypotheses = [TOK.encode(h) for h in ("gg", "h", "abc", "你好", "e f")]
    reversed_source = TOK.encode("cd") + [EOT] + TOK.encode("ab") + [EOT]
    known = {TOK.decode(h): backward_logprob(backward, h, reversed_source) for h in hypotheses}
    assert len(set(round(v, 3) for v in known.values())) == len(known)  # distinct, so the order is meaningful

    dropped = [[], hypotheses[0], TOK.encode("cd")]  # empty, duplicate, an echo of the source
    ranked = rerank(forward, backward, TOK, source, [*hypotheses, *dropped])
    assert [h.text for h in ranked] == sorted(known, key=known.get, reverse=True)
    assert ranked[0].text == max(known, key=known.get)
    for h in ranked:
        assert h.backward == pytest.approx(known[h.text], abs=1e-4)
        assert h.forward < 0


def test_a_backward_model_with_another_vocabulary_is_refused():
    other = Tokenizer.char("xyz")
    with pytest.raises(GptkitError, match="MMI model's tokenizer .* differs"):
        check_same_tokenizer(TOK, other)
    with pytest.raises(GptkitError, match="differs"):
        Chatbot(tiny(0), TOK, backward=(tiny(1), other))
    check_same_tokenizer(TOK, Tokenizer.char("abcdefgh 你好"))  # an equal vocabulary is fine


def test_prompt_keeps_max_history_turns_and_sampling_keeps_the_penalty(monkeypatch):
    seen = []

    def spy(model, prompts, cfg, eot_id, use_cache=True, static=None, engine=None):
        seen.append((TOK.decode(prompts[0]), cfg))
        yield from [torch.tensor([TOK.encode("h")[0]]), torch.tensor([EOT])]

    # the loop that generate_stream drives (the package's `generate` attribute is the function)
    monkeypatch.setattr(importlib.import_module("gptkit.inference.generate"), "generate_tokens", spy)
    cfg = ChatConfig(SamplingConfig(max_new_tokens=8, repetition_penalty=1.3, top_k=5, seed=7), max_history=2)
    bot = Chatbot(tiny(0), TOK, cfg)
    assert "".join(bot.reply("ab")) == "h"
    assert "".join(bot.reply("  cd   e ")) == "h"
    assert seen[0][0] == "ab<|endoftext|>"
    assert seen[1][0] == "h<|endoftext|>cd e<|endoftext|>"  # the oldest turn dropped
    assert [c.repetition_penalty for _, c in seen] == [1.3, 1.3] and [c.seed for _, c in seen] == [7, 8]
    assert bot.history == ["ab", "h", "cd e", "h"]
    bot.reset()
    assert bot.history == []


def test_mmi_reply_is_the_best_ranked_sample():
    bot = Chatbot(tiny(0), TOK, ChatConfig(SamplingConfig(max_new_tokens=8, top_k=10, seed=0), num_hypotheses=8),
                  backward=(tiny(1), TOK))
    reply = "".join(bot.reply("ab"))
    scores = [h.backward for h in bot.hypotheses]
    assert reply == bot.hypotheses[0].text and scores == sorted(scores, reverse=True) and len(scores) >= 2


def test_mmi_ranks_replies_cut_off_at_the_length_limit_only_when_nothing_finished(monkeypatch):
    samples = [TOK.encode("gggg"), TOK.encode("ef")]
    monkeypatch.setattr(bot_module, "generate_ids", lambda model, prompts, cfg, eot, engine: samples)
    bot = Chatbot(tiny(0), TOK, ChatConfig(SamplingConfig(max_new_tokens=4)), backward=(tiny(1), TOK))
    assert "".join(bot.reply("ab")) == "ef" and [h.text for h in bot.hypotheses] == ["ef"]
    samples[1] = TOK.encode("hhhh")
    "".join(bot.reply("ab"))
    assert sorted(h.text for h in bot.hypotheses) == ["gggg", "hhhh"]


def test_a_greedy_turn_is_generate_of_its_prompt_and_the_next_reuses_its_cached_blocks():
    """Each greedy reply is exactly what generate() gives its prompt, the second turn's too, though
    its prompt starts with the first turn's, whose cache blocks it reuses instead of computing them."""
    model = tiny(0)
    greedy = SamplingConfig(max_new_tokens=10, temperature=0)
    bot = Chatbot(model, TOK, ChatConfig(greedy, max_history=3))
    for message in ("abcdefgh abcdefgh abcdefgh", "hgfedcba 你好"):
        prompt_ids = bot._source(" ".join(message.split()))[1]
        expected = generate(model, TOK, TOK.decode(prompt_ids), greedy)[0].strip()
        assert "".join(bot.reply(message)).strip() == expected
    assert bot.engine.blocks.hit_tokens >= 16  # the first turn's 27 prompt tokens: one whole block
