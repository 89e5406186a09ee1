"""The subject and body ``compose`` writes, for every candidate at once, as frame columns.

A weekly run on mid checks about 21,600 candidates and blocks most of them (people who
left, bounced addresses); composing each in Python, facts and all, to read its text was
most of the run. The guardrails that read only the text and the person (``screen``)
need the text, not the facts: here each template is cut once into its fixed words and
its placeholders, and a candidate's text is those words joined with its values, a
placeholder without a value left as it is. That is ``_compose._fill``'s one pass (a
value is never filled in again), so the texts are ``compose``'s to the character; a
test holds them equal on every candidate of the small company with odd values planted.
Only the drafts that pass are composed in Python, for their facts and sources.
"""

from __future__ import annotations

import re

import polars as pl

from revstack.agents.outbound._compose import HOOKS, TEMPLATES

__all__ = ["texts"]

_SLOT = re.compile(r"\{([a-z_]+)\}")
# compose's _shown: a text that starts like a date is cut to the date
_DATE_LIKE = r"^\d{4}-\d\d-\d\d"


def _shown(col: str, dtype: pl.DataType) -> pl.Expr:
    """A fact's value as ``compose`` shows it; null where it has no fact (a blank or
    missing source)."""
    c = pl.col(col)
    if dtype == pl.String:
        return (
            pl.when(c.is_null() | (c == ""))
            .then(None)
            .when(c.str.contains(_DATE_LIKE))
            .then(c.str.slice(0, 10))
            .otherwise(c)
        )
    if isinstance(dtype, pl.Datetime | pl.Date):
        return c.dt.strftime("%Y-%m-%d")  # isoformat, then the date
    raise TypeError(f"{col}: no text form for {dtype}")  # compose would str() it


def _filled(template: str) -> pl.Expr:
    pieces = _SLOT.split(template)  # fixed words, name, fixed words, name, ...
    parts: list[pl.Expr] = []
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            parts.append(pl.lit(piece))
        else:
            parts.append(pl.coalesce(pl.col(f"v_{piece}"), pl.lit("{" + piece + "}")))
    return pl.concat_str(parts)


def _variants() -> list[tuple[pl.Expr, str, str]]:
    """(which candidates, subject template, body template), as ``compose`` picks them."""
    out = []
    for (sequence, step), (subject, body) in TEMPLATES.items():
        if step != 1:
            out.append((pl.col("step") == step, subject, body))
            continue
        for hook, has_hook in (
            ("news", pl.col("_news")),
            ("intent", ~pl.col("_news")),
        ):
            with_hook = body.replace("{hook}", HOOKS[hook])
            which = (pl.col("step") == 1) & (pl.col("sequence") == sequence) & has_hook
            if sequence == "expansion":
                # no won deal in the CRM: the sentence loses its "since"
                out.append((which & pl.col("_first_win"), subject, with_hook))
                out.append(
                    (
                        which & ~pl.col("_first_win"),
                        subject,
                        with_hook.replace(" since {customer_since}", ""),
                    )
                )
            else:
                out.append((which, subject, with_hook))
    return out


def _pick(choices: list[tuple[pl.Expr, pl.Expr]]) -> pl.Expr:
    expr: pl.Expr = pl.lit(None, pl.String)
    for which, text in reversed(choices):  # the first that applies, as when/then chains
        expr = pl.when(which).then(text).otherwise(expr)
    return expr


def texts(
    cand: pl.DataFrame,
    contacts: pl.DataFrame,
    accounts: pl.DataFrame,
    users: pl.DataFrame,
    news: pl.DataFrame,
    activities: pl.DataFrame,
    first_wins: pl.DataFrame,
) -> pl.DataFrame:
    """``subject`` and ``body`` of each row of ``cand`` (in its order), as ``compose``
    would write them from the same rows (``contacts`` and ``accounts`` by id, the account
    owner in ``users`` when active, ``news`` and ``activities`` (the intent and the
    previous email) by id, ``first_wins`` (account_id, close_date) for an expansion), and
    ``braces``: whether either holds ``{``, ``}``, ``[[`` or ``]]`` (if not, no placeholder)."""

    def by(df: pl.DataFrame, key: str, wanted: str | None, **cols: str) -> pl.DataFrame:
        # a lookup by key (of the keys in cand[wanted]): the last row of a key wins, as in
        # a dict
        if wanted is not None:
            df = df.filter(pl.col(key).is_in(cand[wanted].drop_nulls().implode()))
        return df.unique(key, keep="last", maintain_order=True).select(
            pl.col(key), *(pl.col(c).alias(a) for a, c in cols.items())
        )

    rows = (
        cand.select(
            "contact_id", "account_id", "sequence", "step", "news_id", "intent_id", "prev_id"
        )
        .join(
            by(contacts, "contact_id", "contact_id", first_name="first_name"),
            on="contact_id",
            how="left",
        )
        .join(
            by(accounts, "account_id", "account_id", company="name", owner_id="owner_id"),
            on="account_id",
            how="left",
        )
        .join(
            # a leaver does not send: no sender, and the placeholder stays
            by(users, "user_id", None, sender_name="name", _active="is_active")
            .with_columns(
                sender_name=pl.when(pl.col("_active").fill_null(False)).then("sender_name")
            )
            .select(owner_id="user_id", sender_name="sender_name"),
            on="owner_id",
            how="left",
        )
        .join(
            by(
                news, "news_id", "news_id", headline="headline", news_date="published_at"
            ).with_columns(_news=pl.lit(True)),
            on="news_id",
            how="left",
        )
        .join(
            by(activities, "activity_id", "intent_id", intent_date="occurred_at").rename(
                {"activity_id": "intent_id"}
            ),
            on="intent_id",
            how="left",
        )
        .join(
            by(
                activities,
                "activity_id",
                "prev_id",
                previous_subject="subject",
                previous_date="occurred_at",
            ).rename({"activity_id": "prev_id"}),
            on="prev_id",
            how="left",
        )
        .join(
            by(first_wins, "account_id", "account_id", customer_since="close_date").with_columns(
                _first_win=pl.lit(True)
            ),
            on="account_id",
            how="left",
        )
        .with_columns(pl.col("_news", "_first_win").fill_null(False))
    )
    facts = (
        "first_name",
        "company",
        "sender_name",
        "headline",
        "news_date",
        "intent_date",
        "previous_subject",
        "previous_date",
        "customer_since",
    )
    values = rows.with_columns(
        *(_shown(f, rows.schema[f]).alias(f"v_{f}") for f in facts)
    ).with_columns(
        v_customer_since=pl.col("v_customer_since").str.slice(0, 4)  # the year is enough
    )
    variants = _variants()
    out = values.select(
        subject=_pick([(w, _filled(s)) for w, s, _ in variants]),
        body=_pick([(w, _filled(b)) for w, _, b in variants]),
    )
    # Only a text holding a brace or a doubled bracket can hold a placeholder: the rest
    # need no search for one (most texts on mid have none).
    return out.with_columns(
        braces=pl.any_horizontal(
            pl.col(c).str.contains(m, literal=True)
            for c in ("subject", "body")
            for m in ("{", "}", "[[", "]]")
        )
    )
