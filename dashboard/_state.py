"""What every page shares: the warehouse, who is signed in, and the filters."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import streamlit as st

from agents.engine._people import people
from data.warehouse import Warehouse, default_db_path

__all__ = ["warehouse", "signed_in", "download", "sidebar_identity"]


@st.cache_resource
def _warehouse(path: str) -> Warehouse:
    # A Warehouse holds no connection, so one object can serve every session;
    # each page render opens and closes the file per unit of work.
    return Warehouse(path)


def warehouse() -> Warehouse:
    return _warehouse(str(Path(os.environ.get("REVSTACK_DB") or default_db_path()).resolve()))


def sidebar_identity() -> tuple[str | None, str | None]:
    """Pick who is acting from the configured people (ops.people); returns (name, role).

    Streamlit's own login, when configured, fixes the name; otherwise a person picks
    theirs from the local list. Either way the engine checks the role on every write.
    """
    team = people(warehouse())
    if team.is_empty():
        st.sidebar.info(
            "No people configured yet: `revstack people add NAME --role admin --by NAME`."
        )
        return None, None
    names = team["name"].to_list()
    logged_in = getattr(st.user, "is_logged_in", False)
    if logged_in and st.user.get("name") in names:
        name = st.user.get("name")
    else:
        name = st.sidebar.selectbox("Signed in as", names, key="identity")
    role = team.filter(pl.col("name") == name)["role"].item()
    st.sidebar.caption(f"role: {role}")
    # Widget keys are not reliably visible from pages under st.navigation, so the
    # identity is also kept under plain keys.
    st.session_state["actor"] = name
    st.session_state["role"] = role
    return name, role


def signed_in() -> tuple[str | None, str | None]:
    return st.session_state.get("actor"), st.session_state.get("role")


def download(df: pl.DataFrame, name: str, *, key: str) -> None:
    """Every table can be taken away as CSV."""
    st.download_button(
        f"Download {name} (CSV)", df.write_csv(), file_name=f"{name}.csv", mime="text/csv", key=key
    )
