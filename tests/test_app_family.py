"""AppTest for the BERT's-family page: the bars are the formula's numbers, the soft targets the model's."""

from __future__ import annotations

import numpy as np

from apptest_support import charts, errors, open_page
from apptest_support import plotly_array as arr
from bert_core import family as fam
from bert_core import load_model


def test_parameter_bars_and_build_your_own(tiny_dir):
    at = open_page("app_pages/family.py", tiny_dir)
    assert not at.exception, errors(at)
    bars = charts(at)[0]["data"]
    names = [*fam.FAMILY, f"sidebar: {tiny_dir}"]
    assert list(bars[0]["y"]) == names
    emb = arr(bars[0]["x"])
    assert emb[0] * 1e6 == fam.parameters(fam.FAMILY["bert-base-uncased"])["embeddings"]
    tiny = load_model(str(tiny_dir))
    own = sum(p.numel() for n, p in tiny.model.named_parameters() if n.startswith("bert."))
    assert sum(arr(b["x"])[-1] for b in bars[:5]) * 1e6 == own  # the sidebar model's bar is its real count
    assert any(f"= {tiny.facts()['parameters']:,} parameters" in c.value for c in at.caption)  # why Home differs
    at.slider(key="fam_layers").set_value(12).run()
    at.select_slider(key="fam_hidden").set_value(768).run()
    assert {m.label: m.value for m in at.metric}["Parameters"] == "109.5 M"
    at.toggle(key="fam_fact").set_value(True).run()
    at.toggle(key="fam_shared").set_value(True).run()
    assert {m.label: m.value for m in at.metric}["Parameters"] == "11.8 M"  # ALBERT-base with vocab 30,522, not 30,000


def test_the_bundled_model_s_two_sizes_are_explained_beside_the_table():
    at = open_page("app_pages/family.py")
    assert not at.exception, errors(at)
    table = at.dataframe[0].value.set_index("model")
    assert table.loc["all-MiniLM-L6-v2 (bundled)", "parameters (M)"] == 22.7
    note = next(c.value for c in at.caption if "Home and the sidebar" in c.value)
    assert "22,713,216 + MLM head 179,130" in note and "(22.7M → 22.9M)" in note


def test_soft_targets_follow_the_temperature(tiny_dir):
    at = open_page("app_pages/family.py", tiny_dir)
    at.text_input(key="fam_text").input("the cat sat on the [MASK] .").run()
    at.slider(key="fam_T").set_value(5.0).run()
    assert not at.exception, errors(at)
    soft = charts(at)[1]["data"]
    tiny = load_model(str(tiny_dir))
    _, probs = tiny.mask_probs("the cat sat on the [MASK] .")
    p = probs[0].double().numpy()
    top = np.argsort(-p)[:12]
    np.testing.assert_allclose(arr(soft[0]["x"]), p[top], rtol=1e-5)
    np.testing.assert_allclose(arr(soft[1]["x"]), fam.soften(np.log(p), 5.0)[top], rtol=1e-6)
    assert list(soft[0]["y"]) == tiny.tokenizer.convert_ids_to_tokens([int(i) for i in top])


def test_no_mask_and_no_head_are_explained(tiny_dir, tmp_path):
    from conftest import make_checkpoint

    at = open_page("app_pages/family.py", tiny_dir)
    at.text_input(key="fam_text").input("no mask here <b>bold</b>").run()
    assert not at.exception and any("There is no \\[MASK\\]" in i.value for i in at.info)
    make_checkpoint(tmp_path, "BertModel")
    at = open_page("app_pages/family.py", tmp_path)
    assert not at.exception and any("masked" in i.value for i in at.info)
