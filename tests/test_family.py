"""Parameter counts of BERT's family equal transformers' own models; distillation's temperature behaves."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bert_core import family


def small(**kw) -> family.Shape:
    return family.Shape(vocab=97, hidden=24, layers=3, heads=4, intermediate=40, positions=33, **kw)


def test_bert_shape_counts_equal_transformers_bertmodel():
    from transformers import BertConfig, BertModel

    s = small()
    hf = BertModel(BertConfig(vocab_size=97, hidden_size=24, num_hidden_layers=3, num_attention_heads=4,
                              intermediate_size=40, max_position_embeddings=33, type_vocab_size=2))
    assert family.total(s) == hf.num_parameters()
    no_pool = BertModel(hf.config, add_pooling_layer=False)
    assert family.total(dataclasses.replace(s, pooler=False)) == no_pool.num_parameters()


def test_albert_and_distilbert_and_roberta_counts_equal_transformers():
    from transformers import (AlbertConfig, AlbertModel, DistilBertConfig, DistilBertModel, RobertaConfig,
                              RobertaModel)

    albert = AlbertModel(AlbertConfig(vocab_size=97, embedding_size=8, hidden_size=24, num_hidden_layers=3,
                                      num_attention_heads=4, intermediate_size=40, max_position_embeddings=33))
    assert family.total(small(embedding=8, shared_layers=True)) == albert.num_parameters()
    distil = DistilBertModel(DistilBertConfig(vocab_size=97, dim=24, n_layers=3, n_heads=4, hidden_dim=40,
                                              max_position_embeddings=33))
    assert family.total(small(segments=0, pooler=False)) == distil.num_parameters()
    roberta = RobertaModel(RobertaConfig(vocab_size=97, hidden_size=24, num_hidden_layers=3, num_attention_heads=4,
                                         intermediate_size=40, max_position_embeddings=33, type_vocab_size=1))
    assert family.total(small(segments=1)) == roberta.num_parameters()


def test_published_sizes_and_the_bundled_model(bundled):
    assert round(family.total(family.FAMILY["bert-base-uncased"]) / 1e6, 1) == 109.5
    assert round(family.total(family.FAMILY["bert-large-uncased"]) / 1e6) == 335
    assert round(family.total(family.FAMILY["albert-base-v2"]) / 1e6, 1) == 11.7
    assert round(family.total(family.FAMILY["distilbert-base-uncased"]) / 1e6, 1) == 66.4
    enc = sum(p.numel() for n, p in bundled.model.named_parameters() if n.startswith("bert."))
    assert family.total(family.shape_of(bundled.config)) == enc
    assert family.total(family.FAMILY["all-MiniLM-L6-v2 (bundled)"]) == enc


def test_temperature_spreads_the_probability_and_keeps_the_order():
    z = np.array([5.0, 3.0, 1.0, -2.0])
    p1, p4 = family.soften(z, 1.0), family.soften(z, 4.0)
    np.testing.assert_allclose(p1, np.exp(z) / np.exp(z).sum())
    assert list(np.argsort(-p4)) == [0, 1, 2, 3]
    assert family.entropy_bits(p4) > family.entropy_bits(p1)
    assert family.distillation_loss(z, z, 3.0) == pytest.approx(0.0, abs=1e-12)
    assert family.distillation_loss(z[::-1], z, 2.0) > 0


@pytest.mark.parametrize("which", ["bundled", "tiny_dir", "tiny_mlm_dir"])
def test_encoder_plus_heads_is_every_parameter_of_the_checkpoint(which, request):
    """The family table's encoder size and the sidebar's whole-checkpoint size, against an independent count."""
    from bert_core import load_model

    lm = request.getfixturevalue("bundled") if which == "bundled" else load_model(
        str(request.getfixturevalue(which)), device="cpu")
    shape = family.shape_of(lm.config, pooler=lm.model.bert.pooler is not None)
    named = dict(lm.model.named_parameters())  # each tensor once: the tied MLM decoder is the embedding table
    encoder = sum(p.numel() for n, p in named.items() if n.startswith("bert."))
    assert family.total(shape) == encoder
    heads = family.head_parameters(shape, lm.has_mlm_head, lm.has_nsp_head)
    assert family.total(shape) + sum(heads.values()) == sum(p.numel() for p in named.values()) == lm.facts()["parameters"]
    assert heads["MLM head"] == sum(p.numel() for n, p in named.items() if n.startswith("cls.predictions."))
    assert heads.get("NSP head", 0) == sum(p.numel() for n, p in named.items() if n.startswith("cls.seq_relationship."))
    note = family.size_note(lm.name, shape, lm.facts()["parameters"], heads)
    assert f"{encoder:,} + MLM head {heads['MLM head']:,}" in note and f"= {lm.facts()['parameters']:,} parameters" in note
    if which == "bundled":  # the 22.7M of the family table and the 22.9M of Home, explained
        assert "(22.7M → 22.9M)" in note
