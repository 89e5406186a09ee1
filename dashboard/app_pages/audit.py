"""Audit & rollback: search the log, check the chain, preview and run a rollback."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from revstack.agents.engine import EngineError, audit_rows, rollback, verify
from revstack.dashboard._feedback import flag_box
from revstack.dashboard._state import (
    chain_checkpoint,
    keep_chain_checkpoint,
    load,
    plain,
    signed_in,
    table,
    warehouse,
)

st.title("Audit & rollback")
wh = warehouse()
name, role = signed_in()

# The first check in this server process re-hashes every row, so its time grows with the
# log; it leaves a checkpoint (the last row's chain value and a checksum of every row up
# to it), and later checks, in any session, re-hash only the rows after it and compare
# the rest with it (docs/dashboard.md, The chain check). A check runs when the page is
# first opened in a session and on request; after the log has grown, the page shows the
# last check for what it is. "Check the whole chain" re-hashes every row again.
stamp = st.session_state.get("_stamp")
last = st.session_state.get("chain_check")  # (stamp, report, checked at)
whole = st.button("Check the whole chain", key="chain_whole")
again = st.button("Check the chain again", key="chain_again")
if whole or again or last is None:
    kept = None if whole else chain_checkpoint()
    checked_now = load(verify, since=kept, checkpoint=True)
    if checked_now.ok:
        keep_chain_checkpoint(checked_now)
    last = (stamp, checked_now, dt.datetime.now())
    st.session_state["chain_check"] = last
_, chain, checked = last
how = (
    "every row re-hashed"
    if chain.rehashed_from <= 1
    else f"rows {chain.rehashed_from:,} on re-hashed, the earlier ones compared with "
    "their checksum at this server's last check"
)
when = f"checked {checked:%H:%M:%S}, {how}" + (
    "" if last[0] == stamp else "; the log has grown since"
)
if chain.ok:
    st.success(f"Hash chain intact: {chain.rows:,} rows ({when})")
else:
    where = "" if chain.first_bad_seq is None else f" at row {chain.first_bad_seq}"
    st.error(f"Hash chain broken{where}: {plain(chain.problem)} ({when})")

c = st.columns(5)
actor = c[0].text_input("Agent or person", key="audit_actor") or None
record = c[1].text_input("Record id", key="audit_record") or None
field = c[2].text_input("Field", key="audit_field") or None
action = (
    c[3].selectbox(
        "Action",
        [
            "",
            "apply",
            "approve",
            "edit",
            "reject",
            "propose",
            "block",
            "rollback",
            "expire",
            "policy",
            "error",
        ],
        key="audit_action",
    )
    or None
)
days = c[4].number_input("Last N days", min_value=1, value=30, key="audit_days")
since = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=int(days))
since = since.replace(second=0, microsecond=0)  # one cache entry a minute, not one a render
rows = load(
    audit_rows, actor=actor, record=record, field=field, action=action, since=since, limit=1000
)
if rows.is_empty():
    st.info("No audit rows match.")
else:
    table(rows.drop("detail"), "audit_log", key="dl_audit")
    applied = rows.filter((rows["action"] == "apply") & rows["proposal_id"].is_not_null())
    if not applied.is_empty():
        pick_col, flag_col = st.columns([3, 1])
        labels = {
            r["proposal_id"]: f"{r['proposal_id']} · {r['actor']} · {r['record_id']}.{r['field']}"
            for r in applied.head(200).iter_rows(named=True)
        }
        picked = pick_col.selectbox(
            "An applied change",
            list(labels),
            format_func=lambda p: labels[p],
            key="audit_flag_pick",
        )
        with flag_col:
            who = applied.filter(applied["proposal_id"] == picked)["actor"][0]
            flag_box(who, "change", str(picked), key="flag_change")

st.subheader("Roll back an agent")
if role != "admin":
    st.caption("Only admins roll back.")
else:
    r = st.columns(3)
    agent = r[0].text_input("Agent", key="rb_agent")
    start = r[1].date_input("Since", value=dt.date.today() - dt.timedelta(days=1), key="rb_since")
    until = r[2].date_input("Until", value=dt.date.today() + dt.timedelta(days=1), key="rb_until")
    window: dict[str, Any] = {
        "agent": agent,
        "since": dt.datetime.combine(start, dt.time()),
        "until": dt.datetime.combine(until, dt.time()),
    }
    if agent and st.button("Preview rollback", key="rb_preview"):
        try:
            st.session_state["rb_report"] = rollback(wh, by=name, dry_run=True, **window)
        except EngineError as exc:
            st.error(plain(exc))
    report = st.session_state.get("rb_report")
    if report is not None:
        st.write(
            f"Would restore {len(report.restored)} field(s); {len(report.conflicts)} conflict(s) left alone."
        )
        table(report.restored, "rollback_preview", key="dl_rb_restored")
        if not report.conflicts.is_empty():
            table(report.conflicts, "rollback_conflicts", key="dl_rb_conflicts")
        if st.button("Execute rollback", key="rb_execute", type="primary"):
            done = rollback(wh, by=name, **window)
            st.session_state.pop("rb_report")
            st.success(f"{done.rollback_id}: restored {len(done.restored)} field(s)")
