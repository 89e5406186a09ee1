"""Approvals: the tier-2 queue and tier-3 tasks; approve, edit or reject in one click.

Review at scale: the queue in batches of one kind, a random sample of each decided card
by card, and the rest of a batch approved (or rejected) by an admin in one act once its
sample rules out the batch's error bar (docs/engine.md, Batches)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import polars as pl
import streamlit as st

from revstack.agents.engine import (
    REASON_CODES,
    EngineError,
    batch_status,
    count_proposals,
    decide,
    decide_batch,
    extend_sample,
    list_proposals,
    open_batches,
    parse_value,
    sample_cards,
)
from revstack.dashboard._state import (
    download,
    filters,
    load,
    plain,
    refresh,
    signed_in,
    table,
    value_text,
    warehouse,
)
from revstack.metrics.engine import action_outcomes
from revstack.metrics.review import clearing_cost

st.title("Approvals")
wh = warehouse()  # decisions go through the engine; reads through load()
name, role = signed_in()
f = filters(window=False)  # a proposal waits for a decision however old it is
# One agent chosen: ask the engine for its queue; several: fetch and narrow.
only = f.agents[0] if len(f.agents) == 1 else None
queue = f.by_agent(
    pl.concat(
        [
            load(list_proposals, status="pending", agent=only, limit=500),
            load(list_proposals, status="task", agent=only, limit=500),
        ]
    )
)
shadow = f.by_agent(load(list_proposals, status="shadow", agent=only, limit=200))
totals = f.by_agent(load(action_outcomes))  # totals, not just the rows fetched for the cards
if f.agents:
    st.caption(f"Showing {plain(f.describe())} (sidebar filter).")
cols = st.columns(3)
cols[0].metric(
    "Waiting for a reviewer (tier 2)", f"{int(totals['pending'].sum()) if len(totals) else 0:,}"
)
open_tasks = f.by_agent(load(count_proposals, status="task"))  # all of them, not the cards fetched
cols[1].metric("Human tasks (tier 3)", f"{int(open_tasks['proposals'].sum()):,}")
cols[2].metric("Shadow proposals", f"{int(totals['shadow'].sum()) if len(totals) else 0:,}")
if len(queue) >= 500:
    st.caption(
        "Showing the newest 500 pending proposals and tasks; filter by agent in the sidebar to narrow the queue."
    )


def _act(action: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """A write from this page: its message as a toast, or its refusal in red."""
    try:
        done = action(*args, **kwargs)
    except EngineError as exc:
        st.error(plain(exc))
        return
    message = getattr(done, "message", None)
    if message:
        st.toast(plain(message))
    refresh()
    st.rerun()


st.subheader("Review at scale")
cost = load(clearing_cost)
batches = load(batch_status)
batches = f.by_agent(batches) if not batches.is_empty() else batches
st.caption(
    f"Clearing the {cost['waiting']:,} waiting proposals takes {cost['card_by_card']:,} "
    f"decisions card by card and {cost['by_batches']:,} by batches"
    + (f" ({cost['fewer']}× fewer)." if cost["fewer"] else ".")
    + " A batch's sample is a random one: decide it whole, and an admin can decide the rest."
)
if (
    cost["unbatched"]
    and role in ("reviewer", "admin")
    and st.button(
        f"Batch the {cost['unbatched']:,} waiting proposals no batch holds", key="open_batches"
    )
):
    _act(open_batches, wh, by=name)
chosen = None
if not batches.is_empty():
    shown = batches.select(
        "batch_id",
        "agent",
        "action_type",
        "field",
        "band",
        "size",
        "sample_size",
        "looks",
        "sample_decided",
        "wrong",
        "error_upper_bound",
        "still_needed",
        "waiting",
        "meets_bar",
        "fails_bar",
    )
    st.dataframe(
        shown,
        hide_index=True,
        column_config={
            "error_upper_bound": st.column_config.NumberColumn("error ≤", format="percent"),
            "meets_bar": st.column_config.CheckboxColumn("meets bar"),
            "fails_bar": st.column_config.CheckboxColumn("fails bar"),
        },
    )
    download(batches, "review_batches", key="dl_batches")
    ids = ["(every waiting card)", *batches["batch_id"].to_list()]
    chosen = st.selectbox("Review", ids, key="review_batch")
    chosen = None if chosen == ids[0] else chosen
if chosen is not None:
    b = batches.filter(pl.col("batch_id") == chosen).row(0, named=True)
    # the engine's words and counts, or an admin's note on a rejected batch: text only
    shown_as = st.success if b["meets_bar"] else st.warning if b["fails_bar"] else st.info
    shown_as(plain(b["evidence"]))
    act = st.columns([2, 2, 3])
    if (
        b["still_needed"]
        and not b["fails_bar"]
        and role in ("reviewer", "admin")
        and act[0].button(f"Sample {b['still_needed']:,} more", key="extend_sample")
    ):
        _act(extend_sample, wh, chosen, by=name, more=int(b["still_needed"]))
    rest = int(b["waiting"]) - (int(b["sample_size"]) - int(b["sample_decided"] or 0))
    if role == "admin":
        if act[1].button(
            f"Approve the other {rest:,}",
            key="approve_batch",
            type="primary",
            disabled=not b["meets_bar"],
        ):
            _act(decide_batch, wh, chosen, approve=True, by=name)
        why = act[2].text_input(
            "Why reject the rest",
            key="batch_note",
            label_visibility="collapsed",
            placeholder="Why reject the rest of the batch",
        )
        if why and act[2].button(f"Reject the other {rest:,}", key="reject_batch"):
            _act(decide_batch, wh, chosen, approve=False, by=name, note=why)
    queue = load(sample_cards, chosen)
    st.caption(f"{len(queue):,} sample cards of {chosen} wait for a decision.")

if queue.is_empty():
    st.info("Nothing waits for a decision. Agent runs queue tier-2 proposals here.")
else:
    view = queue
    can_decide = role in ("reviewer", "admin")
    if not can_decide:
        st.warning("Viewers can look but not decide. Sign in as a reviewer to act.")
    # A card is a dozen widgets and a render's time grows with them: pages of 20 keep the
    # queue quick on a big company (docs/dashboard.md, Speed on the mid company).
    per_page = 20
    pages = max((len(view) + per_page - 1) // per_page, 1)
    pick, _ = st.columns([1, 3])
    at_page = (
        pick.number_input(
            f"Page of {pages} ({per_page} cards each)", 1, pages, 1, key="approvals_page"
        )
        if pages > 1
        else 1
    )
    cards = view.slice((int(at_page) - 1) * per_page, per_page)
    for p in cards.iter_rows(named=True):
        pid = p["proposal_id"]
        target = f"{p['object_type']} {p['record_id']}" + (f" · {p['field']}" if p["field"] else "")
        with st.container(border=True):
            # Every value on a card came from the CRM, a provider or an agent: text only.
            st.markdown(
                f"**{plain(p['action_type'])}** on {plain(target)}: "
                f"{plain(value_text(p['old_value']))} → {plain(value_text(p['new_value']))}  \n"
                f"{plain(p['agent'])} · tier {p['tier']} · confidence {p['confidence']}"
            )
            st.caption(f"Why: {plain(p['reason'])}  \nWhy this tier: {plain(p['tier_reason'])}")
            # One row: note, edit, the two decisions; labels live in the placeholders.
            row = st.columns([3.2, 1.8, 2.5, 1.3, 1])
            note = row[0].text_input(
                "Note",
                key=f"note_{pid}",
                label_visibility="collapsed",
                placeholder="Note (a rejection needs one)",
            )
            picked = row[1].selectbox(
                "Reason",
                ["(reason)", *REASON_CODES],
                key=f"reason_{pid}",
                label_visibility="collapsed",
                help="Why an edit or a rejection overrides the agent",
            )
            code = None if picked == "(reason)" else picked
            edit = (
                row[2].text_input(
                    "Edit value",
                    key=f"edit_{pid}",
                    label_visibility="collapsed",
                    placeholder="Edited value (optional)",
                )
                if p["field"]
                else ""
            )
            approve_label = (
                "Mark done" if p["status"] == "task" else ("Approve edit" if edit else "Approve")
            )
            if row[3].button(
                approve_label,
                key=f"approve_{pid}",
                disabled=not can_decide,
                type="primary",
                width="stretch",
            ):
                try:
                    d = decide(
                        wh,
                        pid,
                        approve=True,
                        by=name,
                        note=note or None,
                        value=parse_value(edit) if edit else None,
                        reason_code=code if edit else None,
                    )
                    st.toast(plain(d.message))
                    st.rerun()
                except EngineError as exc:
                    st.error(plain(exc))
            if row[4].button(
                "Reject", key=f"reject_{pid}", disabled=not can_decide, width="stretch"
            ):
                try:
                    d = decide(wh, pid, approve=False, by=name, note=note, reason_code=code)
                    st.toast(plain(d.message))
                    st.rerun()
                except EngineError as exc:
                    st.error(plain(exc))
            if p["evidence"]:
                with st.expander("Evidence"):
                    st.json(json.loads(p["evidence"]))
    if can_decide and not view.is_empty():
        # Only what is on the screen: nobody approves cards they have not seen.
        pending = cards.filter(pl.col("status") == "pending")
        if st.button(
            f"Approve the {len(pending)} pending proposals on this page", key="bulk_approve"
        ):
            done = sum(
                decide(wh, pid, approve=True, by=name, note="bulk").changed
                for pid in pending["proposal_id"]
            )
            st.toast(f"approved {done}")
            st.rerun()
    download(view, "review_queue", key="dl_queue")

if not shadow.is_empty():
    st.subheader("Shadow proposals (what agents in shadow mode would do; not approvable)")
    table(
        shadow.select(
            "proposal_id",
            "agent",
            "action_type",
            "record_id",
            "field",
            "old_value",
            "new_value",
            "confidence",
            "tier",
            "reason",
        ),
        "shadow_proposals",
        key="dl_shadow",
    )
