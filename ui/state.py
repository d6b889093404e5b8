"""Shared app state: the cached model and the sidebar model picker.

The model returned by ``current_model()`` is shared by every session through ``st.cache_resource``:
read it, never train or mutate it (use ``LoadedModel.copy_for_training()``).

``st.session_state["model_name"]`` (MODEL_KEY) is the source of truth for which checkpoint a session uses; the
picker widgets are synced from it on every run, so code (and tests) may set it directly before a run.
"""

from __future__ import annotations

import threading
import time

import streamlit as st
import torch

from bert_core import BUNDLED, LoadedModel, ModelLoadError, load_model
from ui.text import md_escape

HUB_CHOICES = ["bert-base-uncased", "bert-base-cased", "bert-large-uncased", "google/bert_uncased_L-2_H-128_A-2"]
BUNDLED_LABEL = "Bundled (offline) MiniLM-L6"  # short: a sidebar selectbox cuts long names off
OTHER_LABEL = "Other hub id or local folder…"
DEVICES = {"auto": "Auto", "cpu": "CPU", "cuda": "GPU (CUDA)"}
DTYPES = {"fp32": "fp32 (exact)", "bf16": "bf16", "fp16": "fp16"}
MODEL_KEY = "model_name"  # session key: the name the user picked
DEVICE_KEY = "model_device"
DTYPE_KEY = "model_dtype"
LINKED_KEY = "model_from_link"  # the ?model= of the link this session opened, applied once
ERROR_KEY = "model_load_error"  # the last load failure, shown until the user picks again
USED_KEY = "models_used"  # every model name this session loaded, oldest first (the explorer compares them)
_W_CHOICE, _W_OTHER, _W_DEVICE, _W_DTYPE, _OTHER_OPEN = (
    "sb_model_choice", "sb_model_other", "sb_device", "sb_dtype", "sb_other_open")

_loaded_lock = threading.Lock()


@st.cache_resource(show_spinner=False)
def _loaded() -> set[tuple[str, str, str]]:
    """Keys already in the model cache (progress is shown only for a real load); survives module reloads."""
    return set()


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_model(name: str, device: str, dtype: str) -> LoadedModel:
    """One loaded model per (name, device, dtype) per process, shared by all sessions."""
    lm = load_model(name, device=device, dtype=dtype)
    with _loaded_lock:
        _loaded().add((name, device, dtype))
    return lm


def _load(name: str, device: str, dtype: str) -> LoadedModel:
    with _loaded_lock:
        known = (name, device, dtype) in _loaded()
    if known:
        return cached_model(name, device, dtype)
    with st.status(f"Loading {name} …", expanded=False) as status:
        t0 = time.perf_counter()
        status.write("Reading config and weights, building our BERT, loading the tokenizer.")
        try:
            lm = cached_model(name, device, dtype)
        except ModelLoadError:
            status.update(label=f"Could not load {name}", state="error")  # never left saying "Loading …"
            raise
        status.update(label=f"Loaded {name} in {time.perf_counter() - t0:.1f} s", state="complete")
    return lm


def current_model() -> LoadedModel:
    """The model the user picked in the sidebar; falls back to the bundled one if that fails to load."""
    name = st.session_state.get(MODEL_KEY, BUNDLED)
    device = st.session_state.get(DEVICE_KEY, "auto")
    dtype = st.session_state.get(DTYPE_KEY, "fp32")
    try:
        lm = _load(name, device, dtype)
        st.session_state.setdefault(USED_KEY, {})[name] = None
        return lm
    except ModelLoadError as e:
        st.session_state[ERROR_KEY] = f"Could not load **{md_escape(name)}** ({device}, {dtype}). {md_escape(e)}"
        st.session_state[MODEL_KEY] = BUNDLED
        st.session_state[DEVICE_KEY], st.session_state[DTYPE_KEY] = "auto", "fp32"
        st.session_state[_OTHER_OPEN] = False
        return _load(BUNDLED, "auto", "fp32")


def models_used() -> list[str]:
    """The models this session has loaded (the sidebar's picks and the labs' "use it" runs), oldest first."""
    return list(st.session_state.get(USED_KEY, {}))


def _choice_for(name: str) -> str:
    if name == BUNDLED:
        return BUNDLED_LABEL
    return name if name in HUB_CHOICES else OTHER_LABEL


def _on_choice() -> None:
    choice = st.session_state[_W_CHOICE]
    st.session_state.pop(ERROR_KEY, None)
    if choice == OTHER_LABEL:
        st.session_state[_OTHER_OPEN] = True  # wait for the user to type a name
        return
    st.session_state[_OTHER_OPEN] = False
    st.session_state[MODEL_KEY] = BUNDLED if choice == BUNDLED_LABEL else choice


def _on_other() -> None:
    st.session_state.pop(ERROR_KEY, None)
    typed = (st.session_state.get(_W_OTHER) or "").strip()
    if typed:
        st.session_state[MODEL_KEY] = typed


def _on_device_or_dtype() -> None:
    st.session_state.pop(ERROR_KEY, None)
    st.session_state[DEVICE_KEY] = st.session_state[_W_DEVICE]
    st.session_state[DTYPE_KEY] = st.session_state[_W_DTYPE]


def _sync_widgets() -> None:
    """Point the widgets at the state (before they are drawn), so a fallback or a test's choice shows up."""
    name = st.session_state[MODEL_KEY]
    other_open = st.session_state.get(_OTHER_OPEN, False)
    st.session_state[_W_CHOICE] = OTHER_LABEL if other_open else _choice_for(name)
    if _choice_for(name) == OTHER_LABEL:
        st.session_state[_W_OTHER] = name
    st.session_state[_W_DEVICE] = st.session_state[DEVICE_KEY]
    st.session_state[_W_DTYPE] = st.session_state[DTYPE_KEY]


def sidebar_model_picker() -> LoadedModel:
    """Model, device and precision pickers plus the loaded model's facts, in the sidebar. Returns the model."""
    linked = st.query_params.get("model")  # a shared link (e.g. a teacher's game) names the model
    if linked and st.session_state.get(LINKED_KEY) != linked:
        st.session_state[LINKED_KEY] = linked  # once per link: the user may pick another model afterwards
        st.session_state[MODEL_KEY] = linked
        st.session_state[_OTHER_OPEN] = False
    st.session_state.setdefault(MODEL_KEY, BUNDLED)
    st.session_state.setdefault(DEVICE_KEY, "auto")
    st.session_state.setdefault(DTYPE_KEY, "fp32")
    with st.sidebar:
        st.subheader("Model")
        lm = current_model()  # may fall back to the bundled model and reset the state
        _sync_widgets()
        st.selectbox("Checkpoint", [BUNDLED_LABEL, *HUB_CHOICES, OTHER_LABEL], key=_W_CHOICE, on_change=_on_choice,
                     help="The bundled model works offline. Hub models need internet the first time (or a "
                          "pre-filled Hugging Face cache); a local folder needs config.json, weights and vocab.txt.")
        if st.session_state[_W_CHOICE] == OTHER_LABEL:
            st.text_input("Hub id or folder path", key=_W_OTHER, on_change=_on_other,
                          placeholder="e.g. prajjwal1/bert-tiny or /data/my-bert",
                          help="Press Enter to load it.")
        c1, c2 = st.columns(2)
        gpu = torch.cuda.is_available()
        c1.selectbox("Device", [d for d in DEVICES if gpu or d != "cuda"], format_func=DEVICES.get, key=_W_DEVICE,
                     on_change=_on_device_or_dtype,
                     help="Auto uses a GPU when there is one." + ("" if gpu else " No GPU was found here."))
        c2.selectbox("Precision", list(DTYPES), format_func=DTYPES.get, key=_W_DTYPE, on_change=_on_device_or_dtype,
                     help="bf16/fp16 halve memory; numbers on the pages then differ slightly from fp32.")
        if ERROR_KEY in st.session_state:
            st.error(st.session_state[ERROR_KEY] + "\n\nShowing the bundled offline model instead.",
                     icon=":material/warning:")
        f = lm.facts()
        shown = "bundled all-MiniLM-L6-v2" if lm.name == BUNDLED else lm.name
        st.caption(f"**{md_escape(shown)}**  \n{f['layers']} layers × {f['heads']} heads · hidden {f['hidden']} · "
                   f"{f['parameters'] / 1e6:.1f}M parameters  \n{f['device']} · {f['dtype']} · "
                   f"MLM head: {'yes' if f['MLM head'] else 'no'} · NSP head: {'yes' if f['NSP head'] else 'no'}")
        if lm.model_card:
            with st.expander("Model card: the bundled MLM head"):
                st.markdown(model_card_markdown(lm.model_card))
    if ERROR_KEY in st.session_state:  # also in the page: a phone hides the sidebar
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        c1.error(st.session_state[ERROR_KEY] + " Showing the bundled offline model instead.",
                 icon=":material/warning:")
        c2.button("Dismiss", key="sb_error_dismiss", on_click=lambda: st.session_state.pop(ERROR_KEY, None))
    return lm


def model_card_markdown(card: dict) -> str:
    """What the bundled MLM adaptation was trained on and how well it does, for a student."""
    held = card.get("held_out", {})
    lines = [
        f"**{card.get('name', 'MLM adaptation')}**",
        f"- Base: {card.get('base', '?')}",
        f"- Trained: {card.get('trained', '?')}",
        f"- Text: {card.get('corpus', '?')}",
        f"- Objective: {card.get('objective', '?')}; {_training_time(card)} on a 2-core CPU",
    ]
    if held:
        lines.append(f"- Held-out masked tokens: top-1 **{held.get('top1', 0):.0%}**, "
                     f"top-5 **{held.get('top5', 0):.0%}**")
    if everyday := card.get("everyday"):
        lines.append(f"- {everyday['sentences']} everyday sentences: top guess right **{everyday['hit1']:.0%}**, "
                     f"a right word in the top 5 **{everyday['hit5']:.0%}**; the top guess repeats a word of the "
                     f"sentence **{everyday['copy_rate']:.0%}** of the time")
    lines.append("\nIt is small and was trained briefly, so its guesses are rough. When you are online, pick "
                 "**bert-base-uncased** above: the original BERT with its own pretrained MLM head.")
    return "\n".join(lines)


def _training_time(card: dict) -> str:
    """'N steps, M min', or the sum over the phases with the parts in brackets."""
    prev = card.get("previous_phase") or {}
    steps, minutes = card.get("steps"), card.get("train_minutes")
    if not prev or not isinstance(steps, int) or not isinstance(prev.get("steps"), int):
        return f"{steps if steps is not None else '?'} steps, {minutes if minutes is not None else '?'} min"
    phases = {2: "two", 3: "three", 4: "four"}.get(prev.get("phases", 1) + 1, str(prev.get("phases", 1) + 1))
    return (f"{prev['steps'] + steps:,} steps in {phases} phases ({prev['steps']:,} + {steps:,}), "
            f"{(prev.get('train_minutes') or 0) + (minutes or 0):.0f} min")


def model_key(lm: LoadedModel) -> str:
    """A string that names a loaded model (for caches keyed on the model)."""
    return f"{lm.name}|{lm.device}|{lm.dtype}"


@st.cache_resource(show_spinner=False, max_entries=16, ttl=1800)
def _inspect(_lm: LoadedModel, key: str, text: str, text_pair: str | None):
    return _lm.inspect(text, text_pair, with_mlm=False)  # vocabulary logits (T × 30k) are not drawn here


def inspect_text(lm: LoadedModel, text: str, text_pair: str | None = None):
    """``lm.inspect`` cached per (model, text, pair), shared read-only between sessions. Raises InputError."""
    return _inspect(lm, model_key(lm), text, text_pair)
