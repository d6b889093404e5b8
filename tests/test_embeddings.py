"""bert_core.embeddings: the written corpus, occurrences, projections and nearest neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from bert_core.embeddings import (CORPUS, WORDS, YOURS, encode_corpus, nearest_neighbours, occurrences, project,
                                  sense_accuracy, user_sentences)


@pytest.fixture(scope="module")
def corpus(bundled):
    mine = user_sentences("I sat by the bank and watched the river.\n\n<script>bank</script> 😀\nno word here")
    return encode_corpus(bundled, [*CORPUS, *mine])


def test_the_corpus_is_ours_everyday_and_ambiguous():
    assert 100 <= len(CORPUS) <= 300 and len(WORDS) >= 10
    assert len({s.text for s in CORPUS}) == len(CORPUS)  # no sentence twice
    for w in WORDS:
        senses = [s.sense for s in CORPUS if s.word == w]
        assert len(set(senses)) == 2 and min(senses.count(x) for x in set(senses)) >= 5, w
    for s in CORPUS:
        assert s.word in s.text.lower(), s.text


def test_occurrences_are_the_mean_of_the_words_pieces(corpus, bundled):
    occ = occurrences(corpus, "bank", 3)
    assert len(occ.texts) == 12 + 2  # 12 written sentences and 2 of the user's
    assert occ.senses.count(YOURS) == 2 and set(occ.senses) == {"river side", "money", YOURS}
    i = occ.texts.index("<script>bank</script> 😀")
    ins = bundled.inspect(occ.texts[i])
    assert [ins.tokens[p] for p in occ.positions[i]] == ["bank"]
    np.testing.assert_allclose(occ.vectors[i], ins.hidden_states[3, occ.positions[i][0]], atol=1e-4)
    assert occurrences(corpus, "nonexistent", 2).vectors.shape == (0, bundled.config.hidden_size)


def test_nearest_neighbours_equal_a_direct_cosine(corpus):
    occ = occurrences(corpus, "bat", 5)
    q, s, pos = occ.vectors[0], int(occ.sentence[0]), occ.positions[0]
    nn = nearest_neighbours(corpus, 5, q, k=8, exclude=(s, pos))
    every = [(i, p) for i in range(len(corpus.sentences)) for p in range(len(corpus.tokens[i]))
             if not corpus.special[i][p] and not (i == s and p in pos)]
    cos = np.array([corpus.states[i][5, p] @ q / np.linalg.norm(corpus.states[i][5, p]) / np.linalg.norm(q)
                    for i, p in every])
    best = np.argsort(-cos)[:8]
    np.testing.assert_allclose(nn["cosine"], cos[best], rtol=1e-5)
    assert list(zip(nn["sentence_index"], nn["position"])) == [every[b] for b in best]
    assert list(nn["token"]) == [corpus.tokens[i][p] for i, p in (every[b] for b in best)]


def test_pca_is_the_top_two_principal_components():
    x = np.random.default_rng(0).normal(size=(30, 8)) * np.arange(1, 9)
    xy = project(x, "pca")
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(np.abs(xy), np.abs(centred @ vt[:2].T), atol=1e-8)
    assert project(x, "tsne").shape == (30, 2)
    with pytest.raises(ValueError):
        project(x, "umap")


def test_senses_separate_in_later_layers(corpus):
    first = np.nanmean([sense_accuracy(occurrences(corpus, w, 0)) for w in WORDS])
    last = np.nanmean([sense_accuracy(occurrences(corpus, w, corpus.n_layers)) for w in WORDS])
    print(f"1-NN sense accuracy: layer 0 {first:.2f}, last layer {last:.2f}")
    assert last >= first + 0.2  # measured on the bundled model: 0.53 -> 0.92
