"""The fine-tuning lab's run: live metrics and curves while it trains, then the report, downloads and try-it box.

``render_run(job, view)`` is what ``run_view.live`` redraws every poll; the page keeps the split it trained on in
``st.session_state["ft_job_split"]``.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from bert_core import InputError, jobs
from bert_core import finetune as ft
from ui import figures_finetune as ffigs, figures_training as figs, run_view as rv
from ui.state import cached_model
from ui.text import md_escape
from ui.why_panel import why_panel

CARDS = [rv.Card(name, key, "{:.1%}".format, "On the held-out examples; change since step 0.")
         for key, name in (("accuracy", "Accuracy"), ("macro_f1", "Macro F1"))]


def gpu_memory(v: jobs.JobView) -> list[tuple[str, str, str]]:
    """The 'GPU memory' card when the run's step events carry it (None off CUDA)."""
    mb = v.history[-1].gpu_memory_mb if v.history else None
    if mb is None:
        return []
    return [("GPU memory", f"{mb / 1024:.1f} GB", "Peak memory this run has allocated on the GPU.")]


def curves_view(v: jobs.JobView, ev: list, sp: ft.Split) -> None:
    c1, c2 = st.columns(2)
    c1.plotly_chart(figs.loss_curve([e.step for e in v.history], [e.loss for e in v.history], [s for s, _ in ev],
                                    [m["eval_loss"] for _, m in ev], "Loss"), key="ft_loss_chart")
    c2.plotly_chart(ffigs.metric_curves([s for s, _ in ev], [m["accuracy"] for _, m in ev],
                                        [m["macro_f1"] for _, m in ev], sp.majority_baseline, "Held-out accuracy"),
                    key="ft_metric_chart")
    st.caption(rv.lab_text("finetune_curves"))


def results_view(r: ft.FinetuneReport) -> None:
    st.subheader("What the trained model gets right and wrong")
    c1, c2 = st.columns([3, 2])
    c1.plotly_chart(ffigs.confusion_matrix(r.confusion, r.names, "Confusion matrix (held-out)"), key="ft_confusion")
    c2.markdown(rv.lab_text("finetune_report", accuracy=r.accuracy, macro_f1=r.macro_f1, n_test=r.n_test,
                            baseline=r.majority_baseline))
    c2.dataframe(r.per_class, hide_index=True, key="ft_per_class",
                 column_config={k: st.column_config.NumberColumn(format="%.2f") for k in ("precision", "recall", "F1")})
    if r.cls_before is not None and r.cls_after is not None:
        st.plotly_chart(ffigs.cls_scatter(r.cls_before, r.cls_after, [y for _, y in r.cls_points], r.names,
                                          [t for t, _ in r.cls_points],
                                          "The [CLS] vectors of held-out examples, squeezed to 2-D"),
                        key="ft_cls_scatter")
        st.caption(rv.lab_text("finetune_cls"))
    if r.mistakes:
        st.markdown(rv.lab_text("finetune_mistakes", wrong=r.n_wrong, n_test=r.n_test))
        st.dataframe(pd.DataFrame({"text": [m.text for m in r.mistakes], "true": [m.true for m in r.mistakes],
                                   "predicted": [m.predicted for m in r.mistakes],
                                   "confidence": [m.confidence for m in r.mistakes]}),
                     hide_index=True, key="ft_wrong",
                     column_config={"text": st.column_config.TextColumn(width="large"),
                                    "confidence": st.column_config.ProgressColumn(min_value=0, max_value=1,
                                                                                  format="percent")})


def try_it(v: jobs.JobView) -> None:
    st.subheader("Try it")
    text = st.text_input("Type a sentence for your classifier", "I love this, best flight ever!", key="ft_try",
                         max_chars=2000)
    lm = cached_model(str(v.checkpoint), "cpu", "fp32")
    try:
        ranked = lm.classify(text)
    except InputError as e:
        return st.info(str(e))
    st.plotly_chart(ffigs.class_probabilities([n for n, _ in ranked], [p for _, p in ranked], None), key="ft_try_chart")
    if st.toggle("Why this class? (which words pushed it)", key="ft_why"):
        why_panel(lm, text, ranked[0][0], key="ft_why_panel")


def downloads(v: jobs.JobView, r: ft.FinetuneReport | None) -> None:
    st.success(rv.lab_text("finetune_saved", step=v.step))
    metrics = {"evals": [{"step": s, **m} for s, m in v.evals], "final": r.summary() if r else None,
               "confusion": r.confusion.tolist() if r else None}
    c1, c2, c3 = st.columns(3)
    c1.download_button("Download the model (.zip)", data=lambda: jobs.zip_folder(v.checkpoint),
                       file_name=f"bert-lab-finetune{v.id}.zip", mime="application/zip", key="ft_download",
                       icon=":material/download:", on_click="ignore")
    c2.download_button("Download the metrics (.json)", data=json.dumps(metrics, indent=1),
                       file_name=f"bert-lab-finetune{v.id}-metrics.json", mime="application/json",
                       key="ft_download_metrics", icon=":material/analytics:", on_click="ignore")
    rv.use_it(v, "ft", c3, "Makes this checkpoint the sidebar model, e.g. to see what its attention looks like now.")


def render_run(job: jobs.Job, v: jobs.JobView) -> None:
    """Metrics and curves (live), then, once it has ended, the report, the downloads and the try-it box."""
    ev = [(s, m) for s, m in v.evals if "accuracy" in m]
    rv.metrics_row(v, ev, CARDS, ".3f", "Training loss, smoothed.", "Examples/s",
                   steps_capped=job.cfg.time_budget_s > 0, more=gpu_memory(v))
    note = next((e.note for e in reversed(v.history) if e.note), "")
    if note:  # e.g. the GPU ran out of memory and the batch now runs in pieces
        st.warning(md_escape(note), icon=":material/memory:")
    curves_view(v, ev, st.session_state["ft_job_split"])
    if v.active:
        return
    if v.report is not None:
        results_view(v.report)
    if v.checkpoint is not None and v.checkpoint.is_dir():
        downloads(v, v.report)
        try_it(v)
