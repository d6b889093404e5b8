"""The top of a training lab's live view, shared by the pretraining and fine-tuning labs."""

from __future__ import annotations

import streamlit as st

from bert_core import jobs
from ui.text import md_escape


def run_header(prefix: str) -> tuple[jobs.Job, jobs.JobView] | None:
    """The session's job (``st.session_state[prefix + '_job']``): keep it alive while it runs, redraw the whole page
    once when it ends, and show its title, status, progress bar and Cancel button."""
    job: jobs.Job | None = st.session_state.get(f"{prefix}_job")
    if job is None:
        return None
    v = job.view()
    if v.active:
        job.heartbeat()
    elif st.session_state.get(f"{prefix}_polling") == v.id:  # it ended while we polled: redraw the page once
        st.session_state[f"{prefix}_polling"] = None
        st.rerun()
    st.subheader(f"Run {v.id}: {md_escape(v.title)}")
    message = md_escape(v.message)  # holds the model's name, which may be a path
    if v.status == jobs.WAITING:
        st.info(message, icon=":material/hourglass_top:")
    elif v.status == jobs.FAILED:
        st.error(message)
    elif v.status in (jobs.CANCELLED, jobs.STOPPED):
        st.warning(message)
    c1, c2 = st.columns([5, 1])
    if v.status != jobs.FAILED:
        c1.progress(v.fraction, text=message if v.active or v.status == jobs.DONE
                    else f"{v.step} of {v.max_steps} steps")
    if v.active:
        c2.button("Cancel", key=f"{prefix}_cancel", on_click=job.cancel, icon=":material/stop_circle:",
                  width="stretch")
    return job, v


def confirm_replace(view: jobs.JobView | None, prefix: str, what: str) -> bool:
    """True when a new run may start; after a finished run with a saved model, only once the user ticks the box."""
    if view is None or view.active or view.checkpoint is None:
        return True
    st.warning(f"Starting a new run deletes run {view.id} ({md_escape(view.title)}, {view.step} steps) {what}. "
               "Download what you want to keep first.", icon=":material/warning:")
    return st.checkbox("Yes, replace my last run", key=f"{prefix}_confirm_{view.id}")
