"""BERT Lab: the frame. Page config, the shared sidebar (model picker), navigation."""

import streamlit as st

from ui.classroom import joined_student
from ui.state import sidebar_model_picker

st.set_page_config(page_title="BERT Lab", page_icon=":material/biotech:", layout="wide")

pages = {
    "Start": [st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True)],
    "Look inside": [
        st.Page("app_pages/attention.py", title="Attention explorer", icon=":material/grid_on:", url_path="attention"),
        st.Page("app_pages/inside_bert.py", title="Inside BERT: the maths", icon=":material/calculate:", url_path="inside"),
        st.Page("app_pages/family.py", title="BERT's family", icon=":material/account_tree:", url_path="family"),
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
    nav.run()
