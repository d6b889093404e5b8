"""Masked-word prediction: what BERT writes in place of [MASK], and how sure it is.

    mi = prepare(lm, "Paris is the capital of [MASK].")       # or mask_words(lm, "The cat sat.", [1])
    pred = predict(lm, mi)                                    # independent softmax at every [MASK]
    joint_fill(lm, mi).sentence                               # the sentence BERT would write, most confident first
    score_candidates(lm, mi, ["france", "spain"])             # chain-rule probability of whole words

Everything runs on a shared ``LoadedModel`` read-only (``lm.model`` is never modified) and returns numpy arrays.
Which layers and heads decide lives in ``lens``; the guessing game in ``game``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np
import torch

from .loaded import MASK_PATTERN, MAX_TOKENS, Encoded, InputError, LoadedModel, NoMaskError, normalize_masks, top_k_at

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
    enc, positions = lm.find_masks(text)
    n_typed = len(MASK_PATTERN.findall(text))
    return MaskedInput(encoded=enc, groups=tuple((int(p),) for p in positions), text=text, n_typed=n_typed)


def words(lm: LoadedModel, text: str) -> list[Word]:
    """The words of ``text`` as BERT's tokenizer splits them (punctuation is its own word), without [MASK]s."""
    text = normalize_masks(str(text or ""), lm.mask_token)
    return _words(lm, lm.tokenize(text), text)


def _words(lm: LoadedModel, enc: Encoded, text: str) -> list[Word]:
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
    enc = lm.tokenize(text)
    by_index = {w.index: w for w in _words(lm, enc, text)}
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


@torch.inference_mode()
def _probs(lm: LoadedModel, ids: torch.Tensor, rows: list[int], cols: list[int], head_mask=None,
           attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the vocabulary at (row, col) token positions of a batch: (N, V) float32 on CPU."""
    return top_k_at(lm.model, ids, (rows, cols), 1, attention_mask=attention_mask, head_mask=head_mask).probs.cpu()


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
    top = top_k_at(lm.model, _ids(lm, mi.encoded.input_ids), mi.positions, top_k, head_mask=head_mask)
    indices = top.indices.cpu()
    return Prediction(probs=top.probs.cpu().numpy(), top_ids=indices.numpy(), top_probs=top.values.cpu().numpy(),
                      top_tokens=[token_strings(lm, row) for row in indices])


def whole_word_top(lm: LoadedModel, probs: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
    """BERT's k most likely tokens that are whole words (letters only: no '##' piece, [SPECIAL] or punctuation),
    from one mask's (V,) probabilities. A player can guess these; a piece like '##ing' cannot be guessed."""
    p = np.asarray(probs)
    out: list[tuple[str, float]] = []
    for j in np.argsort(-p):  # stops after k whole words, usually within the first few dozen tokens
        t = lm.tokenizer.convert_ids_to_tokens(int(j))
        if t.isalpha():
            out.append((t, float(p[j])))
            if len(out) == k:
                break
    return out


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


def _without_specials(lm: LoadedModel, probs: torch.Tensor) -> torch.Tensor:
    """Never fill a mask with a special token ([CLS], [SEP], [MASK], …)."""
    p = probs.clone()
    p[..., lm.tokenizer.all_special_ids] = 0.0
    return p


def independent_fill(lm: LoadedModel, mi: MaskedInput, pred: Prediction | None = None) -> Fill:
    """Each [MASK] takes its own most likely token, all from the same forward pass (masks don't see each other)."""
    pred = pred or predict(lm, mi, top_k=1)
    p = _without_specials(lm, torch.as_tensor(pred.probs))
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
        at = [pos[i] for i in remaining]
        probs = _without_specials(lm, _probs(lm, _ids(lm, ids), [0] * len(at), at, head_mask))
        best = probs.max(-1)
        j = int(best.values.argmax())
        i = remaining.pop(j)
        chosen[i] = (int(best.indices[j]), float(best.values[j]))
        ids[pos[i]] = chosen[i][0]
        order.append(i)
    toks = token_strings(lm, [chosen[i][0] for i in range(len(pos))])
    return Fill(tokens=toks, probs=[chosen[i][1] for i in range(len(pos))], order=order, sentence=render(mi, toks))


def beam_fill(lm: LoadedModel, mi: MaskedInput, width: int = 3) -> Fill:
    """A small beam search over fill orders and words: keep the ``width`` best partial fills (score = the product of
    each chosen token's probability when it was chosen), extend each by any open mask's top ``width`` tokens, and
    return the best complete fill. ``width=1`` is exactly ``joint_fill`` (greedy, most confident first)."""
    lm.require_mlm()
    pos, base = mi.positions.tolist(), mi.encoded.input_ids
    beams: list[tuple[tuple[tuple[int, int, float], ...], float]] = [((), 0.0)]  # ((mask, id, prob) …, log p)
    for _ in pos:
        batch, rows, cols, owner = [], [], [], []
        for b, (fills, _) in enumerate(beams):
            ids = base.copy()
            for k, tok, _p in fills:
                ids[pos[k]] = tok
            batch.append(ids)
            done = {k for k, _t, _p in fills}
            for k in (k for k in range(len(pos)) if k not in done):
                rows.append(b), cols.append(pos[k]), owner.append((b, k))
        t = torch.as_tensor(np.stack(batch), device=lm.device)
        top = _without_specials(lm, _probs(lm, t, rows, cols)).topk(width, dim=-1)
        best: dict[frozenset, tuple[tuple[tuple[int, int, float], ...], float]] = {}
        for r, (b, k) in enumerate(owner):
            for v, j in zip(top.values[r].tolist(), top.indices[r].tolist()):
                fills = beams[b][0] + ((k, int(j), float(v)),)
                score = beams[b][1] + float(np.log(max(v, 1e-45)))
                key = frozenset((kk, jj) for kk, jj, _ in fills)  # the same words in another order: keep the best
                if key not in best or score > best[key][1]:
                    best[key] = (fills, score)
        beams = sorted(best.values(), key=lambda x: -x[1])[:width]  # stable: ties keep the greedy order
    fills = {k: (tok, p) for k, tok, p in beams[0][0]}
    toks = token_strings(lm, [fills[k][0] for k in range(len(pos))])
    return Fill(tokens=toks, probs=[fills[k][1] for k in range(len(pos))], order=[k for k, _t, _p in beams[0][0]],
                sentence=render(mi, toks))


# --- whole-word candidates -------------------------------------------------------------------------------------------
def word_pieces(lm: LoadedModel, word: str) -> tuple[list[int], list[str]]:
    """Wordpiece ids of one typed word; InputError if it is empty, several words, or unknown to the vocabulary."""
    word = str(word or "").strip()
    if not word:
        raise InputError("Type a word first (the guess is empty).")
    if MASK_PATTERN.search(word):
        raise InputError("Type a real word, not [MASK].")
    enc = lm.tokenize(word)
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

    Multi-piece words are scored by the chain rule with left-to-right unmasking: the slot becomes as many [MASK]s
    as the word has pieces, and P(word) = P(p1 | all masked) · P(p2 | p1, rest masked) · …  A one-piece word gets
    exactly its fill-mask probability.
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


__all__ = ["CandidateScore", "Fill", "MASK_PATTERN", "MAX_TOKENS", "MaskedInput", "NoMaskError", "Prediction", "Word",
           "independent_fill", "joint_fill", "mask_words", "predict", "prepare", "render", "render_segments",
           "score_candidates", "token_strings", "word_pieces", "words"]
