"""The sidebar's model picker after a failed load: the status box says so, the error shows in the page too (a
phone hides the sidebar), and the device list offers a GPU only where there is one."""

from __future__ import annotations

import torch
from apptest_support import errors, new_app


def nodes(block):
    """Every element under an AppTest block, depth first."""
    for child in getattr(block, "children", {}).values():
        yield child
        yield from nodes(child)


def test_failed_load_is_reported_in_the_page_and_the_status_box():
    at = new_app("/no/such/folder")
    at.run()
    assert not errors(at)
    main_errors = [e.value for e in at.main.error]
    assert any("Could not load" in m and "Folder not found" in m for m in main_errors)  # not only in the sidebar
    labels = [n.proto.label for n in nodes(at.sidebar) if type(n).__name__ == "Status"]
    assert not any(lbl.startswith("Loading") for lbl in labels), labels
    assert any(lbl.startswith("Could not load") for lbl in labels), labels
    at.button(key="sb_error_dismiss").click().run()
    assert not at.main.error and not at.sidebar.error and "model_load_error" not in at.session_state


def test_gpu_offered_only_when_there_is_one():
    at = new_app("bundled")
    at.run()
    options = at.selectbox(key="sb_device").options
    assert ("GPU (CUDA)" in options) == torch.cuda.is_available()
    assert options[:2] == ["Auto", "CPU"]
