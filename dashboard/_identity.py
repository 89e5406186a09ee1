"""Who is acting on the dashboard: signed in through OpenID Connect, local mode, or
(tests, ``streamlit run`` by hand) picked from the list of people."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl
import streamlit as st

from revstack.agents.engine import people
from revstack.dashboard._state import _keep, _kept, load, plain

__all__ = ["Who", "identify", "sidebar_identity", "sign_in_configured"]


@dataclass(frozen=True)
class Who:
    """The person at the dashboard. ``refused`` is None when they may see the pages; else
    why not: ``signed-out``, ``unverified`` (the provider did not vouch for the email),
    ``stranger`` (not in ops.people), ``no-people`` (nobody configured yet)."""

    mode: str  # sign-in | local | pick
    name: str | None = None
    role: str | None = None
    refused: str | None = None


def sign_in_configured() -> bool:
    """Streamlit's OpenID Connect login is set up: an ``[auth]`` table in its secrets."""
    return bool(st.secrets.load_if_toml_exists() and "auth" in st.secrets)


def _match(team: pl.DataFrame, email: str) -> tuple[str, str] | None:
    """The one person whose name is this email, compared without regard to case (providers
    differ in how they case an address; a name differing only in case would be ambiguous,
    and then nobody matches)."""
    rows = team.filter(pl.col("name").str.to_lowercase() == email.lower())
    return (str(rows["name"][0]), str(rows["role"][0])) if rows.height == 1 else None


def identify() -> Who:
    """Who is acting, from the configured people (ops.people). Draws nothing, so the entry
    point can hide the navigation from anyone who may not see the pages.

    With sign-in configured, only the provider's email, and only when the ID token says
    ``email_verified: true``, names the person; ``REVSTACK_AS`` and the list are ignored.
    """
    team = load(people)
    if sign_in_configured():
        if not st.user.is_logged_in:
            return Who("sign-in", refused="signed-out")
        email = str(st.user.get("email") or "")
        if not email or st.user.get("email_verified") is not True:
            return Who("sign-in", name=email or None, refused="unverified")
        found = _match(team, email)
        if found is None:
            return Who("sign-in", name=email, refused="stranger")
        return Who("sign-in", *found)
    if team.is_empty():
        return Who("pick", refused="no-people")
    local = os.environ.get("REVSTACK_AS")
    if local:
        rows = team.filter(pl.col("name") == local)
        if rows.is_empty():
            return Who("local", name=local, refused="stranger")
        return Who("local", local, str(rows["role"][0]))
    return Who("pick")


def _providers() -> list[str | None]:
    """The providers a person may sign in with: the ``[auth]`` table's own (None) and its
    named sub-tables (``[auth.google]`` ...), as ``st.login`` takes them."""
    auth = st.secrets["auth"]
    named = [str(k) for k, v in auth.items() if isinstance(v, Mapping)]
    return ([None] if "client_id" in auth else []) + named


def _sign_out_button(where: Any = st) -> None:
    if where.button("Sign out", key="sign_out"):
        st.logout()


def sidebar_identity(who: Who) -> tuple[str | None, str | None]:
    """Draw who is acting and return (name, role); stop the run, showing only why, for
    anyone who may not see the pages. The engine still checks the role on every write."""
    if who.refused == "no-people":
        st.sidebar.info(
            "No people configured yet: `revstack people add NAME --role admin --by NAME`."
        )
        return None, None
    if who.refused == "signed-out":
        st.title("revstack")
        st.info("Sign in to see this dashboard.")
        for provider in _providers():
            label = "Sign in" if provider is None else f"Sign in with {provider}"
            if st.button(label, key=f"sign_in_{provider or 'default'}"):
                st.login() if provider is None else st.login(provider)
        st.stop()
    if who.refused == "unverified":
        st.error(
            f"The sign-in provider did not confirm that {plain(who.name or 'your email')} "
            "is a verified address, so it names nobody here."
        )
        _sign_out_button()
        st.stop()
    if who.refused == "stranger":
        how = "signed in" if who.mode == "sign-in" else "revstack app --as"
        st.error(
            f"{plain(who.name)} ({how}) is not a person in this warehouse: an admin adds "
            "them with `revstack people add`, the email as the name."
        )
        if who.mode == "sign-in":
            _sign_out_button()
        st.stop()
    name, role = who.name, who.role
    if who.mode == "sign-in":
        st.sidebar.caption(f"Signed in as **{plain(name)}**")
        _sign_out_button(st.sidebar)
    elif who.mode == "local":
        st.sidebar.caption(
            f"Local mode: acting as **{plain(name)}** (`revstack app --as`), on this machine only."
        )
    else:
        names = load(people)["name"].to_list()
        _kept("identity", names, names[0])  # who signed in outlives a run without the sidebar
        name = str(
            st.sidebar.selectbox(
                "Signed in as", names, key="identity", on_change=_keep, args=("identity",)
            )
        )
        role = str(load(people).filter(pl.col("name") == name)["role"].item())
    st.sidebar.caption(f"role: {role}")
    # Widget keys are not reliably visible from pages under st.navigation, so the
    # identity is also kept under plain keys.
    st.session_state["actor"] = name
    st.session_state["role"] = role
    return name, role
