"""Contextual embeddings: one word's vectors in many sentences, layer by layer (no Streamlit here).

A word's vector at layer 0 (the embedding layer's output) depends only on the wordpiece, its position and its
segment; every later layer mixes in the rest of the sentence. So "bank" beside a river and "bank" with money start
out (almost) the same and drift apart. ``CORPUS`` is a small set of everyday sentences we wrote for this, each with
an ambiguous word and its sense.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .loaded import LoadedModel


@dataclass(frozen=True)
class CorpusSentence:
    text: str
    word: str  # the ambiguous word it contains
    sense: str  # which meaning it has here ("" for a user's sentence)


_SENSES: dict[str, dict[str, list[str]]] = {
    "bank": {
        "river side": ["We had a picnic on the bank of the river.", "The boat drifted towards the muddy bank.",
                       "Ducks were sleeping on the grassy bank.", "He fished from the bank all afternoon.",
                       "The river burst its bank after the storm.", "Wild flowers grow along the bank of the stream."],
        "money": ["She opened an account at the bank.", "The bank lent them money for the house.",
                  "I need to go to the bank before it closes.", "The bank raised its interest rates again.",
                  "He works as a clerk in a bank downtown.", "My bank charges a fee for every transfer."],
    },
    "bat": {
        "animal": ["A bat flew out of the cave at dusk.", "The bat hung upside down from the roof.",
                   "Every bat uses echoes to find insects.", "We saw a tiny bat near the old barn.",
                   "The bat flapped its wings and vanished into the night.", "A fruit bat was eating a mango."],
        "sports": ["He swung the bat and hit the ball over the fence.", "She bought a new cricket bat.",
                   "The player dropped his bat and ran to first base.", "Hold the bat with both hands.",
                   "My wooden bat cracked during the game.", "The coach handed him a lighter bat."],
    },
    "spring": {
        "season": ["The trees blossom in spring.", "We plant tomatoes every spring.",
                   "Spring is my favourite time of year.", "The birds come back in early spring.",
                   "It rained a lot this spring.", "The school trip is planned for next spring."],
        "water or coil": ["They drank cold water from a mountain spring.", "The hot spring was full of tourists.",
                          "The old mattress has a broken spring.", "A small spring feeds the pond.",
                          "The clock stopped because the spring snapped.", "Press the spring down and let it go."],
    },
    "light": {
        "brightness": ["Turn on the light, please.", "The light in the kitchen is too bright.",
                       "Plants need light to grow.", "A light was shining in the window.",
                       "The light from the sun takes eight minutes to reach us.", "She read by the light of a candle."],
        "not heavy": ["This bag is very light.", "He packed a light jacket for the trip.",
                      "The box was light enough for a child to carry.", "We had a light lunch before the walk.",
                      "A feather is light.", "The new laptop is thin and light."],
    },
    "right": {
        "direction": ["Turn right at the traffic lights.", "The shop is on the right side of the street.",
                      "Raise your right hand.", "She writes with her right hand.",
                      "The door on the right leads to the garden.", "Keep right when you walk up the stairs."],
        "correct": ["You are right about the weather.", "That is the right answer.",
                    "I hope we made the right choice.", "She was right to call the doctor.",
                    "He got every question right.", "Is this the right way to the station?"],
    },
    "bark": {
        "dog": ["The dogs bark at the postman every morning.", "I heard a loud bark outside.",
                "Our puppy has a tiny bark.", "The bark of the dog woke the baby.",
                "Dogs bark when strangers come near.", "His bark is worse than his bite."],
        "tree": ["The bark of the oak is rough.", "Deer chewed the bark off the young trees.",
                 "She peeled a strip of bark from the birch.", "Moss grows on the bark of old trees.",
                 "The bark protects the tree from insects.", "We made a boat from a piece of bark."],
    },
    "match": {
        "game": ["We watched the football match on television.", "The tennis match lasted four hours.",
                 "Our team lost the match in the last minute.", "Tickets for the match sold out quickly.",
                 "He scored twice in the match.", "The chess match ended in a draw."],
        "fire": ["He struck a match to light the candle.", "The match went out in the wind.",
                 "Keep the match away from the curtains.", "She lit the stove with a match.",
                 "There was only one match left in the box.", "A burnt match lay on the table."],
    },
    "watch": {
        "clock": ["My watch is five minutes fast.", "He looked at his watch and sighed.",
                  "She got a gold watch for her birthday.", "The battery in my watch is dead.",
                  "His watch has a leather strap.", "I left my watch at the swimming pool."],
        "look": ["We watch the news every evening.", "Watch the children while I cook.",
                 "They like to watch birds in the park.", "Did you watch the film last night?",
                 "Watch out for the step.", "I will watch the game at home."],
    },
    "rock": {
        "stone": ["He sat on a rock by the sea.", "A rock fell from the cliff.",
                  "The crabs hide under the rock.", "She threw a rock into the lake.",
                  "The rock was covered in seaweed.", "They climbed the steep rock face."],
        "music": ["My brother plays in a rock band.", "They listened to rock music all night.",
                  "The rock concert was very loud.", "She loves old rock songs.",
                  "He dreams of becoming a rock star.", "The radio station plays rock and pop."],
    },
    "ring": {
        "jewellery": ["He gave her a diamond ring.", "She wears a silver ring on her finger.",
                      "The ring was too small for him.", "I lost my wedding ring in the garden.",
                      "The ring belonged to her grandmother.", "A gold ring sparkled in the shop window."],
        "sound": ["I heard the phone ring twice.", "Give me a ring when you arrive.",
                  "The bells ring every Sunday morning.", "Did the doorbell ring?",
                  "The ring of the alarm woke everyone.", "Please ring the bell for service."],
    },
    "fair": {
        "just": ["The referee was fair to both teams.", "It is not fair that he gets more cake.",
                 "We want a fair price for the car.", "Everyone deserves a fair chance.",
                 "The teacher gave a fair mark.", "That seems like a fair deal."],
        "festival": ["We rode the big wheel at the fair.", "The county fair opens next week.",
                     "She won a goldfish at the fair.", "The book fair had many visitors.",
                     "Children love the rides at the fair.", "They sold cakes at the school fair."],
    },
    "wave": {
        "water": ["A big wave crashed onto the beach.", "The surfer caught a huge wave.",
                  "The wave knocked over the sandcastle.", "Each wave brought more shells to the shore.",
                  "The boat rocked on every wave.", "A cold wave soaked our feet."],
        "hand": ["She gave us a friendly wave.", "Wave goodbye to your grandmother.",
                 "He answered with a wave of his hand.", "The children wave at the passing train.",
                 "With a small wave she left the room.", "The queen gave a royal wave from the balcony."],
    },
}
CORPUS: list[CorpusSentence] = [CorpusSentence(t, w, s) for w, senses in _SENSES.items()
                                for s, texts in senses.items() for t in texts]
WORDS = list(_SENSES)
YOURS = "your sentence"


@dataclass(frozen=True)
class EncodedCorpus:
    """Every sentence's wordpieces and hidden states at every layer."""

    sentences: list[CorpusSentence]
    tokens: list[list[str]]
    offsets: list[list[tuple[int, int]]]
    special: list[np.ndarray]  # (T_i,) bool
    states: list[np.ndarray]  # (L+1, T_i, D) float32: embedding layer output, then each layer

    @property
    def n_layers(self) -> int:
        return self.states[0].shape[0] - 1


def user_sentences(text: str, limit: int = 20) -> list[CorpusSentence]:
    """A user's sentences, one per non-empty line (at most ``limit``)."""
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    return [CorpusSentence(ln, "", YOURS) for ln in lines[:limit]]


@torch.inference_mode()
def encode_corpus(lm: LoadedModel, sentences: Sequence[CorpusSentence] = CORPUS, batch_size: int = 32,
                  max_tokens: int = 128) -> EncodedCorpus:
    """Run every sentence (cut to ``max_tokens`` wordpieces) and keep all hidden states (unpadded)."""
    encs = [lm.tokenize(s.text, max_tokens=max_tokens) for s in sentences]
    states: list[np.ndarray] = []
    for start in range(0, len(encs), batch_size):
        chunk = encs[start:start + batch_size]
        T = max(len(e.input_ids) for e in chunk)
        ids = torch.full((len(chunk), T), lm.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), T), dtype=torch.long)
        for i, e in enumerate(chunk):
            ids[i, :len(e.input_ids)] = torch.as_tensor(e.input_ids)
            mask[i, :len(e.input_ids)] = 1
        out = lm.model.encode(ids.to(lm.device), None, mask.to(lm.device), output_hidden_states=True)
        hs = torch.stack(out.hidden_states, dim=1).float().cpu().numpy()  # (B, L+1, T, D)
        states += [hs[i, :, :len(e.input_ids)] for i, e in enumerate(chunk)]
    return EncodedCorpus(sentences=list(sentences), tokens=[e.tokens for e in encs],
                         offsets=[e.offsets for e in encs], special=[e.special for e in encs], states=states)


@dataclass(frozen=True)
class Occurrences:
    """Every occurrence of one word: its vector at one layer (mean of its wordpieces) and where it is."""

    word: str
    layer: int
    vectors: np.ndarray  # (N, D)
    sentence: np.ndarray  # (N,) index into the corpus
    positions: list[list[int]]  # the occurrence's wordpiece positions
    texts: list[str]
    senses: list[str]


def word_positions(enc_offsets: Sequence[tuple[int, int]], special: np.ndarray, text: str, word: str) -> list[list[int]]:
    """Wordpiece positions of each whole-word occurrence of ``word`` in ``text`` (case-insensitive)."""
    found = []
    for m in re.finditer(rf"(?<!\w){re.escape(word)}(?!\w)", text, flags=re.IGNORECASE):
        pos = [i for i, (a, b) in enumerate(enc_offsets) if not special[i] and b > a and a >= m.start()
               and b <= m.end()]
        if pos:
            found.append(pos)
    return found


def occurrences(corpus: EncodedCorpus, word: str, layer: int) -> Occurrences:
    """Every whole-word occurrence of ``word`` in the corpus, with its vector at ``layer``."""
    vecs, sent, positions, texts, senses = [], [], [], [], []
    for i, s in enumerate(corpus.sentences):
        for pos in word_positions(corpus.offsets[i], corpus.special[i], s.text, word):
            vecs.append(corpus.states[i][layer, pos].mean(axis=0))
            sent.append(i)
            positions.append(pos)
            texts.append(s.text)
            senses.append(s.sense if s.word == word.lower() or s.sense == YOURS else "other")
    D = corpus.states[0].shape[-1]
    return Occurrences(word=word, layer=layer, vectors=np.array(vecs, dtype=np.float32).reshape(-1, D),
                       sentence=np.array(sent, dtype=int), positions=positions, texts=texts, senses=senses)


def project(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(N, D) -> (N, 2) with scikit-learn's PCA or t-SNE (perplexity adapted to small N)."""
    x = np.asarray(vectors, dtype=np.float64)
    n = len(x)
    if n < 3:
        return np.pad(x[:, :2], ((0, 0), (0, max(0, 2 - x.shape[1]))))
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed,
                    metric="cosine").fit_transform(x)
    raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")


def sense_accuracy(occ: Occurrences) -> float:
    """Leave-one-out 1-nearest-neighbour (cosine) accuracy of the sense labels: do same-sense vectors cluster?"""
    labelled = np.array([s not in (YOURS, "other") for s in occ.senses])
    x, y = occ.vectors[labelled], np.array(occ.senses)[labelled]
    if len(x) < 2 or len(set(y)) < 2:
        return float("nan")
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    return float((y[sim.argmax(axis=1)] == y).mean())


def nearest_neighbours(corpus: EncodedCorpus, layer: int, vector: np.ndarray, k: int = 10,
                       exclude: tuple[int, Sequence[int]] | None = None) -> pd.DataFrame:
    """The ``k`` corpus tokens (no specials) closest to ``vector`` at ``layer`` by cosine, as in exBERT's search.

    exclude: (sentence index, positions) of the query itself. Columns: cosine, token, sentence, position, sense.
    """
    keep = [(i, int(p)) for i, c in enumerate(corpus.special) for p in np.flatnonzero(~c)
            if not (exclude is not None and i == exclude[0] and p in exclude[1])]
    x = np.stack([corpus.states[i][layer, p] for i, p in keep]).astype(np.float64)
    v = np.asarray(vector, dtype=np.float64)
    cos = (x @ v) / (np.linalg.norm(x, axis=1) * np.linalg.norm(v) + 1e-12)
    best = np.argsort(-cos, kind="stable")[:k]
    picked = [keep[b] for b in best]
    return pd.DataFrame({"cosine": cos[best], "token": [corpus.tokens[i][p] for i, p in picked],
                         "sentence": [corpus.sentences[i].text for i, _ in picked],
                         "position": [p for _, p in picked], "sense": [corpus.sentences[i].sense for i, _ in picked],
                         "sentence_index": [i for i, _ in picked]})
