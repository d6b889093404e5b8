"""Shared fixtures: tiny random BERT checkpoints built offline, and the bundled model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = ("the a an is was of to and in on at it he she they we you i my your cat dog sat mat paris france "
         "capital city river big small red blue happy sad good bad movie film book this that very not love "
         "hate play played playing run ran house car tree sun moon day night water fire king queen man woman "
         "boy girl eat ate food bread milk school teacher student word words sentence bert model").split()
PIECES = ["##s", "##ing", "##ed", "##er", "##ly", "##y"]
PUNCT = list(".,!?;:'\"()-")
VOCAB = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *PUNCT, *WORDS, *PIECES, *"abcdefghijklmnopqrstuvwxyz",
         *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]]))  # letters repeat "a"/"i": keep first


def tiny_config(**kw):
    from transformers import BertConfig

    base = dict(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=37, max_position_embeddings=512, type_vocab_size=2, hidden_dropout_prob=0.1,
                attention_probs_dropout_prob=0.1, pad_token_id=0)
    base.update(kw)
    return BertConfig(**base)


def save_tokenizer(folder: Path) -> None:
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    BertTokenizerFast.from_pretrained(str(folder), do_lower_case=True).save_pretrained(str(folder))


def make_checkpoint(folder: Path, arch: str = "BertForPreTraining", seed: int = 0, **cfg_kw):
    """Save a tiny random HF checkpoint of class ``arch`` with its tokenizer; returns the HF model (eval)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    cfg = tiny_config(**cfg_kw)
    model = getattr(transformers, arch)(cfg).eval()
    with torch.no_grad():  # untrained biases are zero; randomise them so parity tests see them
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(str(folder))
    save_tokenizer(folder)
    return model


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny BertForPreTraining checkpoint (MLM + NSP heads)."""
    d = tmp_path_factory.mktemp("tiny_pretraining")
    make_checkpoint(d, "BertForPreTraining")
    return d


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory) -> Path:
    """A tiny BertForMaskedLM checkpoint (MLM head, no pooler, no NSP)."""
    d = tmp_path_factory.mktemp("tiny_mlm")
    make_checkpoint(d, "BertForMaskedLM", seed=1)
    return d


@pytest.fixture(scope="session")
def bundled():
    from bert_core import load_model

    return load_model("bundled", device="cpu")


from browser_fixtures import app_server, browser_page  # noqa: F401
