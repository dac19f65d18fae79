import math

import pytest
import torch
import torch.nn.functional as F

from gptkit import GptkitError
from gptkit.inference import score
from tests.conftest import tiny_model


def by_hand(model, context, continuation):
    """Log-probabilities computed directly from one unpadded forward pass."""
    full = torch.tensor([context + continuation])
    logp = F.log_softmax(model(full[:, :-1])[0], -1)
    return [logp[len(context) - 1 + j, tok].item() for j, tok in enumerate(continuation)]


def test_score_equals_hand_computed_logprobs(variant_model):
    requests = [([5, 6, 7], [8, 9]), ([1], [2, 3, 4, 5]), ([10, 11, 12, 13, 14, 15], [16])]
    for (ctx, cont), s in zip(requests, score(variant_model, requests)):
        expected = by_hand(variant_model, ctx, cont)
        assert s.token_logprobs == pytest.approx(expected, abs=1e-5)
        assert s.logprob == pytest.approx(sum(expected), abs=1e-5)
        assert s.n_tokens == len(cont)


def test_batched_equals_one_at_a_time():
    model = tiny_model()
    torch.manual_seed(0)
    requests = [(torch.randint(0, 256, (n,)).tolist(), torch.randint(0, 256, (m,)).tolist())
                for n, m in [(3, 2), (10, 1), (1, 7), (20, 5), (6, 6), (2, 1)]]
    batched = score(model, requests, batch_size=4)
    alone = [score(model, [r], batch_size=1)[0] for r in requests]
    for a, b in zip(batched, alone):
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-5)
        assert a.greedy == b.greedy


def test_greedy_flag_matches_argmax():
    model = tiny_model()
    ctx = [1, 2, 3]
    top = model(torch.tensor([ctx]))[0, -1].argmax().item()
    assert score(model, [(ctx, [top])])[0].greedy
    assert not score(model, [(ctx, [(top + 1) % 256])])[0].greedy


def test_empty_context_conditions_on_end_of_text():
    model = tiny_model()
    assert score(model, [([], [4, 5])], bos_id=0)[0].token_logprobs == pytest.approx(by_hand(model, [0], [4, 5]), abs=1e-5)
    with pytest.raises(GptkitError, match="empty context"):
        score(model, [([], [4])])


def test_long_context_is_cut_on_the_left():
    model = tiny_model()  # context 64
    ctx, cont = list(range(100)), [7, 8]
    s = score(model, [(ctx, cont)])[0]
    assert s.token_logprobs == pytest.approx(by_hand(model, ctx[-63:], cont), abs=1e-5)
    assert all(math.isfinite(x) for x in s.token_logprobs)


def test_continuation_longer_than_context_is_an_error():
    with pytest.raises(GptkitError, match="does not fit the context of 64"):
        score(tiny_model(), [([1], list(range(65)))])
