"""Term frequencies of the list being resolved: a rare word counts more than a common one.

Computed on the prepared records themselves, so the weights are the list's own: in a list
of universities "university" says little, in a list of bakeries it says a lot.

- ``name_tw``: the name's distinct words, each with its weight log2((n + 1) / df), where
  df is how many names of the list hold the word ("international", "inc" and "the" weigh little,
  "zymergen" a lot). Name comparisons measure how much of the two names' weight their
  shared words carry.
- ``name_wsum``: the sum of those weights; ``name_unique_w``: the weight of a word only
  two names hold (the most a shared word can weigh in this list); ``name_rare``: the
  name's two rarest words (a blocking key: names sharing a rare word are worth comparing);
  ``name_deletes``: the rarest word (a one-word name's is the name) with each letter left
  out in turn, so names whose telling word is mistyped once still meet.
- ``city_tf``: the share of records in that exact city. An exact agreement on a city many
  records share ("new york") is weaker evidence than on a rare one ("studio city"); the
  model adjusts the agreement's weight by it, as Splink's term-frequency adjustments do.
- ``phone_tf``, ``domain_tf``: the same for a phone number (its last nine digits) and a
  domain. A number many records share is an office's switchboard, a domain many share a
  group's website; two companies agreeing on them is weaker evidence than on a number
  or domain only they have (organisations only: see ``comparisons_for``).
  Not for the exact name: in a list with duplicates a name's count is mostly its own
  duplicates, and the adjustment then weakens every true match (on the generated mid
  accounts it cost recall 0.988 -> 0.967); names get their term weights word by word.
"""

from __future__ import annotations

import math

import polars as pl

__all__ = ["TF_KINDS", "add_term_columns", "one_letter_apart"]

# The kinds whose exact agreement is adjusted by the value's frequency.
TF_KINDS = ("city", "phone", "domain")


def add_term_columns(prepared: pl.DataFrame) -> pl.DataFrame:
    """``prepared`` with the term columns its kinds support (see the module docstring)."""
    n = len(prepared)
    out = prepared
    for kind in TF_KINDS:
        if kind in out.columns and out.schema[kind] == pl.String:
            # A phone is compared on its last nine digits: counted on them too.
            value = pl.col(kind).str.slice(-9) if kind == "phone" else pl.col(kind)
            # each row's count of its value, in one pass (a count per value joined back
            # on the record ids was twice the time on mid's 273k contacts)
            out = out.with_columns(
                pl.when(value.is_not_null())
                .then(pl.len().over(value) / max(n, 1))
                .alias(f"{kind}_tf")
            )
    if "name_sorted" not in out.columns:
        return out
    words = (
        out.select("record_id", word=pl.col("name").str.split(" "))
        .explode("word")
        .filter(pl.col("word").is_not_null() & (pl.col("word") != ""))
        .unique(["record_id", "word"])
    )
    df = words.group_by("word").len()
    weighted = words.join(df, on="word").with_columns(w=((n + 1) / pl.col("len")).log(2.0).round(4))
    per_record = (
        weighted.sort(["record_id", "w", "word"], descending=[False, True, False])
        .group_by("record_id", maintain_order=True)
        .agg(
            name_tw=pl.struct(t="word", w="w"),
            name_wsum=pl.col("w").sum(),
            name_rare=pl.col("word").head(2),
        )
    )
    per_record = per_record.with_columns(
        name_deletes=one_letter_apart(pl.col("name_rare").list.first())
    )
    return out.join(per_record, on="record_id", how="left").with_columns(
        name_unique_w=pl.lit(round(math.log2((n + 1) / 2), 4))
    )


def one_letter_apart(word: pl.Expr, shortest: int = 6, longest: int = 14) -> pl.Expr:
    """A word and each spelling of it with one letter left out ("nvidia": "vidia",
    "nidia", ..., "nvidi"), so two spellings one typo apart (a letter dropped, added,
    changed or two swapped) share a key (the symmetric deletion of spelling correctors).

    A word one letter shorter than ``shortest`` keys by its whole spelling alone, so it
    meets a longer one that lost a letter ("nvida" / "nvidia") but not another of its own
    length: one letter is a fifth of it ("fenix" / "felix", two restaurants, would share
    "feix"). Null for shorter and longer words."""
    size = word.str.len_chars()
    variants = [word] + [
        pl.when(size.is_between(max(shortest, i + 1), longest)).then(
            word.str.slice(0, i) + word.str.slice(i + 1)
        )
        for i in range(longest)
    ]
    keyed = size.is_between(shortest - 1, longest)
    return pl.when(keyed).then(pl.concat_list(variants).list.drop_nulls().list.unique())
