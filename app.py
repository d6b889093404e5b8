"""BERT Lab: the frame. Page config, the shared sidebar (model picker), navigation."""

import streamlit as st

from ui.classroom import joined_student
from ui.presenter import setup as presenter_setup
from ui.state import sidebar_model_picker

st.set_page_config(page_title="BERT Lab", page_icon=":material/biotech:", layout="wide")

pages = {
    "Start": [st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
              st.Page("app_pages/lesson.py", title="Guided lesson", icon=":material/school:", url_path="lesson")],
    "Look inside": [
        st.Page("app_pages/attention.py", title="Attention explorer", icon=":material/grid_on:", url_path="attention"),
        st.Page("app_pages/inside_bert.py", title="Inside BERT: the maths", icon=":material/calculate:", url_path="inside"),
        st.Page("app_pages/family.py", title="BERT's family", icon=":material/account_tree:", url_path="family"),
        st.Page("app_pages/embeddings.py", title="Contextual embeddings", icon=":material/scatter_plot:", url_path="embeddings"),
        st.Page("app_pages/why.py", title="Why did BERT say that?", icon=":material/help:", url_path="why"),
    ],
    "Play": [st.Page("app_pages/playground.py", title="Masked-word playground", icon=":material/target:",
                     url_path="playground"),
             st.Page("app_pages/classroom.py", title="Class game (teacher)", icon=":material/groups:",
                     url_path="classroom"),
             st.Page("app_pages/join.py", title="Join a class game", icon=":material/login:", url_path="join")],
    "Train": [st.Page("app_pages/pretraining.py", title="Pretraining lab", icon=":material/fitness_center:",
                      url_path="pretraining"),
              st.Page("app_pages/finetune.py", title="Fine-tuning lab", icon=":material/tune:", url_path="finetune")],
}
if joined_student():  # while their class runs, a student sees only the class game (BERT's answer is not a click away)
    st.navigation([st.Page("app_pages/join.py", title="Class game", icon=":material/groups:", url_path="join",
                           default=True)], position="hidden").run()
else:
    nav = st.navigation(pages)
    sidebar_model_picker()
    presenter_setup()
    nav.run()
