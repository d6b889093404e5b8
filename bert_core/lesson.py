"""The guided 20-minute lesson: its steps, their preset examples, and what the loaded model does on each.

No Streamlit. Each ``step_*`` function runs the current model on the step's preset and returns typed numbers,
including the predict-then-reveal question whose right answer is read off those numbers (never hard-coded). Heads
are found from this model's attention (``stats.head_statistics``), never named by number. Indexes are 0-based;
the UI shows them 1-based (``ui.text.head_label``).

    lm = load_model("bundled")
    s = step_attention(lm)     # s.layer, s.head: the head where 'it' looks hardest at 'animal'
    s.question.answer          # index of the right option, from the numbers
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import family
from .loaded import LoadedModel
from .stats import head_statistics, segment_crossing
from .training import TrainConfig, lr_at


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    explain: str  # 2–4 sentences for the class (Markdown)
    talking_points: tuple[str, ...]  # for the teacher


@dataclass(frozen=True)
class Question:
    prompt: str
    options: tuple[str, ...]
    answer: int  # index into options, read off this model's numbers


STEPS: tuple[Step, ...] = (
    Step("attention", "Self-attention: every word looks at every word",
         "A word's meaning depends on its neighbours. In each layer BERT lets every token ask all the others "
         "\"how relevant are you to me?\" and mixes their vectors in, weighted by the answer: that is "
         "**self-attention**. Each layer has several **heads**, each free to learn its own kind of link.",
         ("Ask the class who 'it' is in the sentence. Then show that one head of this BERT settled it the same way.",
          "Stress that nobody programmed this head: it emerged from pretraining.",
          "Each row of an attention map adds up to 1: attention is a budget that a token spends.")),
    Step("tokens", "Wordpieces, [CLS]/[SEP], position and segment",
         "BERT does not read words but **wordpieces** from a 30,000-entry vocabulary: a rare word is split, and "
         "pieces that continue a word start with `##`. Every input starts with **[CLS]** (its final vector "
         "summarises the input) and each sentence ends with **[SEP]**. Each token's first vector is the sum of "
         "three learned vectors: the piece, its **position** (order) and its **segment** (sentence A or B).",
         ("Let students guess the split before revealing it: frequent words stay whole, rare ones break up.",
          "Without the position vector BERT would see a bag of words: 'dog bites man' = 'man bites dog'.",
          "Segment A/B is how BERT knows which sentence a token belongs to in a pair (step 5).")),
    Step("bidirectional", "The bidirectional encoder",
         "GPT-style models read left to right and may only look back. BERT's encoder has no such mask: every token "
         "sees the words on **both sides** in every layer, which is what the *B* in BERT stands for. Some heads "
         "even specialise in looking at the **next** word.",
         ("Contrast with a phone keyboard's next-word suggestions: they only see the left side.",
          "The price: BERT cannot generate text left to right, because it was never trained to.",
          "Show the head's map: the bright diagonal just right of the middle is 'look at the next token'.")),
    Step("mlm", "Pretraining task 1: masked language modelling",
         "How does BERT learn without labels? It hides 15% of the tokens (80% become [MASK], 10% a random word, "
         "10% stay) and learns to guess them back from both sides. Billions of such guesses on books and Wikipedia "
         "teach it grammar, facts and meaning.",
         ("Play it as a class game first: read the sentence aloud with a blank and collect guesses.",
          "A probability of 40% is not 'unsure': BERT spreads its belief over 30,000 pieces.",
          "The playground's game lets each student play against BERT on their phone.")),
    Step("nsp", "Pretraining task 2: next-sentence prediction and sentence pairs",
         "Many tasks compare two texts (question and passage, premise and hypothesis). So BERT was also trained on "
         "**pairs**: [CLS] A [SEP] B [SEP], where half the time B really follows A and half the time it is a random "
         "sentence; a small head on [CLS] says which. Attention crosses freely between the two sentences.",
         ("Later models (RoBERTa) found NSP adds little and dropped it; ALBERT replaced it with sentence order.",
          "The segment embedding from step 2 is what tells the two sentences apart.")),
    Step("finetune", "Fine-tuning: one small task head on top",
         "After pretraining, BERT is adapted to a task with labelled examples: a **task head**, often a single "
         "linear layer, reads the final [CLS] vector and outputs one score per class. All weights are then trained "
         "a little more, for a few epochs, at a small learning rate.",
         ("The head is tiny next to BERT: almost all the knowledge comes from pretraining.",
          "An untrained head gives near-random answers: that is what fine-tuning fixes.",
          "The Fine-tuning lab trains such a head live on this machine.")),
    Step("training", "Training tips: batch size, mixed precision, learning-rate schedule",
         "Pretraining BERT took days on many accelerators, and three tricks make such runs work. **Large batches** "
         "(BERT used 256 sequences; gradient accumulation fakes a big batch on a small GPU) give stabler gradients. "
         "**Mixed precision** keeps numbers in 16 bits where it is safe, halving memory and speeding up. A "
         "**learning-rate schedule** warms up from 0, then decays to 0.",
         ("Warm-up protects the randomly initialised weights from huge early updates.",
          "bf16 keeps float32's range with fewer digits; fp16 needs loss scaling.",
          "The Pretraining lab lets students try these settings on a small run.")),
    Step("family", "Distillation and BERT's successors",
         "BERT-base has 110M parameters: too slow for many phones and servers. **Distillation** trains a smaller "
         "*student* to copy a *teacher*'s whole probability distribution (softened by a temperature), not just its "
         "top answer. DistilBERT keeps half the layers; ALBERT shares weights; RoBERTa trains longer without NSP.",
         ("The soft targets carry 'dark knowledge': which wrong answers are almost right.",
          "The bundled model in this app is itself a distilled 6-layer model.",
          "BERT's family page compares their sizes part by part.")),
    Step("recap", "Recap: what BERT is",
         "BERT is a stack of self-attention layers that reads a whole text at once, pretrained on two "
         "self-supervised games (masked words, next sentence) and then fine-tuned with a small head for each task. "
         "Everything you saw ran live on the model loaded in this app.",
         ("Ask: which of today's ideas surprised you? Collect one per table.",
          "Homework: find a head in the Attention explorer that does something the class can name.")),
)

PRONOUN_TEXT = "The animal didn't cross the street because it was too tired."
PRONOUN, PRONOUN_NOUN, PRONOUN_OPTIONS = "it", "animal", ("animal", "street", "tired")
TOKENS_A, TOKENS_B = "Tokenization is unbelievably useful.", "It splits rare words."
NEXT_TEXT = "The quick brown fox jumps over the lazy dog near the river bank."
BIDI_TEXTS = ("I went to the [MASK] to see a doctor.", "I went to the [MASK] to swim.")  # same left, new right
MLM_TEXT = "Paris is the capital of [MASK]."
MLM_OPTIONS = ("france", "paris", "europe")
NSP_A, NSP_NEXT = "The man went to the store.", "He bought a gallon of milk."
NSP_RANDOM = "Penguins are flightless birds."
FINETUNE_TEXTS = ("I loved this film.", "I hated this film.")
SCHEDULE = TrainConfig(max_steps=1000, lr=1e-4, warmup_ratio=0.1, schedule="linear")
SCHEDULE_STEP = 50
TEMPERATURE = 3.0


def word_position(enc, text: str, word: str) -> int:
    """The position of the first wordpiece of ``word`` (its first whole-word occurrence) in ``enc`` of ``text``."""
    import re

    m = re.search(rf"\b{re.escape(word)}\b", text)
    if m is None:
        raise ValueError(f"{word!r} is not a word of {text!r}")
    for i, (start, end) in enumerate(enc.offsets):
        if enc.word_ids[i] is not None and start <= m.start() < max(end, start + 1):
            return i
    raise ValueError(f"{word!r} was cut off")


def _ordinary(tokens: list[str]) -> np.ndarray:
    return np.array([t not in ("[CLS]", "[SEP]", "[PAD]") for t in tokens])


# --- 1. self-attention ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PronounHead:
    tokens: list[str]
    query: int  # position of the pronoun
    target: int  # position of the noun
    layer: int
    head: int
    row: np.ndarray  # (T,) the pronoun's attention in that head
    top: int  # position of the word (not [CLS]/[SEP], not itself) it attends to most
    attention: np.ndarray  # (T, T) the head's map
    question: Question

    @property
    def noun_is_top(self) -> bool:
        return self.top == self.target


def step_attention(lm: LoadedModel, text: str = PRONOUN_TEXT) -> PronounHead:
    """The head where the pronoun attends most to its noun: among the heads whose top word (not [CLS]/[SEP], not
    the pronoun itself) is the noun, the one with the largest weight; if no head has it on top, the largest weight."""
    ins = lm.inspect(text, with_mlm=False)
    toks = ins.tokens
    q, t = word_position(ins.encoded, text, PRONOUN), word_position(ins.encoded, text, PRONOUN_NOUN)
    rows = ins.attentions[:, :, q, :]  # (L, H, T)
    words = _ordinary(toks)
    words[q] = False
    tops = np.where(words, rows, -1.0).argmax(-1)  # (L, H)
    weight = np.where(tops == t, rows[..., t], -1.0) if (tops == t).any() else rows[..., t]
    l, h = (int(i) for i in np.unravel_index(int(weight.argmax()), weight.shape))
    top = int(tops[l, h])
    opts = PRONOUN_OPTIONS + ("another word",)
    answer = opts.index(toks[top]) if toks[top] in PRONOUN_OPTIONS else len(opts) - 1
    return PronounHead(toks, q, t, l, h, rows[l, h], top, ins.attentions[l, h],
                       Question(f"'{PRONOUN_TEXT}' In one head of this model, which word does '{PRONOUN}' look at most?",
                                opts, answer))


# --- 2. tokens -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tokens:
    tokens: list[str]
    input_ids: np.ndarray
    segments: np.ndarray  # 0 = A, 1 = B
    n_a: int  # tokens of [CLS] A [SEP]
    continuations: list[str]  # the ## pieces
    question: Question


def step_tokens(lm: LoadedModel) -> Tokens:
    enc = lm.tokenize(TOKENS_A, TOKENS_B)
    n_a = int((enc.token_type_ids == 0).sum())
    opts = ("6 or fewer", "7 or 8", "9 or more")
    answer = 0 if n_a <= 6 else 1 if n_a <= 8 else 2
    return Tokens(list(enc.tokens), enc.input_ids, enc.token_type_ids, n_a,
                  [t for t in enc.tokens if t.startswith("##")],
                  Question(f"How many tokens does BERT read for sentence A, '{TOKENS_A}', counting [CLS] and [SEP]?",
                           opts, answer))


# --- 3. bidirectional -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NextHead:
    tokens: list[str]
    layer: int
    head: int
    share: float  # mean share of attention on the next token
    attention: np.ndarray  # (T, T)
    guesses: tuple[list[tuple[str, float]], ...] | None  # BERT's top 5 for each of BIDI_TEXTS (None: no MLM head)
    question: Question


def step_bidirectional(lm: LoadedModel) -> NextHead:
    """The head with the highest mean 'attend to the next token' share (head_statistics), and BERT's guesses for
    two [MASK]s with the same words on the left and different words on the right."""
    ins = lm.inspect(NEXT_TEXT, with_mlm=False)
    nxt = head_statistics(ins.attentions, ins.tokens)["next"]
    l, h = (int(i) for i in np.unravel_index(int(np.nanargmax(nxt)), nxt.shape))
    share = float(nxt[l, h])
    guesses = tuple(lm.fill_mask(t, 5)[0] for t in BIDI_TEXTS) if lm.has_mlm_head else None
    opts = ("under 20%", "20% to 50%", "over 50%")
    answer = 0 if share < 0.2 else 1 if share <= 0.5 else 2
    return NextHead(list(ins.tokens), l, h, share, ins.attentions[l, h], guesses,
                    Question("This head looks to the right. On average, what share of a token's attention goes to the "
                             "very next token?", opts, answer))


# --- 4. MLM -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Masked:
    top: list[tuple[str, float]]  # BERT's top 10 at the [MASK]
    question: Question


def step_mlm(lm: LoadedModel) -> Masked | None:
    if not lm.has_mlm_head:
        return None
    top = lm.fill_mask(MLM_TEXT, 10)[0]
    opts = MLM_OPTIONS + ("another word",)
    answer = opts.index(top[0][0]) if top[0][0] in MLM_OPTIONS else len(opts) - 1
    return Masked(top, Question(f"'{MLM_TEXT}' What is BERT's top guess for the blank?", opts, answer))


# --- 5. NSP -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    crossing: dict[str, np.ndarray]  # stats.segment_crossing of (A, the true next sentence)
    cross_share: float  # A → B, averaged over layers
    p_next: tuple[float, float] | None  # P(IsNext) for the true and the random sentence (None: no NSP head)
    question: Question


def step_nsp(lm: LoadedModel) -> Pair:
    ins = lm.inspect(NSP_A, NSP_NEXT, with_mlm=False)
    crossing = segment_crossing(ins.attentions, ins.token_type_ids, ins.encoded.special)
    share = float(crossing["A → B"].mean())
    if lm.has_nsp_head:
        p = (float(ins.nsp_probs[0]), float(lm.inspect(NSP_A, NSP_RANDOM, with_mlm=False).nsp_probs[0]))
        opts = (f"'{NSP_NEXT}'", f"'{NSP_RANDOM}'", "both about the same (within 5 points)")
        answer = 2 if abs(p[0] - p[1]) < 0.05 else 0 if p[0] > p[1] else 1
        q = Question(f"A = '{NSP_A}' Which B does BERT rate more likely to follow A?", opts, answer)
    else:
        p = None
        opts = ("under 10%", "10% to 30%", "over 30%")
        q = Question("How much of sentence A's attention lands on sentence B, on average over all layers?", opts,
                     0 if share < 0.1 else 1 if share <= 0.3 else 2)
    return Pair(crossing, share, p, q)


# --- 6. fine-tuning ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskHead:
    cls_vectors: np.ndarray  # (2, D) final [CLS] vectors of FINETUNE_TEXTS
    probs: np.ndarray  # (2, 2) an untrained 2-class head's softmax for each text
    head_params: int  # 2·D + 2
    model_params: int
    question: Question


def step_finetune(lm: LoadedModel, seed: int = 0) -> TaskHead:
    """A fresh, untrained linear head (seeded, std 0.02 as in BERT) on the [CLS] vector: the fine-tuning setup."""
    cls = np.stack([lm.inspect(t, with_mlm=False).hidden_states[-1, 0] for t in FINETUNE_TEXTS]).astype(np.float64)
    D = cls.shape[1]
    w = np.random.default_rng(seed).normal(0, 0.02, size=(D, 2))
    logits = cls @ w
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    n_head, n_model = 2 * D + 2, int(sum(p.numel() for p in lm.model.parameters()))
    opts = (f"about {n_head:,}", f"about {D * D:,}", f"about {n_model:,} (a second BERT)")
    return TaskHead(cls, probs, n_head, n_model,
                    Question("How many new numbers (parameters) does a 2-class task head add to this BERT?", opts, 0))


# --- 7. training tips -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    steps: list[int]
    lrs: list[float]
    warmup_steps: int
    lr_at_question: float  # the LR at SCHEDULE_STEP
    params: int
    question: Question


def step_training(lm: LoadedModel, cfg: TrainConfig = SCHEDULE) -> Schedule:
    steps = list(range(0, cfg.max_steps + 1, 5))
    lrs = [lr_at(s, cfg) for s in steps]
    x = lr_at(SCHEDULE_STEP, cfg)
    opts = ("0 (nothing happens yet)", "about half the peak", "the full peak")
    answer = 0 if x < 0.25 * cfg.lr else 1 if x < 0.75 * cfg.lr else 2
    return Schedule(steps, lrs, int(cfg.warmup_ratio * cfg.max_steps), x,
                    int(sum(p.numel() for p in lm.model.parameters())),
                    Question(f"Peak learning rate {cfg.lr:g}, {cfg.warmup_ratio:.0%} warm-up, {cfg.max_steps:,} steps. "
                             f"What is the learning rate at step {SCHEDULE_STEP}?", opts, answer))


# --- 8. distillation --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Distillation:
    tokens: list[str]  # the teacher's top words at MLM_TEXT
    hard: np.ndarray  # their probability at T = 1
    soft: np.ndarray  # … at T = TEMPERATURE
    names: list[str]
    breakdowns: list[dict[str, int]]
    question: Question


def step_family(lm: LoadedModel, temperature: float = TEMPERATURE) -> Distillation:
    names = list(family.FAMILY)
    breakdowns = [family.parameters(family.FAMILY[n]) for n in names]
    toks, hard, soft = [], np.zeros(0), np.zeros(0)
    if lm.has_mlm_head:
        _, probs = lm.mask_probs(MLM_TEXT)
        logits = np.log(probs[0].float().cpu().numpy().astype(np.float64) + 1e-30)
        p1, pt = family.soften(logits, 1.0), family.soften(logits, temperature)
        top = np.argsort(-p1)[:8]
        toks, hard, soft = lm.tokenizer.convert_ids_to_tokens(top.tolist()), p1[top], pt[top]
    distil = family.FAMILY["distilbert-base-uncased"].layers
    opts = ("3", "6", "9")
    return Distillation(list(toks), hard, soft, names, breakdowns,
                        Question(f"BERT-base has {family.FAMILY['bert-base-uncased'].layers} layers. How many does "
                                 "its distilled student DistilBERT keep?", opts, opts.index(str(distil))))


def recap_question() -> Question:
    return Question("Which of these was NOT one of BERT's pretraining tasks?",
                    ("guess masked words", "does sentence B follow A?", "predict the next word, left to right"), 2)
