"""BERT Lab's own compact BERT: load real checkpoints, expose every attention map and hidden state.

    from bert_core import load_model
    lm = load_model("bundled")            # or "bert-base-uncased", or a local HF folder
    ins = lm.inspect("The cat sat.")      # tokens, attentions [L,H,T,T], hidden_states [L+1,T,D], mlm_logits
    lm.fill_mask("Paris is the capital of [MASK].", top_k=5)

No Streamlit here: the package is used by the app, the CLI scripts and the tests alike.
"""

from .loaded import Encoded, InputError, Inspection, LoadedModel, MissingHeadError, normalize_masks
from .loading import BUNDLED, ModelLoadError, load_model
from .model import Bert, BertConfig, EncoderResult, scaled_dot_product_attention

__all__ = ["BUNDLED", "Bert", "BertConfig", "EncoderResult", "Encoded", "InputError", "Inspection", "LoadedModel",
           "MissingHeadError", "ModelLoadError", "load_model", "normalize_masks", "scaled_dot_product_attention"]
