"""Flag an agent's output where a person sees it, and answer flags: the feedback channel."""

from __future__ import annotations

import streamlit as st

from revstack.agents.engine import EngineError, acknowledge, address, feedback, flag_output
from revstack.dashboard._state import load, plain, refresh, signed_in, table, warehouse

__all__ = ["flag_box", "feedback_panel"]


def flag_box(agent: str, kind: str, ref: str, *, key: str, label: str = "Flag this") -> None:
    """A popover with a note: anyone signed in, viewers too, can flag this output."""
    name, _ = signed_in()
    with st.popover(label, disabled=name is None):
        note = st.text_area("What is wrong?", key=f"{key}_note")
        if st.button("Send the flag", key=f"{key}_send", disabled=not note.strip()):
            try:
                fid = flag_output(
                    warehouse(), by=str(name), agent=agent, kind=kind, ref=ref, note=note
                )
            except EngineError as exc:
                st.error(plain(exc))
            else:
                refresh()
                st.success(f"{fid}: {plain(agent)}'s people will see it on Stack health.")


def feedback_panel(agent: str | None = None, *, key: str) -> None:
    """The flags (one agent's, or all), and for reviewers: acknowledge or address one."""
    flags = load(feedback, agent=agent)
    if flags.is_empty():
        st.caption(
            "No flags yet. Anyone can flag a risk flag, a forecast or a change where they see it."
        )
        return
    table(flags, "feedback", key=f"{key}_table", rows=50)
    name, role = signed_in()
    waiting = flags.filter(flags["status"] != "addressed")["feedback_id"].to_list()
    if role not in ("reviewer", "admin") or not waiting:
        return
    c = st.columns([2, 4, 1, 1])
    chosen = c[0].selectbox("Flag", waiting, key=f"{key}_pick", label_visibility="collapsed")
    said = c[1].text_input(
        "What changed",
        key=f"{key}_resolution",
        label_visibility="collapsed",
        placeholder="What changed (to address it)",
    )
    try:
        if c[2].button("Acknowledge", key=f"{key}_ack"):
            acknowledge(warehouse(), chosen, by=str(name))
            refresh()
            st.rerun()
        if c[3].button("Address", key=f"{key}_address", disabled=not said.strip()):
            address(warehouse(), chosen, by=str(name), resolution=said)
            refresh()
            st.rerun()
    except EngineError as exc:
        st.error(plain(exc))
