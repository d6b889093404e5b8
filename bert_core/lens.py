"""Which layers and heads decide a masked-word prediction: the logit lens, head ablation and head importance.

    logit_lens(lm, mi)                 # the MLM head applied to every layer's hidden state
    ablate(lm, mi, head_mask)          # the prediction with some heads knocked out
    head_importance(lm, mi)            # knock out one head at a time (batched)

Read-only on a shared ``LoadedModel``; results are numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .loaded import InputError, LoadedModel, as_head_mask
from .mlm import MaskedInput, _ids, _probs, token_strings, word_pieces
from .stats import kl_divergence


# --- logit lens --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogitLens:
    """The MLM head applied to the hidden state at one [MASK] after every layer (0 = embeddings)."""

    probs: np.ndarray  # (L+1, V) softmax at each layer
    top_tokens: list[str]  # the most likely token at each layer
    top_probs: np.ndarray  # (L+1,)
    tracked: dict[str, tuple[np.ndarray, np.ndarray]]  # label -> (probability (L+1,), rank (L+1,), 1 = top)

    @property
    def layers(self) -> list[str]:
        return ["emb"] + [str(i) for i in range(1, len(self.top_tokens))]


def logit_lens(lm: LoadedModel, mi: MaskedInput, mask: int = 0, track: list[str] = (), head_mask=None) -> LogitLens:
    """Read the prediction off every layer: the final top token's (and any tracked word's) probability and rank."""
    lm.require_mlm()
    pos = int(mi.positions[mask])
    with torch.inference_mode():
        out = lm.model.encode(_ids(lm, mi.encoded.input_ids), head_mask=as_head_mask(head_mask, lm.device, lm.dtype),
                              output_hidden_states=True)
        h = torch.stack([hs[0, pos] for hs in out.hidden_states])  # (L+1, D)
        probs = lm.model.mlm_logits(h).float().softmax(-1).cpu()
    top = probs.max(-1)
    final_id = int(top.indices[-1])
    tracked_ids = {f"BERT's answer '{token_strings(lm, [final_id])[0]}'": final_id}
    for word in track:
        try:
            pids, ptoks = word_pieces(lm, word)
        except InputError:
            continue
        label = f"'{word.strip()}'" if len(pids) == 1 else f"'{word.strip()}' (first piece '{ptoks[0]}')"
        tracked_ids.setdefault(label, pids[0])
    tracked = {}
    for label, i in tracked_ids.items():
        p = probs[:, i]
        tracked[label] = (p.numpy(), ((probs > p[:, None]).sum(-1) + 1).numpy())
    return LogitLens(probs=probs.numpy(), top_tokens=token_strings(lm, top.indices), top_probs=top.values.numpy(),
                     tracked=tracked)


# --- head ablation -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ablation:
    """The prediction at one [MASK] with and without some heads."""

    before: np.ndarray  # (V,)
    after: np.ndarray  # (V,)
    target_id: int  # the token followed (the unablated top prediction unless asked otherwise)
    target: str
    kl: float  # KL(before ‖ after), nats

    @property
    def p_before(self) -> float:
        return float(self.before[self.target_id])

    @property
    def p_after(self) -> float:
        return float(self.after[self.target_id])


def ablate(lm: LoadedModel, mi: MaskedInput, head_mask, mask: int = 0, target_id: int | None = None) -> Ablation:
    """Knock out heads (head_mask (L, H): 1 = keep, 0 = off; a row of 0s = a whole layer's attention) and compare."""
    lm.require_mlm()
    pos = int(mi.positions[mask])
    ids = _ids(lm, mi.encoded.input_ids)
    before = _probs(lm, ids, [0], [pos])[0]
    after = _probs(lm, ids, [0], [pos], head_mask)[0]
    t = int(before.argmax()) if target_id is None else int(target_id)
    return Ablation(before=before.numpy(), after=after.numpy(), target_id=t, target=token_strings(lm, [t])[0],
                    kl=float(kl_divergence(before, after)))


@dataclass(frozen=True)
class HeadImportance:
    """The prediction at one [MASK] with each head knocked out on its own."""

    p_target: np.ndarray  # (L, H): probability of the target with that head off
    kl: np.ndarray  # (L, H): KL(normal ‖ head off)
    p_base: float
    target_id: int
    target: str

    @property
    def drop(self) -> np.ndarray:
        """(L, H): how much the target's probability falls (negative: it rises) without that head."""
        return self.p_base - self.p_target

    def ranking(self, n: int = 10) -> list[tuple[int, int, float, float]]:
        """The n heads whose removal hurts the target most: (layer, head, drop, KL), 0-based indices."""
        order = np.argsort(-self.drop, axis=None)[:n]
        H = self.drop.shape[1]
        return [(int(k // H), int(k % H), float(self.drop.flat[k]), float(self.kl.flat[k])) for k in order]


@torch.inference_mode()
def head_importance(lm: LoadedModel, mi: MaskedInput, mask: int = 0, target_id: int | None = None) -> HeadImportance:
    """Ablate every head on its own: per layer l, one batched pass of H rows from layer l's input, where row k runs
    without head k of layer l (a (H, L, H) head mask)."""
    lm.require_mlm()
    pos = int(mi.positions[mask])
    out = lm.model.encode(_ids(lm, mi.encoded.input_ids), output_hidden_states=True)
    base = lm.model.mlm_logits(out.last_hidden_state[0, pos]).float().softmax(-1).cpu()  # (V,)
    t = int(base.argmax()) if target_id is None else int(target_id)
    L, H = lm.config.num_hidden_layers, lm.config.num_attention_heads
    p_target, kl = np.zeros((L, H)), np.zeros((L, H))
    for li in range(L):
        head_mask = torch.ones(H, L, H, device=lm.device, dtype=lm.dtype)
        head_mask[:, li] = 1 - torch.eye(H, device=lm.device, dtype=lm.dtype)  # row k: head k of layer li off
        hidden, _, _ = lm.model.bert.encoder(out.hidden_states[li].expand(H, -1, -1), head_mask=head_mask, start=li)
        probs = lm.model.mlm_logits(hidden[-1][:, pos]).float().softmax(-1).cpu()  # (H, V)
        p_target[li] = probs[:, t].numpy()
        kl[li] = kl_divergence(base.expand_as(probs), probs)
    return HeadImportance(p_target=p_target, kl=kl, p_base=float(base[t]), target_id=t,
                          target=token_strings(lm, [t])[0])
