"""Placeholder until this page is built."""
import streamlit as st

st.title("inside_bert")
st.info("This page is being built.")
