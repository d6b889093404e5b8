"""Masked-word prediction: what BERT writes in place of [MASK], how sure it is, and which layers and heads decide.

    mi = prepare(lm, "Paris is the capital of [MASK].")       # or mask_words(lm, "The cat sat.", [1])
    pred = predict(lm, mi)                                    # independent softmax at every [MASK]
    joint_fill(lm, mi).sentence                               # the sentence BERT would write, most confident first
    score_candidates(lm, mi, ["france", "spain"])             # chain-rule probability of whole words
    logit_lens(lm, mi)                                        # the MLM head applied to every layer's hidden state
    head_importance(lm, mi)                                   # knock out one head at a time (batched)

Everything runs on a shared ``LoadedModel`` read-only (``lm.model`` is never modified) and returns numpy arrays.
The guessing game (sentences, share links, points) lives at the end of this module.
"""

from __future__ import annotations

import base64
import json
import math
import re
import zlib
from dataclasses import dataclass, replace

import numpy as np
import torch

from .loaded import MAX_TOKENS, Encoded, InputError, LoadedModel, normalize_masks

MASK_PATTERN = re.compile(r"\[\s*mask\s*\]", re.IGNORECASE)


class NoMaskError(InputError):
    """The text has no [MASK] (a hint for the user rather than a failure)."""


# --- inputs ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Word:
    """One word as the tokenizer splits the text: its character span and its wordpiece positions."""

    index: int
    text: str
    start: int
    end: int
    positions: tuple[int, ...]


@dataclass(frozen=True)
class MaskedInput:
    """A tokenised sentence with [MASK] in place, grouped into masked words.

    A typed [MASK] is one group of one position; a word hidden by whole-word masking is one group holding all of its
    wordpieces (``hidden_words`` keeps what was there).
    """

    encoded: Encoded  # tokens and ids with the masks already in place
    groups: tuple[tuple[int, ...], ...]  # token positions of each masked word, left to right
    text: str  # the sentence with one "[MASK]" per masked position
    hidden_words: tuple[str, ...] = ()  # words replaced by whole-word masking
    original_tokens: tuple[tuple[int, str], ...] = ()  # (position, wordpiece that was there) for hidden words
    n_typed: int = 0  # [MASK]s in the text, including those past the 512-token cut

    @property
    def positions(self) -> np.ndarray:
        """Token positions of every [MASK], left to right: (M,)."""
        return np.asarray([p for g in self.groups for p in g], dtype=np.int64)

    @property
    def n_cut(self) -> int:
        """[MASK]s lost because the text was cut at 512 tokens."""
        return max(0, self.n_typed - len(self.positions))

    @property
    def truncated(self) -> bool:
        return self.encoded.truncated


def prepare(lm: LoadedModel, text: str) -> MaskedInput:
    """Tokenise a sentence with typed [MASK]s (any casing). Raises NoMaskError when none survive the cut."""
    text = normalize_masks(str(text or ""), lm.mask_token)
    enc = lm.encode(text)
    n_typed = len(MASK_PATTERN.findall(text))
    positions = np.flatnonzero(enc.input_ids == lm.tokenizer.mask_token_id)
    if len(positions) == 0:
        if n_typed:
            raise NoMaskError(f"Your [MASK] comes after token {lm.max_tokens}: BERT reads only the first "
                              f"{lm.max_tokens} tokens, so the text was cut before it. Move the [MASK] earlier.")
        raise NoMaskError("There is no [MASK] in the sentence yet. Write [MASK] where BERT should guess a word "
                          "(e.g. 'Paris is the capital of [MASK].'), or pick a word below to hide it.")
    return MaskedInput(encoded=enc, groups=tuple((int(p),) for p in positions), text=text, n_typed=n_typed)


def words(lm: LoadedModel, text: str) -> list[Word]:
    """The words of ``text`` as BERT's tokenizer splits them (punctuation is its own word), without [MASK]s."""
    text = normalize_masks(str(text or ""), lm.mask_token)
    enc = lm.encode(text)
    found: dict[int, list[int]] = {}
    for pos, w in enumerate(enc.word_ids):
        if w is not None and not enc.special[pos]:
            found.setdefault(w, []).append(pos)
    out = []
    for w, pos in found.items():
        if any(enc.input_ids[p] == lm.tokenizer.mask_token_id for p in pos):
            continue
        start, end = enc.offsets[pos[0]][0], enc.offsets[pos[-1]][1]
        out.append(Word(index=w, text=text[start:end], start=start, end=end, positions=tuple(pos)))
    return out


def mask_words(lm: LoadedModel, text: str, word_indices: list[int]) -> MaskedInput:
    """Whole-word masking: every wordpiece of each chosen word becomes [MASK]; typed [MASK]s stay masked."""
    text = normalize_masks(str(text or ""), lm.mask_token)
    enc = lm.encode(text)
    by_index = {w.index: w for w in words(lm, text)}
    chosen = sorted({int(i) for i in word_indices if int(i) in by_index}, key=lambda i: by_index[i].start)
    if not chosen:
        return prepare(lm, text)
    ids, tokens = enc.input_ids.copy(), list(enc.tokens)
    original = tuple((p, enc.tokens[p]) for i in chosen for p in by_index[i].positions)
    groups: dict[int, tuple[int, ...]] = {int(p): (int(p),) for p in np.flatnonzero(ids == lm.tokenizer.mask_token_id)}
    new_text, hidden, last = [], [], 0
    for i in chosen:
        w = by_index[i]
        ids[list(w.positions)] = lm.tokenizer.mask_token_id
        for p in w.positions:
            tokens[p] = lm.mask_token
        groups[w.positions[0]] = w.positions
        hidden.append(w.text)
        new_text += [text[last:w.start], lm.mask_token * len(w.positions)]
        last = w.end
    new_text.append(text[last:])
    masked = "".join(new_text)
    return MaskedInput(encoded=replace(enc, input_ids=ids, tokens=tokens),
                       groups=tuple(groups[k] for k in sorted(groups)), text=masked, hidden_words=tuple(hidden),
                       original_tokens=original, n_typed=len(MASK_PATTERN.findall(masked)))


# --- forward passes ----------------------------------------------------------------------------------------------
def _ids(lm: LoadedModel, ids: np.ndarray | list[int]) -> torch.Tensor:
    return torch.as_tensor(np.asarray(ids, dtype=np.int64), device=lm.device).reshape(1, -1)


def _head_mask(lm: LoadedModel, head_mask) -> torch.Tensor | None:
    return None if head_mask is None else torch.as_tensor(np.asarray(head_mask), device=lm.device, dtype=lm.dtype)


@torch.inference_mode()
def _probs(lm: LoadedModel, ids: torch.Tensor, rows: list[int], cols: list[int], head_mask=None,
           attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the vocabulary at (row, col) token positions of a batch: (N, V) float32 on CPU."""
    out = lm.model.encode(ids, attention_mask=attention_mask, head_mask=_head_mask(lm, head_mask))
    h = out.last_hidden_state[torch.as_tensor(rows), torch.as_tensor(cols)]
    return lm.model.mlm_logits(h).float().softmax(-1).cpu()


def token_strings(lm: LoadedModel, ids) -> list[str]:
    return lm.tokenizer.convert_ids_to_tokens([int(i) for i in ids])


@dataclass(frozen=True)
class Prediction:
    """BERT's probability for every vocabulary token at each [MASK], each mask predicted independently."""

    probs: np.ndarray  # (M, V) float32
    top_ids: np.ndarray  # (M, k)
    top_probs: np.ndarray  # (M, k)
    top_tokens: list[list[str]]  # M × k

    def top(self, mask: int = 0) -> list[tuple[str, float]]:
        return list(zip(self.top_tokens[mask], self.top_probs[mask].tolist()))


def predict(lm: LoadedModel, mi: MaskedInput, top_k: int = 10, head_mask=None) -> Prediction:
    """One forward pass; top-k tokens and probabilities at every [MASK] (the fill-mask pipeline's numbers)."""
    lm.require_mlm()
    pos = mi.positions.tolist()
    probs = _probs(lm, _ids(lm, mi.encoded.input_ids), [0] * len(pos), pos, head_mask)
    top = probs.topk(min(top_k, probs.size(-1)), dim=-1)
    return Prediction(probs=probs.numpy(), top_ids=top.indices.numpy(), top_probs=top.values.numpy(),
                      top_tokens=[token_strings(lm, row) for row in top.indices])


def fill_mask(lm: LoadedModel, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """Top-k (token, probability) for each [MASK] in ``text``, each mask predicted on its own (the core's own)."""
    return lm.fill_mask(text, top_k)


def render_segments(mi: MaskedInput, tokens: list[str]) -> list[tuple[str, bool]]:
    """The sentence as (text, is_filled) pieces: each [MASK] (left to right) replaced by a token.

    A '##' piece joins the filled word before it when only spaces separate them (whole-word masks).
    """
    segs: list[list] = []
    last = 0
    for m, tok in zip(re.finditer(re.escape("[MASK]"), mi.text), tokens):
        between = mi.text[last:m.start()]
        if tok.startswith("##") and segs and segs[-1][1] and between.strip() == "":
            segs[-1][0] += tok[2:]
        else:
            segs += [[between, False], [tok[2:] if tok.startswith("##") else tok, True]]
        last = m.end()
    segs.append([mi.text[last:], False])
    return [(t, f) for t, f in segs if t]


def render(mi: MaskedInput, tokens: list[str]) -> str:
    """The sentence with each [MASK] replaced by a token, as plain text."""
    return "".join(t for t, _ in render_segments(mi, tokens))


@dataclass(frozen=True)
class Fill:
    """A complete sentence: one token per [MASK] (left to right), with the probability it had when chosen."""

    tokens: list[str]
    probs: list[float]
    order: list[int]  # mask indices in the order they were filled (joint fill) or left to right (independent)
    sentence: str


def _fill_ids(lm: LoadedModel, probs: torch.Tensor) -> torch.Tensor:
    """Never fill a mask with a special token ([CLS], [SEP], [MASK], …)."""
    p = probs.clone()
    p[..., lm.tokenizer.all_special_ids] = 0.0
    return p


def independent_fill(lm: LoadedModel, mi: MaskedInput, pred: Prediction | None = None) -> Fill:
    """Each [MASK] takes its own most likely token, all from the same forward pass (masks don't see each other)."""
    pred = pred or predict(lm, mi, top_k=1)
    p = _fill_ids(lm, torch.as_tensor(pred.probs))
    best = p.max(-1)
    toks = token_strings(lm, best.indices)
    return Fill(tokens=toks, probs=best.values.tolist(), order=list(range(len(toks))), sentence=render(mi, toks))


def joint_fill(lm: LoadedModel, mi: MaskedInput, head_mask=None) -> Fill:
    """Fill one [MASK] at a time, most confident first; each later guess sees the words already written."""
    lm.require_mlm()
    ids = mi.encoded.input_ids.copy()
    pos = mi.positions.tolist()
    remaining, order = list(range(len(pos))), []
    chosen: dict[int, tuple[int, float]] = {}
    while remaining:
        probs = _fill_ids(lm, _probs(lm, _ids(lm, ids), [0] * len(remaining), [pos[i] for i in remaining], head_mask))
        best = probs.max(-1)
        j = int(best.values.argmax())
        i = remaining.pop(j)
        chosen[i] = (int(best.indices[j]), float(best.values[j]))
        ids[pos[i]] = chosen[i][0]
        order.append(i)
    toks = token_strings(lm, [chosen[i][0] for i in range(len(pos))])
    return Fill(tokens=toks, probs=[chosen[i][1] for i in range(len(pos))], order=order, sentence=render(mi, toks))


# --- whole-word candidates -------------------------------------------------------------------------------------------
def word_pieces(lm: LoadedModel, word: str) -> tuple[list[int], list[str]]:
    """Wordpiece ids of one typed word; InputError if it is empty, several words, or unknown to the vocabulary."""
    word = str(word or "").strip()
    if not word:
        raise InputError("Type a word first (the guess is empty).")
    if MASK_PATTERN.search(word):
        raise InputError("Type a real word, not [MASK].")
    enc = lm.encode(word)
    keep = [i for i in range(len(enc.tokens)) if not enc.special[i]]
    if len({enc.word_ids[i] for i in keep}) != 1:
        raise InputError(f"'{word}' is not a single word for BERT (its tokenizer splits it at spaces and punctuation). "
                         "Type one word, e.g. 'dog'.")
    ids = [int(enc.input_ids[i]) for i in keep]
    if lm.tokenizer.unk_token_id in ids:
        raise InputError(f"BERT's vocabulary cannot spell '{word}' (it would read it as [UNK]). Try another word.")
    return ids, [enc.tokens[i] for i in keep]


@dataclass(frozen=True)
class CandidateScore:
    """How likely BERT finds a whole word in one masked slot.

    Multi-piece words are scored by the chain rule with left-to-right unmasking: the slot becomes as many [MASK]s as
    the word has pieces, and P(word) = P(p1 | all masked) · P(p2 | p1, rest masked) · …  A one-piece word gets exactly
    its fill-mask probability.
    """

    word: str
    pieces: tuple[str, ...]
    piece_probs: tuple[float, ...]
    prob: float
    rank: int  # 1 + vocabulary tokens more likely in the slot (for multi-piece words an approximation)
    error: str | None = None

    @property
    def log_prob(self) -> float:
        return math.log(self.prob) if self.prob > 0 else float("-inf")


def score_candidates(lm: LoadedModel, mi: MaskedInput, candidates: list[str], group: int = 0,
                     head_mask=None) -> list[CandidateScore]:
    """Score each typed word in masked word ``group`` (other masks stay masked); all in one batched forward pass."""
    lm.require_mlm()
    if not 0 <= group < len(mi.groups):
        raise InputError(f"There is no masked word number {group + 1}.")
    mask_id, pad_id = lm.tokenizer.mask_token_id, lm.tokenizer.pad_token_id or 0
    slot = mi.groups[group]
    ids = mi.encoded.input_ids.tolist()
    before, after = ids[:slot[0]], ids[slot[-1] + 1:]
    rows: list[list[int]] = [before + [mask_id] + after]  # row 0: the slot as one [MASK]
    reads: list[int] = [len(before)]
    parsed: list[tuple[str, list[int], list[str], list[int]] | CandidateScore] = []
    for word in candidates:
        try:
            pids, ptoks = word_pieces(lm, word)
        except InputError as e:
            parsed.append(CandidateScore(str(word), (), (), 0.0, 0, error=str(e)))
            continue
        my_rows = []
        if len(pids) == 1:
            my_rows.append(0)
        else:
            for j in range(len(pids)):  # step j: pieces before j written in, j and later still masked
                row = before + pids[:j] + [mask_id] * (len(pids) - j) + after
                if len(row) > lm.max_tokens:  # keep [SEP] at the end if the longer slot overflows
                    row = row[:lm.max_tokens - 1] + [row[-1]]
                my_rows.append(len(rows))
                rows.append(row)
                reads.append(len(before) + j)
        parsed.append((str(word).strip(), pids, ptoks, my_rows))
    T = max(len(r) for r in rows)
    batch = torch.full((len(rows), T), pad_id, dtype=torch.long)
    attn = torch.zeros((len(rows), T), dtype=torch.long)
    for i, r in enumerate(rows):
        batch[i, :len(r)] = torch.as_tensor(r)
        attn[i, :len(r)] = 1
    probs = _probs(lm, batch.to(lm.device), list(range(len(rows))), reads, head_mask, attn.to(lm.device))
    single = probs[0]
    out = []
    for item in parsed:
        if isinstance(item, CandidateScore):
            out.append(item)
            continue
        word, pids, ptoks, my_rows = item
        pp = [float(probs[r, pid]) for r, pid in zip(my_rows, pids)]
        p = float(np.prod(pp))
        rank = min(int((single > p).sum()) + 1, single.numel())  # a word less likely than every token ranks last
        out.append(CandidateScore(word, tuple(ptoks), tuple(pp), p, rank))
    return out


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
        out = lm.model.encode(_ids(lm, mi.encoded.input_ids), head_mask=_head_mask(lm, head_mask),
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
def kl_divergence(p: np.ndarray | torch.Tensor, q: np.ndarray | torch.Tensor) -> np.ndarray:
    """KL(p ‖ q) in nats over the last axis: how much the distribution moved from p to q."""
    p, q = torch.as_tensor(p, dtype=torch.float64), torch.as_tensor(q, dtype=torch.float64)
    kl = (p * (torch.log(p.clamp_min(1e-30)) - torch.log(q.clamp_min(1e-30)))).sum(-1)
    return kl.clamp_min(0.0).numpy()  # float32 rounding can give -1e-8 for identical distributions


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
def _layer_with_heads(layer, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """One encoder layer where each batch row keeps its own heads: keep (B, H) of 1/0. Same maths as BertLayer."""
    ctx, _, _ = layer.attention.self(h, None)  # (B, T, D), heads concatenated
    B, T, D = ctx.shape
    ctx = (ctx.view(B, T, keep.size(1), -1) * keep[:, None, :, None]).view(B, T, D)
    a = layer.attention.output(ctx, h)
    return layer.output(layer.intermediate(a), a)


@torch.inference_mode()
def head_importance(lm: LoadedModel, mi: MaskedInput, mask: int = 0, target_id: int | None = None) -> HeadImportance:
    """Ablate every head on its own: per layer l, one batched pass of H rows that starts from layer l's input."""
    lm.require_mlm()
    pos = int(mi.positions[mask])
    out = lm.model.encode(_ids(lm, mi.encoded.input_ids), output_hidden_states=True)
    base = lm.model.mlm_logits(out.last_hidden_state[0, pos]).float().softmax(-1)
    t = int(base.argmax()) if target_id is None else int(target_id)
    layers = lm.model.bert.encoder.layer
    L, H = len(layers), lm.config.num_attention_heads
    p_target, kl = np.zeros((L, H)), np.zeros((L, H))
    for li in range(L):
        keep = 1 - torch.eye(H, device=lm.device, dtype=lm.dtype)  # row k: head k off
        h = out.hidden_states[li].expand(H, -1, -1)  # (H, T, D): layer li's input, shared by rows
        h = _layer_with_heads(layers[li], h, keep)
        ones = torch.ones_like(keep)
        for later in layers[li + 1:]:
            h = _layer_with_heads(later, h, ones)
        probs = lm.model.mlm_logits(h[:, pos]).float().softmax(-1)  # (H, V)
        p_target[li] = probs[:, t].cpu().numpy()
        kl[li] = kl_divergence(base.cpu().expand_as(probs.cpu()), probs.cpu())
    return HeadImportance(p_target=p_target, kl=kl, p_base=float(base[t]), target_id=t,
                          target=token_strings(lm, [t])[0])


# --- the guessing game ---------------------------------------------------------------------------------------------
# Everyday sentences; the word in {braces} is hidden. Each is one wordpiece in BERT's uncased vocabulary.
BUILTIN_SENTENCES: tuple[str, ...] = (
    "I brush my {teeth} every morning and every night.",
    "She put the milk back in the {fridge}.",
    "The {sun} rises in the east and sets in the west.",
    "It was raining, so I took my {umbrella}.",
    "After the long run he drank a glass of cold {water}.",
    "We need eggs, flour and {sugar} to bake a cake.",
    "Don't forget to lock the {door} when you leave.",
    "The teacher wrote the answer on the {board}.",
    "There are seven {days} in a week.",
    "I'm so hungry I could eat a {horse}.",
    "She called her best friend on the {phone}.",
    "The {moon} was full and bright in the night sky.",
    "He wears {glasses} because he can't see very well.",
    "Please wash your {hands} before dinner.",
    "The bus was late, so we had to {walk} to school.",
    "Bees make {honey}.",
    "In winter the lake freezes and turns to {ice}.",
    "The doctor told him to stay in {bed} for a few days.",
    "We planted tomatoes and carrots in the {garden}.",
    "The referee blew his {whistle} to end the match.",
    "It was cold outside, so I put on my warm {coat}.",
    "Happy {birthday} to you!",
    "He paid for the coffee with his credit {card}.",
    "Turn off the {lights} before you go to sleep.",
    "The capital of France is {Paris}.",
    "Two plus two equals {four}.",
    "The dog wagged its {tail} when we came home.",
    "I can't find my {keys}, so I can't open the door.",
    "We borrowed some books from the {library}.",
    "Take off your muddy {shoes} before you come inside.",
    "My favourite meal of the day is {breakfast}.",
    "The children built a snowman in the {snow}.",
)
GAME_ROUNDS = 10
MAX_SET_SENTENCES = 60
MAX_SENTENCE_CHARS = 300
_BRACES = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class GameItem:
    """One round: the sentence shown with a [MASK], and the word that was hidden."""

    source: str  # the line as written, with {answer}
    masked: str  # the sentence with [MASK] instead of the answer
    answer: str


def parse_game_sentence(line: str) -> GameItem:
    """'The {cat} sat.' -> masked sentence and answer. Without braces the last word of 3+ letters is hidden."""
    line = " ".join(str(line or "").split())
    if not line:
        raise InputError("The sentence is empty.")
    if len(line) > MAX_SENTENCE_CHARS:
        raise InputError(f"The sentence is longer than {MAX_SENTENCE_CHARS} characters.")
    if MASK_PATTERN.search(line):
        raise InputError("Mark the hidden word with {braces}, e.g. 'The {cat} sat on the mat.', instead of [MASK].")
    found = _BRACES.findall(line)
    if len(found) > 1:
        raise InputError("Put {braces} around only one word per sentence.")
    if found:
        answer = found[0].strip()
        if not answer or len(answer.split()) != 1:
            raise InputError("The {braces} must hold exactly one word.")
        m = _BRACES.search(line)
        return GameItem(source=line, masked=line[:m.start()] + "[MASK]" + line[m.end():], answer=answer)
    candidates = list(re.finditer(r"[^\W\d_]{3,}", line))
    if not candidates:
        raise InputError("No word of three or more letters to hide; mark one with {braces}.")
    m = candidates[-1]
    return GameItem(source=line[:m.start()] + "{" + m.group() + "}" + line[m.end():],
                    masked=line[:m.start()] + "[MASK]" + line[m.end():], answer=m.group())


def parse_sentence_set(text: str) -> tuple[list[GameItem], list[str]]:
    """One sentence per line -> (rounds, problems as 'line n: why')."""
    items, problems = [], []
    lines = [ln for ln in str(text or "").splitlines() if ln.strip()]
    for n, ln in enumerate(lines[:MAX_SET_SENTENCES], 1):
        try:
            items.append(parse_game_sentence(ln))
        except InputError as e:
            problems.append(f"line {n}: {e}")
    if len(lines) > MAX_SET_SENTENCES:
        problems.append(f"only the first {MAX_SET_SENTENCES} sentences are used")
    return items, problems


def encode_set(sentences: list[str]) -> str:
    """A sentence set as a short URL-safe code (zlib + base64) for a share link."""
    raw = json.dumps([str(s) for s in sentences], ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


def decode_set(code: str) -> list[str]:
    """Inverse of encode_set; InputError for a damaged link."""
    try:
        code = str(code).strip()
        raw = zlib.decompress(base64.urlsafe_b64decode(code + "=" * (-len(code) % 4)), bufsize=1 << 16)
        data = json.loads(raw.decode())
        if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
            raise ValueError
        return data[:MAX_SET_SENTENCES]
    except Exception as e:  # noqa: BLE001 - any damage reads the same to the user
        raise InputError("This game link is damaged or incomplete; ask your teacher for the link again.") from e


POINTS = ((1, 100), (3, 70), (10, 50), (50, 25), (200, 10))  # (rank up to, points)
ANSWER_BONUS = 20


def points_for(rank: int, is_answer: bool = False) -> int:
    """Points for a guess BERT ranks ``rank`` (1 = its top choice), plus a bonus for the sentence's own word."""
    pts = next((p for limit, p in POINTS if 0 < rank <= limit), 0)
    return pts + (ANSWER_BONUS if is_answer else 0)


@dataclass(frozen=True)
class GuessResult:
    guess: CandidateScore
    answer: CandidateScore
    is_answer: bool
    points: int
    top: list[tuple[str, float]]  # BERT's own top-k for the slot


def score_guess(lm: LoadedModel, item: GameItem, guess: str, top_k: int = 10) -> GuessResult:
    """Score a player's guess by BERT's probability and rank for it; InputError for an empty or invalid guess."""
    word_pieces(lm, guess)  # raises a user-facing message for empty / several words / [UNK]
    mi = prepare(lm, item.masked)
    g, a = score_candidates(lm, mi, [guess, item.answer])
    same = g.pieces == a.pieces and not a.error
    top = predict(lm, mi, top_k).top(0)
    return GuessResult(guess=g, answer=a, is_answer=same, points=points_for(g.rank, same), top=top)


__all__ = ["BUILTIN_SENTENCES", "Ablation", "CandidateScore", "Fill", "GameItem", "GuessResult", "HeadImportance",
           "LogitLens", "MAX_TOKENS", "MaskedInput", "NoMaskError", "Prediction", "Word", "ablate", "decode_set",
           "encode_set", "fill_mask", "head_importance", "independent_fill", "joint_fill", "kl_divergence",
           "logit_lens", "mask_words", "parse_game_sentence", "parse_sentence_set", "points_for", "predict",
           "prepare", "render", "render_segments", "score_candidates", "score_guess", "word_pieces", "words"]
