"""Several sessions share one cached LoadedModel: concurrent use must give no errors and the same numbers."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from bert_core import load_model
from bert_core.stats import head_statistics
from bert_core.walkthrough import walk_through

TEXTS = ["the cat sat on the mat .", "a dog ran in the park", "she is very happy today !",
         "the king and the queen ate bread", "my teacher loves this book", "water , fire , sun and moon"]


@pytest.fixture(scope="module")
def shared(tiny_dir):
    return load_model(str(tiny_dir), device="cpu")


def session_work(lm, i: int):
    """What one page run does with the shared model: tokenise, inspect (single and pair), stats, walk-through."""
    text, other = TEXTS[i % len(TEXTS)], TEXTS[(i + 1) % len(TEXTS)]
    enc = lm.tokenize(text, other)
    ins = lm.inspect(text, other if i % 2 else None)
    head_statistics(ins.attentions, ins.tokens)
    w = walk_through(lm.model, ins.encoded, i % 2, i % 4, 1)
    preds = lm.fill_mask(text.replace("the", "[MASK]", 1) if "the" in text else text + " [MASK]", top_k=3)
    return enc.tokens, ins.attentions, w.output, preds


def test_threads_sharing_one_model_get_no_errors_and_the_same_results(shared):
    n = 24
    expected = [session_work(shared, i) for i in range(n)]  # one at a time
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda i: session_work(shared, i), range(n)))  # raises if any thread failed
    for (tok_e, att_e, out_e, pred_e), (tok_g, att_g, out_g, pred_g) in zip(expected, got):
        assert tok_g == tok_e and pred_g == pred_e
        np.testing.assert_allclose(att_g, att_e, atol=1e-6)
        np.testing.assert_allclose(out_g, out_e, atol=1e-9)


def test_concurrent_tokenising_of_long_texts(shared):
    long = " ".join(TEXTS * 30)  # > 512 tokens: truncation runs the tokenizer twice per call

    def work(i):
        return shared.tokenize(long if i % 2 else TEXTS[i % 6]).tokens

    with ThreadPoolExecutor(max_workers=8) as pool:
        out = list(pool.map(work, range(48)))
    assert all(len(t) == 512 for t in out[1::2])
    assert out[0] == shared.tokenize(TEXTS[0]).tokens
