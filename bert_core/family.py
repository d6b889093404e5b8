"""BERT's family in numbers: where the parameters of BERT, DistilBERT, ALBERT, RoBERTa and MiniLM sit, and what
distillation's temperature does to a teacher's guesses. No Streamlit here.

    parameters(FAMILY["bert-base-uncased"])   # {'embeddings': 23.8M, 'attention': 28.3M, ...}
    soften(logits, temperature=4.0)           # softmax(z / T): the "soft targets" a student learns from
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stats import entropy_bits, kl_divergence  # noqa: F401  (entropy_bits: read from here by the family page)


@dataclass(frozen=True)
class Shape:
    """The numbers that decide an encoder's size (defaults: bert-base-uncased)."""

    vocab: int = 30522
    hidden: int = 768
    layers: int = 12
    heads: int = 12
    intermediate: int = 3072
    positions: int = 512
    segments: int = 2  # token-type rows (0 = none, as in DistilBERT)
    embedding: int | None = None  # ALBERT: factorised embedding width E (None = hidden)
    shared_layers: bool = False  # ALBERT: one set of layer weights used by every layer
    pooler: bool = True
    note: str = ""


FAMILY: dict[str, Shape] = {
    "bert-base-uncased": Shape(note="Devlin et al. 2018: 12 layers, MLM + NSP on books and Wikipedia."),
    "bert-large-uncased": Shape(hidden=1024, layers=24, heads=16, intermediate=4096,
                                note="The same recipe, 3× the parameters."),
    "distilbert-base-uncased": Shape(layers=6, segments=0, pooler=False,
                                     note="Half the layers, trained to copy BERT-base's soft outputs "
                                          "(distillation); no segment embeddings, no NSP."),
    "albert-base-v2": Shape(vocab=30000, embedding=128, shared_layers=True,
                            note="Factorised embeddings (30k × 128, then 128 → 768) and one layer's weights "
                                 "shared by all 12 layers; sentence-order prediction instead of NSP."),
    "roberta-base": Shape(vocab=50265, positions=514, segments=1,
                          note="BERT-base's shape trained longer on 10× the text, dynamic masking, no NSP, "
                               "a byte-level BPE vocabulary."),
    "all-MiniLM-L6-v2 (bundled)": Shape(hidden=384, layers=6, heads=12, intermediate=1536,
                                        note="6 layers, hidden 384: distilled from a larger model (MiniLM copies the "
                                             "teacher's attention), then tuned for sentence similarity."),
}


def parameters(s: Shape) -> dict[str, int]:
    """Parameter count by part: embeddings, attention, feed-forward, LayerNorms, pooler (BertModel's layout)."""
    H, I, E = s.hidden, s.intermediate, s.embedding or s.hidden
    emb = (s.vocab + s.positions + s.segments) * E + 2 * E  # tables + their LayerNorm
    if s.embedding is not None and s.embedding != s.hidden:
        emb += E * H + H  # ALBERT's projection E -> H
    attention = 4 * (H * H + H)  # Q, K, V and the output projection
    ffn = H * I + I + I * H + H
    norms = 2 * 2 * H  # after attention and after the feed-forward block
    n = 1 if s.shared_layers else s.layers
    return {"embeddings": emb, "attention": n * attention, "feed-forward": n * ffn, "LayerNorms": n * norms,
            "pooler": H * H + H if s.pooler else 0}


def total(s: Shape) -> int:
    return sum(parameters(s).values())


def shape_of(config, pooler: bool = True) -> Shape:
    """The Shape of a loaded checkpoint's ``BertConfig`` (pooler: whether the checkpoint has one)."""
    return Shape(vocab=config.vocab_size, hidden=config.hidden_size, layers=config.num_hidden_layers,
                 heads=config.num_attention_heads, intermediate=config.intermediate_size,
                 positions=config.max_position_embeddings, segments=config.type_vocab_size, pooler=pooler)


def head_parameters(s: Shape, mlm: bool = False, nsp: bool = False, classes: int = 0) -> dict[str, int]:
    """The task heads a checkpoint may add on top of the encoder counted by ``parameters``.

    MLM head: a hidden × hidden transform with its LayerNorm and one output bias per wordpiece (its output matrix
    is the word-embedding table, shared, so not counted again). NSP head: hidden → 2. Classifier: hidden → classes.
    """
    H = s.hidden
    parts = {"MLM head": H * H + H + 2 * H + s.vocab if mlm else 0, "NSP head": 2 * H + 2 if nsp else 0,
             "classifier": H * classes + classes}
    return {k: v for k, v in parts.items() if v}


def size_note(name: str, encoder: Shape, checkpoint_total: int, heads: dict[str, int]) -> str:
    """Why the sidebar's count of a checkpoint differs from the encoder size in the family table (one line)."""
    enc = total(encoder)
    if not heads or enc + sum(heads.values()) != checkpoint_total:
        return (f"Sizes here count the encoder (embeddings, layers, pooler), as papers quote them; "
                f"{name} has {checkpoint_total:,} parameters in all.")
    parts = " + ".join(f"{n} {v:,}" for n, v in heads.items())
    tied = " (it reuses the word-embedding table as its output matrix)" if "MLM head" in heads else ""
    return (f"Sizes here count the encoder (embeddings, layers, pooler), as papers quote them; Home and the sidebar "
            f"count the whole checkpoint: {enc:,} + {parts}{tied} = {checkpoint_total:,} parameters "
            f"({enc / 1e6:.1f}M → {checkpoint_total / 1e6:.1f}M).")


def soften(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(z / T) in float64: T > 1 spreads probability onto the runner-up words (the 'dark knowledge')."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(-1, keepdims=True)


def distillation_loss(student_logits: np.ndarray, teacher_logits: np.ndarray, temperature: float) -> float:
    """Hinton et al.'s soft-target loss T² · KL(teacher_T ‖ student_T), in nats."""
    pt, ps = soften(teacher_logits, temperature), soften(student_logits, temperature)
    return float(temperature ** 2 * kl_divergence(pt, ps))
