"""revstack dashboard: the one entry point. `revstack app` runs it."""

from __future__ import annotations

import streamlit as st

from dashboard._state import sidebar_identity

st.set_page_config(page_title="revstack", layout="wide")

PAGES = [
    st.Page("pages/stack_health.py", title="Stack health", url_path="health", default=True),
    st.Page("pages/agents.py", title="Agents", url_path="agents"),
    st.Page("pages/pipeline_risk.py", title="Pipeline risk", url_path="risk"),
    st.Page("pages/forecast.py", title="Forecast", url_path="forecast"),
    st.Page("pages/approvals.py", title="Approvals", url_path="approvals"),
    st.Page("pages/trust_ramp.py", title="Trust ramp", url_path="trust"),
    st.Page("pages/threshold_lab.py", title="Threshold lab", url_path="thresholds"),
    st.Page("pages/audit.py", title="Audit & rollback", url_path="audit"),
    st.Page("pages/data_quality.py", title="Data quality", url_path="quality"),
    st.Page("pages/contracts.py", title="Contracts & registry", url_path="contracts"),
]

# Navigation first, so a deep link (/approvals) resolves before anything is drawn.
page = st.navigation(PAGES)
st.session_state["_entry_ran"] = True  # see dashboard._state._through_navigation
sidebar_identity()
page.run()
