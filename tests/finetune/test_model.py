import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gptkit
from gptkit.finetune import Labels, TaskModel, load_task_model, predict, read_examples
from gptkit.finetune.data import Transform, add_special_tokens, collate
from gptkit.finetune.model import grow_vocabulary
from gptkit.finetune.train import make_loss_fn
from gptkit.tokenizer import Tokenizer
from tests.conftest import tiny_model


def task_model(tokenizer: Tokenizer, labels: Labels, seed: int = 0, **overrides) -> TaskModel:
    gpt = tiny_model(seed, vocab_size=tokenizer.vocab_size, **overrides)
    _, new = add_special_tokens(tokenizer)
    grow_vocabulary(gpt, new)
    return TaskModel(gpt, labels).eval()


def test_special_tokens_get_new_embedding_rows_drawn_with_std_002():
    tok = Tokenizer.char("abc")
    gpt = tiny_model(vocab_size=tok.vocab_size, n_embd=512, n_head=2)
    old = gpt.wte.weight.detach().clone()
    ids, new = add_special_tokens(tok)
    grow_vocabulary(gpt, new)
    assert ids == new == [old.shape[0], old.shape[0] + 1, old.shape[0] + 2]
    assert gpt.wte.weight.shape[0] == gpt.config.vocab_size == tok.vocab_size == old.shape[0] + 3
    torch.testing.assert_close(gpt.wte.weight[: old.shape[0]], old)
    rows = gpt.wte.weight[ids].detach()
    assert rows.mean().abs() < 0.003 and 0.0185 < rows.std() < 0.0215
    assert add_special_tokens(tok) == (ids, [])  # a second call adds nothing


def hand_l3(model: TaskModel, items, lm_coef: float) -> torch.Tensor:
    """L2 + λ·L1 one example and one sequence at a time, without padding or masks."""
    l2, l1 = [], []
    for item in items:
        states = []
        for seq in item.sequences:
            ids = torch.tensor([seq])
            hidden = model.gpt(ids, return_hidden=True)  # (1, T, C)
            logits = F.linear(hidden, model.gpt.wte.weight)
            l1.append(F.cross_entropy(logits[0, :-1], ids[0, 1:]))  # mean over this sequence's tokens
            states.append(hidden[0, -1])
        scores = model.head(torch.stack(states)).squeeze(-1)  # one score per choice
        l2.append(F.cross_entropy(scores[None], torch.tensor([item.target])))
    return torch.stack(l2).mean() + lm_coef * torch.stack(l1).mean()


def test_l3_is_l2_plus_lambda_l1_computed_by_hand(task_files, char_tokenizer):
    tok = Tokenizer.char("".join(char_tokenizer.itos[2:]))
    examples = read_examples(task_files["choice"][0], "choice")[:3]
    labels = Labels.infer("choice", examples)
    model = task_model(tok, labels)
    items = Transform("choice", tok, 64).encode(examples, labels)
    batch = collate(items)
    assert batch[1].sum(-1).min() < batch[1].shape[-1]  # the batch really is padded
    for lm_coef in (0.0, 0.5):
        torch.testing.assert_close(make_loss_fn(lm_coef, model.labels.regression)(model, batch), hand_l3(model, items, lm_coef))


@pytest.mark.parametrize("task", ["classify", "similarity", "choice", "regression"])
def test_predictions_do_not_depend_on_the_other_examples_in_the_batch(task_files, char_tokenizer, task):
    tok = Tokenizer.char("".join(char_tokenizer.itos[2:]))
    kind = "similarity" if task == "regression" else task
    examples = read_examples(task_files[task][1], kind)[:12]
    model = task_model(tok, Labels.infer(kind, examples), ln_order="post")
    alone = [predict(model, tok, [ex])[0] for ex in examples]
    together = predict(model, tok, examples[::-1], batch_size=12)[::-1]
    for a, b in zip(alone, together):
        np.testing.assert_allclose(outputs(a), outputs(b), atol=1e-5)


def outputs(result: dict) -> np.ndarray:
    x = result.get("probabilities", result.get("score"))
    return np.ravel(list(x.values()) if isinstance(x, dict) else x)


def test_save_and_load_round_trip(tmp_path, task_files, char_tokenizer):
    tok = Tokenizer.char("".join(char_tokenizer.itos[2:]))
    examples = read_examples(task_files["classify"][1], "classify")[:8]
    model = task_model(tok, Labels.infer("classify", examples), seed=3)
    model.save_pretrained(tmp_path, tok)
    again, tok2 = load_task_model(tmp_path)
    assert again.labels == model.labels and tok2.special_tokens == tok.special_tokens
    assert predict(again, tok2, examples) == predict(model, tok, examples)
    as_dicts = [{"text": ex.first} for ex in examples]  # the API also takes plain records, labels optional
    assert predict(again, tok2, as_dicts) == predict(model, tok, examples)
    lm, _ = gptkit.load(tmp_path)  # still an ordinary language-model checkpoint
    assert lm.config.vocab_size == tok.vocab_size
