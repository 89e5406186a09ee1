"""Outbound screens candidates on texts built as frames and composes only those that pass:
the texts are compose's to the character, and a run gives what composing and checking
every candidate gives (the rewriter's path), planted odd values and all."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from revstack.agents.engine import run_agents
from revstack.agents.outbound import Outbound
from revstack.agents.outbound._compose import compose
from revstack.agents.outbound._targets import candidates, recent_activities
from revstack.agents.outbound._texts import texts
from revstack.agents.registry import specs
from revstack.data.normalize import domain_from_website
from revstack.data.warehouse import Warehouse, frame, release_all
from tests.agents._contexts import agent_context


def _q(wh: Warehouse, sql: str, params: object = None) -> pl.DataFrame:
    with wh.connect() as con:
        out = frame(con, sql, params)
    release_all()
    return out


@pytest.fixture(scope="module")
def planted(small_company: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """The small company with odd values on candidates: text that looks like a placeholder
    or a date, a blank name, formula and bracket starts, a leaver owning accounts."""
    release_all()
    wh = Warehouse(tmp_path_factory.mktemp("screen") / "planted.duckdb")
    shutil.copy(small_company.path, wh.path)
    ctx = agent_context(wh, "outbound")
    accounts = ctx.table("crm.accounts").with_columns(domain=domain_from_website(pl.col("website")))
    cand = candidates(ctx, accounts, ctx.table("crm.contacts"))
    release_all()
    first = cand.filter(pl.col("step") == 1)
    follow = cand.filter(pl.col("step") > 1)
    expansion = first.filter(pl.col("sequence") == "expansion")["account_id"].unique().sort()
    news = first["news_id"].drop_nulls().unique().sort()
    previous = follow["prev_id"].drop_nulls().unique().sort()
    assert len(first) >= 4 and len(expansion) >= 2 and len(news) >= 2 and len(previous) >= 1
    ids = first["contact_id"].to_list()
    with wh.connect() as con:
        for cid, name in zip(
            ids, ["{last_name} [[x]]", "2026-01-02 Ann", "", "Zoë }} {{"], strict=False
        ):
            con.execute(
                "UPDATE crm.contacts SET first_name = $n WHERE contact_id = $c",
                {"n": name, "c": cid},
            )
        for aid, name in zip(expansion, ["=cmd|' /C calc'!A0", "[[Acme]]"], strict=False):
            con.execute(
                "UPDATE crm.accounts SET name = $n WHERE account_id = $a", {"n": name, "a": aid}
            )
        con.execute(
            "UPDATE ref.news SET headline = $h WHERE news_id = $n",
            {"h": "2026-09-01: {company} raises a round", "n": news[0]},
        )
        con.execute(
            "UPDATE crm.activities SET subject = $s WHERE activity_id = $a",
            {"s": "{{ours}} 1999-12-31", "a": previous[0]},
        )
        # the owner of the first follow-up's account leaves: no sender for their accounts
        con.execute(
            "UPDATE crm.users SET is_active = FALSE WHERE user_id = "
            "(SELECT owner_id FROM crm.accounts WHERE account_id = $a)",
            {"a": follow["account_id"][0]},
        )
    release_all()
    return wh


def test_the_texts_are_what_compose_writes(planted: Warehouse) -> None:
    ctx = agent_context(planted, "outbound")
    accounts = ctx.table("crm.accounts").with_columns(domain=domain_from_website(pl.col("website")))
    contacts = ctx.table("crm.contacts")
    cand = candidates(ctx, accounts, contacts)
    wins = Outbound._first_wins(ctx)
    got = texts(
        cand,
        contacts,
        accounts,
        ctx.table("crm.users"),
        ctx.table("ref.news"),
        recent_activities(ctx),
        wins,
    )
    lookup = Outbound._lookup(ctx, accounts, contacts, cand)
    by_account = dict(wins.select("account_id", "opportunity_id").iter_rows())
    release_all()
    braced = 0
    for c, (subject, body, braces) in zip(cand.iter_rows(named=True), got.iter_rows(), strict=True):
        contact = lookup[("crm.contacts", c["contact_id"])]
        owner = Outbound._owner(lookup, c["account_id"])
        draft = compose(c, Outbound._rows(c, contact, owner, lookup, by_account))
        assert (subject, body) == (draft.subject, draft.body), c["contact_id"]
        text = subject + "\n" + body
        assert braces == any(m in text for m in ("{", "}", "[[", "]]"))
        braced += braces
    # the planted values reach the texts: unfilled and look-alike placeholders, a formula
    assert braced >= 6
    assert got["subject"].str.starts_with("=").any()
    assert got["body"].str.contains("Hi 2026-01-02,", literal=True).any()


def _run(src: Warehouse, dst: Path, agent: Outbound) -> dict[str, pl.DataFrame]:
    release_all()
    shutil.copy(src.path, dst)
    wh = Warehouse(dst)
    spec = next(s for s in specs() if s.name == "outbound")
    for _ in range(2):  # a first run, then one that meets its own drafts and blocks
        [result] = run_agents(
            wh, [dataclasses.replace(spec, factory=lambda: agent)], only="outbound"
        )
        assert result.status == "succeeded", result.message
    out = {
        "drafts": _q(wh, "SELECT * EXCLUDE (created_at) FROM ops.drafts ORDER BY run_id, draft_id"),
        "blocks": _q(
            wh,
            "SELECT * EXCLUDE (blocked_at) FROM ops.draft_blocks "
            "ORDER BY run_id, contact_id, sequence, sequence_step, guardrail",
        ),
        "proposals": _q(
            wh,
            "SELECT * EXCLUDE (proposal_id, created_at) FROM ops.proposals "
            "WHERE agent = 'outbound' ORDER BY proposal_id",
        ),
        "counts": _q(
            wh, "SELECT metadata FROM ops.runs WHERE agent = 'outbound' ORDER BY run_id"
        ).with_columns(
            pl.col("metadata").map_elements(
                lambda m: json.dumps(json.loads(m)["agent"], sort_keys=True),
                return_dtype=pl.String,
            )
        ),
    }
    return out


@pytest.mark.slow
def test_screening_gives_what_composing_every_candidate_gives(
    planted: Warehouse, tmp_path: Path
) -> None:
    screened = _run(planted, tmp_path / "screened.duckdb", Outbound())
    # a rewriter that changes nothing sends every candidate through compose and check
    every = _run(planted, tmp_path / "every.duckdb", Outbound(rewriter=lambda t: list(t)))
    for name, got in screened.items():
        assert got.equals(every[name]), name
    blocks = screened["blocks"]
    assert len(screened["drafts"]) > 50
    assert set(blocks["guardrail"]) >= {
        "placeholder",
        "do_not_contact",
        "bad_email",
        "duplicate",
        "formula",
    }
    details = blocks.filter(pl.col("guardrail") == "placeholder")["detail"]
    assert details.str.contains("{last_name}", literal=True).any()  # a value's, left as it was
    assert details.str.contains("{sender_name}", literal=True).any()  # the leaver's accounts
