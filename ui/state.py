"""Shared app state: the cached model and the sidebar model picker.

The model returned by ``current_model()`` is shared by every session through ``st.cache_resource``:
read it, never train or mutate it (use ``LoadedModel.copy_for_training()``).
"""

from __future__ import annotations

import streamlit as st

from bert_core import BUNDLED, LoadedModel, ModelLoadError, load_model

HUB_CHOICES = ["bert-base-uncased", "bert-base-cased", "bert-large-uncased", "google/bert_uncased_L-2_H-128_A-2"]
BUNDLED_LABEL = "Bundled offline model (all-MiniLM-L6-v2 + our MLM head)"
OTHER_LABEL = "Other hub id or local folder…"
MODEL_KEY = "model_name"  # session key: the name the user picked
DEVICE_KEY = "model_device"
DTYPE_KEY = "model_dtype"


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_model(name: str, device: str, dtype: str) -> LoadedModel:
    """One loaded model per (name, device, dtype) per process, shared by all sessions."""
    return load_model(name, device=device, dtype=dtype)


def current_model() -> LoadedModel:
    """The model the user picked in the sidebar; falls back to the bundled one if that fails to load."""
    name = st.session_state.get(MODEL_KEY, BUNDLED)
    device = st.session_state.get(DEVICE_KEY, "auto")
    dtype = st.session_state.get(DTYPE_KEY, "fp32")
    try:
        with st.spinner(f"Loading {name}…"):
            return cached_model(name, device, dtype)
    except ModelLoadError as e:
        st.error(f"Could not load **{name}**. {e}\n\nFalling back to the bundled offline model.", icon="⚠️")
        st.session_state[MODEL_KEY] = BUNDLED
        return cached_model(BUNDLED, "auto", "fp32")


def sidebar_model_picker() -> None:
    """Model, device and dtype pickers plus the loaded model's facts, in the sidebar."""
    st.session_state.setdefault(MODEL_KEY, BUNDLED)
    with st.sidebar:
        st.subheader("Model")
        options = [BUNDLED_LABEL, *HUB_CHOICES, OTHER_LABEL]
        current = st.session_state[MODEL_KEY]
        index = 0 if current == BUNDLED else options.index(current) if current in HUB_CHOICES else len(options) - 1
        choice = st.selectbox("Checkpoint", options, index=index, key="sb_model_choice",
                              help="Hub models need internet the first time (or a pre-download).")
        if choice == OTHER_LABEL:
            typed = st.text_input("Hub id or folder path", value="" if current in (BUNDLED, *HUB_CHOICES) else current,
                                  key="sb_model_other", placeholder="e.g. prajjwal1/bert-tiny or /data/my-bert")
            name = typed.strip() or BUNDLED
        else:
            name = BUNDLED if choice == BUNDLED_LABEL else choice
        c1, c2 = st.columns(2)
        st.session_state[DEVICE_KEY] = c1.selectbox("Device", ["auto", "cpu", "cuda"], key="sb_device")
        st.session_state[DTYPE_KEY] = c2.selectbox("Precision", ["fp32", "bf16", "fp16"], key="sb_dtype")
        st.session_state[MODEL_KEY] = name
        lm = current_model()
        f = lm.facts()
        st.caption(f"**{lm.name}** · {f['layers']} layers × {f['heads']} heads · hidden {f['hidden']} · "
                   f"{f['parameters'] / 1e6:.1f}M params · {f['device']} · {f['dtype']}  \n"
                   f"MLM head: {'yes' if f['MLM head'] else 'no'} · NSP head: {'yes' if f['NSP head'] else 'no'}")
