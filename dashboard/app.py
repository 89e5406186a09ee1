"""revstack dashboard: the one entry point. `revstack app` runs it.

Pages live in ``app_pages/`` (a folder named ``pages/`` would switch on Streamlit's
older multipage mode). What every page shares is drawn here, before ``page.run()``:
who is signed in, and the warehouse's fingerprint that keys every cached read.
"""

from __future__ import annotations

import streamlit as st

from revstack.dashboard._identity import identify, sidebar_identity
from revstack.dashboard._state import refresh

st.set_page_config(page_title="revstack", layout="wide")

PAGES = [
    st.Page("app_pages/stack_health.py", title="Stack health", url_path="health", default=True),
    st.Page("app_pages/agents.py", title="Agents", url_path="agents"),
    st.Page("app_pages/pipeline_risk.py", title="Pipeline risk", url_path="risk"),
    st.Page("app_pages/forecast.py", title="Forecast", url_path="forecast"),
    st.Page("app_pages/approvals.py", title="Approvals", url_path="approvals"),
    st.Page("app_pages/trust_ramp.py", title="Trust ramp", url_path="trust"),
    st.Page("app_pages/threshold_lab.py", title="Threshold lab", url_path="thresholds"),
    st.Page("app_pages/audit.py", title="Audit & rollback", url_path="audit"),
    st.Page("app_pages/data_quality.py", title="Data quality", url_path="quality"),
    st.Page("app_pages/contracts.py", title="Contracts & registry", url_path="contracts"),
]

# Who it is first (drawing nothing): someone who may not see the pages does not see
# their names either. Then navigation, so a deep link (/approvals) resolves before
# anything is drawn.
refresh()
who = identify()
page = st.navigation(PAGES, position="sidebar" if who.refused is None else "hidden")
sidebar_identity(who)
page.run()
