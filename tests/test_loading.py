"""Loading: every failure a user can cause is a ModelLoadError that says how to fix it, without waiting on a
network that is not there (asserted by which calls were made, not by the clock)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bert_core import MissingHeadError, ModelLoadError, load_model
from bert_core import download as dl
from bert_core import loading
from conftest import make_checkpoint, save_tokenizer

ROOT = Path(__file__).resolve().parents[1]


def assert_offline_advice(msg: str, name: str) -> None:
    assert f"python -m bert_core.download {name}" in msg
    assert "local folder" in msg and "bundled" in msg


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, so that nothing can come from an earlier download."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def no_network(monkeypatch):
    """Every socket connection and DNS lookup fails, as on a machine without internet; records the attempts."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError(101, "Network is unreachable (blocked by the test)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


# --- local folders -------------------------------------------------------------------------------------------------
def test_missing_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="Folder not found") as e:
        load_model(str(tmp_path / "no-such-model"))
    assert "config.json" in str(e.value)


def test_folder_without_config(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(str(tmp_path))


def test_folder_without_weights(tmp_path):
    make_checkpoint(tmp_path, "BertForMaskedLM")
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no weights") as e:
        load_model(str(tmp_path))
    assert "model.safetensors" in str(e.value) and "pytorch_model.bin" in str(e.value)


def test_broken_config_json(tmp_path):
    make_checkpoint(tmp_path, "BertForMaskedLM")
    (tmp_path / "config.json").write_text("{ not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_model(str(tmp_path))


@pytest.mark.parametrize("kind", ["distilbert", "gpt2"])
def test_non_bert_checkpoint(tmp_path, kind):
    import transformers

    if kind == "distilbert":
        cfg = transformers.DistilBertConfig(vocab_size=60, dim=16, n_layers=1, n_heads=2, hidden_dim=32)
        transformers.DistilBertModel(cfg).save_pretrained(str(tmp_path))
    else:
        cfg = transformers.GPT2Config(vocab_size=60, n_embd=16, n_layer=1, n_head=2, n_positions=32)
        transformers.GPT2Model(cfg).save_pretrained(str(tmp_path))
    save_tokenizer(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    with pytest.raises(ModelLoadError, match=f"holds a '{kind}' model") as e:
        load_model(str(tmp_path))
    assert "BERT checkpoints" in str(e.value)


def test_weights_that_do_not_fit_the_config(tmp_path):
    make_checkpoint(tmp_path, "BertForMaskedLM")
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["hidden_size"], cfg["num_attention_heads"] = 64, 4
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="has shape"):
        load_model(str(tmp_path))


def test_untied_mlm_decoder_is_refused_not_silently_dropped(tmp_path):
    from safetensors.torch import load_file, save_file

    make_checkpoint(tmp_path, "BertForMaskedLM")
    sd = load_file(str(tmp_path / "model.safetensors"))
    sd["cls.predictions.decoder.weight"] = torch.randn_like(sd["bert.embeddings.word_embeddings.weight"])
    save_file(sd, str(tmp_path / "model.safetensors"))
    with pytest.raises(ModelLoadError, match="not tied"):
        load_model(str(tmp_path))


def test_token_classification_checkpoint_loads_its_encoder_without_a_sentence_classifier(tmp_path):
    make_checkpoint(tmp_path, "BertForTokenClassification", num_labels=5)
    lm = load_model(str(tmp_path), device="cpu")
    assert lm.model.classifier is None and not lm.has_mlm_head and not lm.has_nsp_head
    assert lm.inspect("the cat sat").hidden_states.shape[0] == 3


# --- checkpoints without heads ---------------------------------------------------------------------------------------
def test_encoder_only_checkpoint_loads_with_heads_marked_absent(tmp_path):
    make_checkpoint(tmp_path, "BertModel")
    lm = load_model(str(tmp_path), device="cpu")
    assert lm.has_mlm_head is False and lm.has_nsp_head is False
    assert lm.model.cls.predictions is None and lm.model.cls.seq_relationship is None  # absent, not random
    assert lm.facts()["MLM head"] is False
    ins = lm.inspect("the cat sat on the mat", "it was happy")
    assert ins.mlm_logits is None and ins.nsp_probs is None
    assert ins.attentions.shape[:2] == (2, 4) and np.isfinite(ins.hidden_states).all()
    with pytest.raises(MissingHeadError, match="no masked-language-model head") as e:
        lm.fill_mask("the cat sat on the [MASK] .")
    assert str(tmp_path) in str(e.value)
    with pytest.raises(MissingHeadError):
        lm.mask_probs("the [MASK] sat")


def test_masked_lm_checkpoint_has_no_nsp_head(tiny_mlm_dir):
    lm = load_model(str(tiny_mlm_dir), device="cpu")
    assert lm.has_mlm_head and not lm.has_nsp_head
    assert lm.inspect("the cat", "the dog").nsp_probs is None
    assert len(lm.fill_mask("the [MASK] sat", top_k=3)[0]) == 3


# --- names, hub ids and the network -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["", "   ", "bert base uncased!", "a/b/c/d", "./relative/missing"])
def test_invalid_names(name, no_network):
    with pytest.raises(ModelLoadError):
        load_model(name)
    assert not no_network  # refused before any connection


def test_hub_id_offline_mode(monkeypatch, empty_hf_cache, no_network):
    """Offline mode on: the cache is read, no connection is even tried, and the message says why."""
    import huggingface_hub

    calls = []
    real = huggingface_hub.snapshot_download
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: calls.append(k) or real(*a, **k))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as e:
        load_model("bert-base-uncased")
    assert [k.get("local_files_only") for k in calls] == [True]  # the cache only, never a download
    assert not no_network
    assert "offline" in str(e.value)
    assert_offline_advice(str(e.value), "bert-base-uncased")


def test_hub_id_with_the_network_down(monkeypatch, empty_hf_cache, no_network):
    """Offline mode NOT set: the real huggingface_hub tries the network, finds none, and we say what to do."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(ModelLoadError) as e:
        load_model("google-bert/bert-base-uncased")
    assert no_network, "the hub should have been tried"
    assert "unreachable" in str(e.value)
    assert_offline_advice(str(e.value), "google-bert/bert-base-uncased")


def test_hub_id_when_the_download_raises_a_connection_error(monkeypatch, empty_hf_cache):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    calls = []

    def fake_snapshot_download(repo_id, local_files_only=False, **kwargs):
        calls.append(local_files_only)
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        raise ConnectionError("Failed to establish a new connection: [Errno 101] Network is unreachable")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    with pytest.raises(ModelLoadError) as e:
        load_model("bert-base-uncased")
    assert calls == [True, False]  # the cache first, then one download attempt
    assert "unreachable" in str(e.value) and "ConnectionError" in str(e.value)
    assert_offline_advice(str(e.value), "bert-base-uncased")


def test_hub_id_from_the_cache_needs_no_network(monkeypatch, tmp_path, no_network):
    """A model that `python -m bert_core.download` put in the cache loads offline, through the cache lookup."""
    import huggingface_hub

    folder = tmp_path / "snapshot"
    make_checkpoint(folder, "BertForMaskedLM")
    seen = []

    def cached_only(repo_id, local_files_only=False, allow_patterns=None, **kwargs):
        seen.append((repo_id, local_files_only, allow_patterns))
        assert local_files_only, "the cache must be tried first"
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", cached_only)
    lm = load_model("someone/tiny-bert", device="cpu")
    assert lm.kind == "hub" and lm.folder == folder and lm.has_mlm_head
    assert seen == [("someone/tiny-bert", True, loading.HUB_FILES)]
    assert not no_network


# --- the bundled model ------------------------------------------------------------------------------------------------
def test_bundled_loads_without_network(no_network, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    lm = load_model("bundled", device="cpu")
    assert not no_network, f"network used: {no_network}"
    assert lm.kind == "bundled" and lm.config.num_hidden_layers == 6 and lm.config.hidden_size == 384
    assert lm.tokenizer.is_fast and lm.tokenizer.vocab_size == 30522
    ins = lm.inspect("The cat sat on the mat.")
    assert ins.tokens[:3] == ["[CLS]", "the", "cat"]


def test_bundled_in_a_fresh_process_uses_no_network():
    """A fresh process, with sockets blocked and offline mode NOT set."""
    code = (
        "import socket\n"
        "tries = []\n"
        "def refuse(*a, **k):\n"
        "    tries.append(a); raise OSError(101, 'blocked')\n"
        "socket.socket.connect = refuse; socket.getaddrinfo = refuse; socket.create_connection = refuse\n"
        "from bert_core import load_model\n"
        "lm = load_model('bundled', device='cpu')\n"
        "lm.inspect('hello world')\n"
        "print(len(tries))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.split()[-1]) == 0


# --- python -m bert_core.download -------------------------------------------------------------------------------------
def test_download_command_offline_prints_the_fix_and_exits_1():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "bert_core.download", "definitely-not-cached/bert-xyz"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300)  # a guard against a hang, not a goal
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "Could not download 'definitely-not-cached/bert-xyz'" in r.stderr and "offline" in r.stderr
    assert "machine with internet" in r.stderr and "bundled" in r.stderr


def test_download_command_rejects_invalid_ids(capsys):
    assert dl.main(["not a valid id!"]) == 1
    assert "not a valid hub id" in capsys.readouterr().err


def test_download_fetches_what_load_model_reads(monkeypatch, tmp_path, capsys):
    """With a (faked) reachable hub: the same file patterns as loading.HUB_FILES, and the path is printed."""
    import huggingface_hub

    folder = tmp_path / "snap"
    make_checkpoint(folder, "BertForMaskedLM")
    seen = []

    def fake(repo_id, allow_patterns=None, local_files_only=False, **kwargs):
        seen.append((repo_id, allow_patterns, local_files_only))
        return str(folder)

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    assert dl.main(["org/tiny-bert"]) == 0
    out = capsys.readouterr().out
    assert seen == [("org/tiny-bert", loading.HUB_FILES, False)]
    assert f"org/tiny-bert: ready in {folder}" in out and "Hugging Face cache:" in out


def test_build_from_state_dict_copies_by_default(tiny_dir):
    """Callers that pass a live model's state dict (e.g. benchmarks) must not get a model sharing its weights."""
    import transformers

    hf = transformers.BertForPreTraining.from_pretrained(str(tiny_dir)).eval()
    ours = loading.build_from_state_dict(loading.read_config(tiny_dir), hf.state_dict(), "test")
    w = ours.bert.embeddings.word_embeddings.weight
    assert torch.equal(w, hf.bert.embeddings.word_embeddings.weight)
    with torch.no_grad():
        w.zero_()
    assert hf.bert.embeddings.word_embeddings.weight.abs().sum() > 0


def test_a_pathlib_folder_is_accepted(tiny_mlm_dir):
    lm = load_model(tiny_mlm_dir, device="cpu")
    assert lm.kind == "local" and lm.has_mlm_head


def test_a_single_segment_checkpoint_reads_sentence_pairs_as_one_segment(tmp_path):
    """type_vocab_size 1 (e.g. some distilled BERTs): B has no segment row, so it shares A's, as in the original."""
    import torch

    from conftest import make_checkpoint

    hf = make_checkpoint(tmp_path, "BertModel", seed=5, type_vocab_size=1)
    lm = load_model(str(tmp_path))
    ins = lm.inspect("the cat sat", "the dog ran")
    assert ins.encoded.token_type_ids.tolist() == [0] * len(ins.encoded.tokens)
    ids = torch.as_tensor(ins.encoded.input_ids)[None]
    with torch.no_grad():
        want = hf(ids, token_type_ids=torch.zeros_like(ids)).last_hidden_state[0].numpy()
    assert abs(ins.hidden_states[-1] - want).max() < 1e-5


def test_bert_with_weights_keeps_fresh_only_what_it_was_told(tiny_dir):
    """The one 'new Bert + load weights' helper: keys outside ``fresh`` must all be there, and nothing extra."""
    lm = load_model(str(tiny_dir), device="cpu")
    sd = lm.model.state_dict()
    encoder = {k: t for k, t in sd.items() if k.startswith("bert.") and not k.startswith("bert.pooler.")}
    torch.manual_seed(0)
    m = loading.bert_with_weights(lm.config, encoder, fresh=("cls.", "bert.pooler.", "classifier."),
                                  mlm_head=False, nsp_head=False, classifier=True)
    assert all(torch.equal(m.state_dict()[k], t) for k, t in encoder.items())
    assert m.classifier is not None and m.bert.pooler is not None
    assert not torch.equal(m.bert.pooler.dense.weight, sd["bert.pooler.dense.weight"])  # fresh, not copied
    with pytest.raises(ValueError, match="missing.*bert.embeddings"):
        loading.bert_with_weights(lm.config, {k: t for k, t in encoder.items() if "embeddings" not in k},
                                  fresh=("cls.", "bert.pooler."))
    with pytest.raises(ValueError, match="unexpected.*cls.seq_relationship"):
        loading.bert_with_weights(lm.config, sd, fresh=("cls.predictions.",), nsp_head=False)
