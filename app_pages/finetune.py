"""Fine-tuning lab: put a classifier on BERT's sentence vector and train it on labelled text, live.

The lab opens on the quick demo (``finetune.QUICK_DEMO``: negative vs positive tweets, about two minutes). The task,
the measured time estimate and Start sit at the top, and the live run right under them, so it is in sight as soon as
it starts; the data and every knob follow (folded away once there is a run), then the kept runs compared and the
attention before and after. Set-up, run, kept runs and attention change live in ``ui/finetune_*.py``.
"""

from __future__ import annotations

import uuid

import streamlit as st

from bert_core import finetune as ft
from bert_core import jobs
from ui import finetune_change, finetune_report, finetune_runs, finetune_setup as setup, run_view as rv
from ui.state import current_model

st.title("Fine-tuning lab")
st.markdown(rv.lab_text("finetune_intro"))



def new_job(split: ft.Split) -> jobs.Job:
    """At the click: the settings on the widgets now, remembered with the job for its kept record."""
    s = setup.settings_from_state()
    st.session_state.update(ft_job_settings=s, ft_job_base=lm.name)
    return ft.finetune_job(lm, s, split, owner=owner)


setup.init_state()
lm = current_model()
owner = st.session_state.setdefault("ft_owner", uuid.uuid4().hex)
job: jobs.Job | None = st.session_state.get("ft_job")
view = job.view() if job else None
locked = view is not None and view.active
if job is not None and not locked:
    finetune_runs.keep(job)  # a run that has just ended joins the kept runs

setup.task_picker(locked)
start_bar = st.container()  # filled once the data and settings below are read
run_area = st.container()

with st.expander("Data and settings for the next run", expanded=False) if job is not None else st.container():
    st.subheader("1 · Data")
    split = setup.data_section(locked)
    if split is not None:
        setup.data_view(split)
        st.subheader("2 · Model and training")
        setup.settings_section(lm, split, locked)

with start_bar:
    if split is not None:
        if split.dropped:
            st.caption(setup.left_out(split))
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        setup.estimate_view(lm, split, c1)
        with c2:
            rv.start_button("ft", view, "Start", "", lambda: new_job(split), remember={"ft_job_split": split},
                            keep=finetune_runs.keep, help="One training runs on this server at a time; it stops by "
                                                          "itself if you leave the page.")

with run_area:
    if job is not None:  # the session's run, right under Start
        rv.live("ft", view, finetune_report.render_run)

st.divider()
kept = finetune_runs.kept_runs()
finetune_change.change_view(kept)
