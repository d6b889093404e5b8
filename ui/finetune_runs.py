"""The fine-tuning lab's kept runs: each finished run goes to a ``runs.RunStore`` on disk (it survives reloads and
server restarts), listed with a delete button, and any two compared side by side: curves overlaid, a table of
results and settings, both confusion matrices.

The store lives in ``$BERT_LAB_FINETUNE_RUNS``, else ``finetune-runs`` under the app's data directory (the class
game's ``$XDG_DATA_HOME/bert-lab``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from bert_core import jobs, runs
from classroom.settings import data_dir
from ui import figures_finetune as ffigs, figures_training as figs
from ui.text import md_escape

RUNS_ENV = "BERT_LAB_FINETUNE_RUNS"


def store() -> runs.RunStore:
    return runs.RunStore(Path(os.environ.get(RUNS_ENV) or data_dir() / "finetune-runs"))


def keep(job: jobs.Job) -> runs.RunRecord | None:
    """Keep the session's finished run, once: its model and record go to the store; runs evicted to make room are
    remembered for ``kept_runs`` to say so. Nothing for a run without a saved model."""
    v = job.view()
    kept = st.session_state.setdefault("ft_kept", {})
    if v.active or not v.step or v.checkpoint is None or not v.checkpoint.is_dir() or v.id in kept:
        return None
    sp = st.session_state["ft_job_split"]
    run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(v.created))}-run{v.id}"
    record = runs.record_of(run_id, v, st.session_state["ft_job_settings"], sp, st.session_state["ft_job_base"],
                            sp.dropped)
    s = store()
    rec, evicted = s.keep(record, v.checkpoint)
    kept[v.id] = rec.id
    if evicted:
        st.session_state["ft_evicted"] = (
            f"At most {s.max_runs} runs ({s.max_bytes / 1e6:,.0f} MB) are kept: deleted the oldest, "
            + "; ".join(md_escape(r.label()) for r in evicted) + ".")
    return rec


def _when(t: float) -> str:
    return time.strftime("%d %b %H:%M", time.localtime(t))


def kept_runs() -> list[runs.RunRecord]:
    """The list of kept runs with a delete button, and the comparison of two; returns the runs."""
    s = store()
    st.subheader("3 · Kept runs, compared")
    evicted = st.session_state.pop("ft_evicted", None)
    if evicted:
        st.info(evicted, icon=":material/auto_delete:")
    rs = s.runs()
    st.caption(f"The last {s.max_runs} runs stay on this server, with their models, after a reload or a restart "
               f"({s.total_mb():,.1f} of {s.max_bytes / 1e6:,.0f} MB used); a new run past that deletes the "
               "oldest, and says so.")
    if not rs:
        st.info("No kept runs yet: every run you start is kept here.", icon=":material/inventory_2:")
        return rs
    st.dataframe(pd.DataFrame({
        "run": [r.title for r in rs], "when": [_when(r.created) for r in rs],
        "classes": [", ".join(r.names) for r in rs],
        "what learns": [runs.SETTING_ROWS[0][2](r.settings.get("mode")) for r in rs],
        "LR": [runs.lr_text(r.settings.get('lr', 0)) for r in rs], "accuracy": [100 * r.accuracy for r in rs],
        "macro F1": [100 * r.macro_f1 for r in rs], "steps": [r.steps for r in rs], "status": [r.status for r in rs]}),
        hide_index=True, key="ft_runs_table",
        column_config={k: st.column_config.NumberColumn(format="%.1f%%") for k in ("accuracy", "macro F1")})
    ids = [r.id for r in rs]
    label = {r.id: r.label() for r in rs}.get
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    gone = c1.selectbox("Delete a kept run", ids, key="ft_delete_pick", format_func=label)
    if c2.button("Delete", key="ft_delete", icon=":material/delete:", width="stretch"):
        s.delete(gone)
        st.toast(f"Deleted {md_escape(label(gone))}.")
        st.rerun()
    if len(rs) < 2:
        st.caption("Start a second run (say, without warm-up, or training only the head) to compare two.")
        return rs
    compare(rs)
    return rs


def compare(rs: list[runs.RunRecord]) -> None:
    ids = [r.id for r in rs]
    by_id = {r.id: r for r in rs}
    for key, default in (("ft_cmp_a", ids[1]), ("ft_cmp_b", ids[0])):
        if st.session_state.get(key) not in by_id:
            st.session_state[key] = default
    c1, c2 = st.columns(2)
    a = by_id[c1.selectbox("Run A", ids, key="ft_cmp_a", format_func=lambda i: by_id[i].label())]
    b = by_id[c2.selectbox("Run B", ids, key="ft_cmp_b", format_func=lambda i: by_id[i].label())]
    names = (f"A: {a.title}", f"B: {b.title}")
    rows = runs.compare_rows(a, b)
    st.table(pd.DataFrame(rows, columns=["", *names]).set_index(""))
    c1, c2 = st.columns(2)
    c1.plotly_chart(ffigs.compare_curves([(n, r.curves.eval_steps, r.curves.accuracy) for n, r in zip(names, (a, b))],
                                         "Held-out accuracy of both runs"), key="ft_cmp_acc")
    c2.plotly_chart(ffigs.compare_curves([(n, r.curves.steps, figs.ema(r.curves.loss)) for n, r in
                                          zip(names, (a, b))], "Training loss of both runs (smoothed)", "loss",
                                         percent=False), key="ft_cmp_loss")
    c1, c2 = st.columns(2)
    for col, n, r in ((c1, names[0], a), (c2, names[1], b)):
        if r.confusion:
            col.plotly_chart(ffigs.confusion_matrix(r.confusion, r.names, f"{n}: confusion matrix"),
                             key=f"ft_cmp_cm_{n[0]}")
    if a.n_test != b.n_test or a.names != b.names:
        st.caption("The two runs were measured on different held-out sets: compare them with care.")
