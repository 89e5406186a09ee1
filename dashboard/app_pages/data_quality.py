"""Data quality: the audit snapshots over time, by object and field, down to the records;
and clerical review, where a reviewer answers the identity pairs the matcher found
hardest and the next hygiene run learns from the answers."""

from __future__ import annotations

import json

import polars as pl
import streamlit as st

from revstack.agents.engine import EngineError, mark_pair
from revstack.dashboard._state import (
    chart,
    filters,
    load,
    plain,
    refresh,
    signed_in,
    table,
    warehouse,
)
from revstack.dashboard.charts import horizontal_bars, lines
from revstack.data.snapshots import quality_history
from revstack.metrics.drilldown import DRILLABLE, drill_down
from revstack.metrics.hygiene import pairs_to_review


def clerical_review() -> None:
    """One pair at a time, hardest first: the same company (person), or two?"""
    st.subheader("Clerical review: one entity or two?")
    name, role = signed_in()
    kind = st.radio("Records", ["accounts", "contacts"], horizontal=True, key="cr_kind")
    queue = load(pairs_to_review, kind)
    pairs, fields = queue["pairs"], queue["fields"]
    st.caption(
        f"{queue['answered']:,} {kind} pairs answered so far. Each hygiene run asks about the "
        "pairs it is least sure of, one of each kind; the next run decides every answered "
        "pair as answered and moves the pairs of its kind toward the answers "
        "(docs/identity.md, Labels)."
    )
    if pairs.is_empty():
        st.info("Nothing to answer: the latest hygiene run asked nothing that is still open.")
        return
    pair = pairs.row(0, named=True)
    st.markdown(
        f"The latest run's number {pair['rank']} by how unsure the matcher is · "
        f"match probability {pair['probability']:.0%} · {len(pairs) - 1:,} more of its "
        "pairs to answer after this"
    )
    # A table cell shows text as text: no Markdown escaping here (plain() is for Markdown).
    side = pl.DataFrame(
        {
            "field": fields,
            "record A": [str(v) if (v := pair[f"left_{f}"]) is not None else "–" for f in fields],
            "record B": [str(v) if (v := pair[f"right_{f}"]) is not None else "–" for f in fields],
        }
    )
    st.dataframe(side, hide_index=True, width="stretch")
    levels = pl.DataFrame(json.loads(pair["levels"]))
    st.caption(
        "What the matcher saw: "
        + "; ".join(
            f"{plain(r['kind'])}: {plain(r['level'])} ({r['weight']:+.1f})"
            for r in levels.iter_rows(named=True)
        )
    )
    can_answer = role in ("reviewer", "admin")
    if not can_answer:
        st.caption("Reviewers and admins answer; viewers see the question.")
    note = st.text_input("Note (optional)", key="cr_note", disabled=not can_answer)
    buttons = st.columns(2)
    answers = ((f"Same {kind[:-1]}", True), (f"Different {kind}", False))
    for col, (label, same) in zip(buttons, answers, strict=True):
        if col.button(label, key=f"cr_{same}", disabled=not can_answer, width="stretch"):
            try:
                mark_pair(
                    warehouse(),
                    by=name or "",
                    object_type=kind,
                    left_id=pair["left_id"],
                    right_id=pair["right_id"],
                    same=same,
                    note=note,
                )
                refresh()
                st.toast(f"Marked {'the same' if same else 'different'}")
                st.rerun()
            except EngineError as exc:
                st.error(plain(exc))


st.title("Data quality")
f = filters(agents=False, window=True, territory=True)
history = load(quality_history)
if history.is_empty():
    st.info(
        "No audit yet. `revstack audit` measures completeness, duplicates, definition "
        "violations and stale deals, and stores a snapshot here."
    )
    clerical_review()
    st.stop()

scores = history.select("snapshot_id", "taken_at", "score").unique().sort("snapshot_id")
latest = history.filter(pl.col("snapshot_id") == scores["snapshot_id"].max())
in_window = history.filter(pl.col("taken_at") >= f.since)
c = st.columns(3)
c[0].metric(
    "Data quality score",
    f"{scores['score'][-1]:.1f}",
    f"{scores['score'][-1] - scores['score'][-2]:+.1f}" if len(scores) > 1 else None,
)
c[1].metric("Snapshots", len(scores))
c[2].metric("As of", f"{latest['as_of'][0]:%Y-%m-%d}" if latest["as_of"][0] else "–")
window_scores = scores.filter(pl.col("taken_at") >= f.since)
if window_scores.is_empty():
    st.caption(f"No audit in the window ({f.window.lower()}); the latest is shown below.")
else:
    chart(st, lines(window_scores, "taken_at", "score", title="Score over time"), key="dq_trend")

kinds = sorted(latest["check_kind"].unique().to_list())
kind = st.selectbox("Check", kinds, key="dq_kind")
part = latest.filter(pl.col("check_kind") == kind).sort("object_type", "item")
# Completeness counts what is present; every other check counts what is wrong.
flagged = (
    pl.col("denominator") - pl.col("numerator") if kind == "completeness" else pl.col("numerator")
)
part = part.with_columns(label=pl.col("object_type") + " · " + pl.col("item"), flagged=flagged)
left, right = st.columns(2)
chart(
    left,
    horizontal_bars(
        part["label"].to_list(),
        part["value"].to_list(),
        percent=True,
        title=f"{kind}: share per object and item (latest audit)",
    ),
    key="dq_bar",
)
trend = in_window.filter(pl.col("check_kind") == kind).with_columns(
    label=pl.col("object_type") + " · " + pl.col("item")
)
if trend["snapshot_id"].n_unique() > 1:
    chart(
        right,
        lines(trend, "taken_at", "value", by="label", percent=True, title=f"{kind} over time"),
        key="dq_item_trend",
    )
else:
    right.caption("One audit so far: each later `revstack audit` adds a point per item here.")
table(
    # every check's value is a share of its denominator; named so, it reads as one
    part.select(
        "object_type", "item", "flagged", "numerator", "denominator", pl.col("value").alias("share")
    ),
    f"dq_{kind}",
    key="dl_dq_part",
)

st.subheader("Records behind a figure")
if kind not in DRILLABLE:
    st.caption(f"No record-level view for {kind}.")
else:
    labels = part["label"].to_list()
    worst = part.sort("flagged", descending=True)["label"][0] if len(part) else None
    pick = st.selectbox("Figure", labels, index=labels.index(worst) if worst else 0, key="dq_item")
    row = part.filter(pl.col("label") == pick).row(0, named=True)
    records = load(drill_down, kind, row["object_type"], row["item"], team=f.team, region=f.region)
    scope = " · ".join(
        x for x in (f.team and f"team {f.team}", f.region and f"region {f.region}") if x
    )
    n = records["record_id"].n_unique()
    groups = f" in {records['group'].n_unique():,} groups" if "group" in records.columns else ""
    st.caption(
        f"{n:,} {row['object_type']}{groups} behind “{plain(pick)}” now"
        + (f", owned in {plain(scope)}" if scope else "")
        + f"; the latest audit flagged {row['flagged']:,}"
        + (" (it counts the redundant records: all but one per group)" if groups else "")
        + ". The records are found again on today's data, so the counts can differ."
    )
    if records.is_empty():
        st.success("No records: nothing to fix here.")
    else:
        table(
            records,
            f"dq_records_{kind}_{row['item']}".replace(" ", "_"),
            key="dl_dq_records",
            rows=1000,
        )
with st.expander("Every stored figure"):
    table(history, "data_quality_history", key="dl_dq", rows=2000)
clerical_review()
