"""Blocking rules and comparison levels, compiled to DuckDB SQL over prepared records.

Blocking: every record gets a few keys (its normalised name, its domain, its phone's last
digits, its name's first word with its city or zip ...). Two records become a candidate
pair when they share a key inside a block small enough to compare exhaustively; a pair
found by several rules is compared once. Comparison: each field kind has ordered levels
(exact, close, somewhat close, different) computed in SQL; a level of -1 means a side is
missing, which counts as no evidence either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from revstack.data.identity._places import PLACE_WORDS, apart_sql

__all__ = [
    "Comparison",
    "Rule",
    "agree_groups",
    "apart_kinds",
    "comparisons_for",
    "blocking_rules",
    "pairs_sql",
    "gamma_sql",
]

JW = "jaro_winkler_similarity"


@dataclass(frozen=True)
class Comparison:
    """One field kind: the columns it needs, when it is missing, and its levels (best first)."""

    kind: str
    columns: tuple[str, ...]
    null: str
    levels: tuple[tuple[str, str], ...]  # (label, SQL condition over l.* and r.*)
    # Similarities computed once per pair in the inner query: (alias, SQL over l. and r.).
    extras: tuple[tuple[str, str], ...] = ()
    # The best level's weight is adjusted by how common the agreed value is (``<kind>_tf``).
    tf: bool = False
    # The fallback rule set: levels >= strong agree strongly, >= weak somewhat; levels
    # >= spelt (when set) are one spelling of the same words, which the rule set counts
    # above a strong agreement when the field is all there is to compare.
    strong: int = 0
    weak: int = 0
    spelt: int = 0

    def case(self) -> str:
        k = len(self.levels)
        arms = " ".join(f"WHEN {cond} THEN {k - i}" for i, (_, cond) in enumerate(self.levels))
        return f"CASE WHEN {self.null} THEN -1 {arms} ELSE 0 END"

    def label(self, level: int) -> str:
        if level < 0:
            return "missing"
        if level == 0:
            return "different"
        return self.levels[len(self.levels) - level][0]


def _null(*cols: str) -> str:
    return " OR ".join(f"l_{c} IS NULL OR r_{c} IS NULL" for c in cols)


def _similarities(comparison: Comparison) -> list[str]:
    """Columns whose Jaro-Winkler similarity the levels use (computed once per pair)."""
    text = " ".join(cond for _, cond in comparison.levels)
    return sorted(set(re.findall(r"\bjw_(\w+)", text)))


# How much of two names' word weight (rare words weigh more, see _terms.py) they share:
# over both names (a weighted Jaccard) and over the lighter name (does one hold the other).
_SHARED = "coalesce(list_sum([x.w FOR x IN l.name_tw IF list_contains(r.name_tw, x)]), 0)"
# Place names of one word, for the odd words spelt alike: two places spelt alike are two
# places ("austria" / "australia").
_PLACE_WORDS = "[" + ", ".join(f"'{w}'" for w in PLACE_WORDS) + "]"
# A word held by one name in 2^_RESIDUAL of the list is about the most one side may add;
# the shared words must say at least as much as a word one name in 2^_SHARED_MIN holds.
_RESIDUAL = 1.0
# A name's words the other lacks, in the order written, run together.
_GLUED = (
    "array_to_string([x FOR x IN string_split({a}.name, ' ')"
    " IF NOT list_contains(string_split({b}.name, ' '), x)], '')"
)
# How many words a name has.
_WORDS = "len(string_split({}_name, ' '))"
_SHARED_MIN = 7.5
_ORG_NAME = Comparison(
    "name",
    (
        "name",
        "name_sorted",
        "name_compact",
        "name_glued",
        "name_initials",
        "name_wsum",
        "name_unique_w",
    ),
    _null("name"),
    (
        ("exact", "l_name = r_name"),
        (
            "same words or spacing",
            "l_name_sorted = r_name_sorted OR l_name_compact = r_name_compact"
            " OR l_name_glued = r_name_glued",
        ),
        # "second street grill" / "grille", "genearl elcetric" / "general electric": as many
        # odd words on each side, four letters or more, each spelt like one on the other;
        # not a place for another ("shell austria" / "shell australia" are two companies).
        # Or as many words or not, the odd words run together in their order are spelt
        # alike, six letters or more and no place among them: spaced and spelt otherwise
        # at once ("al haramain foundation" / "alharamayn foundation", "hoffmann la roche"
        # / "hoffman laroche").
        (
            "odd words spelt alike",
            "(len(tw_lres) >= 1 AND len(tw_lres) = len(tw_rres)"
            " AND list_min([length(a) FOR a IN tw_lres]) >= 4"
            f" AND NOT (list_has_any(tw_lres, {_PLACE_WORDS})"
            f" AND list_has_any(tw_rres, {_PLACE_WORDS}))"
            f" AND list_bool_and([list_max([{JW}(a, b) FOR b IN tw_rres]) >= 0.88"
            " FOR a IN tw_lres]))"
            " OR (len(tw_lres) >= 1 AND len(tw_rres) >= 1 AND len(tw_lres) <> len(tw_rres)"
            " AND least(length(tw_lglued), length(tw_rglued)) >= 6"
            f" AND NOT (list_has_any(tw_lres, {_PLACE_WORDS})"
            f" OR list_has_any(tw_rres, {_PLACE_WORDS}))"
            f" AND {JW}(tw_lglued, tw_rglued) >= 0.9)",
        ),
        # "cps mcpherson james b" / "mcpherson": all that one name says, the other says too,
        # and what they share is rare (in a small list, a word only the two names hold).
        # Or a name of three words or more is whole in the other however common its words:
        # where one organisation is most of a list, its own words are its commonest
        # ("hitachi global storage technology" in "... netherlands").
        (
            "one holds the other's words",
            f"tw_left <= {_RESIDUAL} AND (tw_shared >= least({_SHARED_MIN}, l_name_unique_w)"
            f" OR (tw_left <= 1e-6 AND least({_WORDS.format('l')}, {_WORDS.format('r')}) >= 3))",
        ),
        # Below containment: "teddy bear v" / "teddy bear vi" are close and two sites.
        ("very close spelling", "jw_name >= 0.95"),
        ("most of the words' weight shared", "tw_jaccard >= 0.7"),
        ("close", "jw_name >= 0.9"),
        (
            "one is the other's initials",
            "length(l_name_compact) >= 2 AND (l_name_compact = r_name_initials"
            " OR r_name_compact = l_name_initials)",
        ),
        ("some weight shared or somewhat close", "tw_jaccard >= 0.4 OR jw_name >= 0.8"),
    ),
    extras=(
        ("tw_shared", _SHARED),
        (
            "tw_jaccard",
            "tw_shared / greatest(l.name_wsum + r.name_wsum - tw_shared, 1e-9)",
        ),
        ("tw_lres", "[x.t FOR x IN l.name_tw IF NOT list_contains(r.name_tw, x)]"),
        ("tw_rres", "[x.t FOR x IN r.name_tw IF NOT list_contains(l.name_tw, x)]"),
        # Each side's odd words in the order written, run together.
        ("tw_lglued", _GLUED.format(a="l", b="r")),
        ("tw_rglued", _GLUED.format(a="r", b="l")),
        # The weight of the words only one side has, on the side with less of it.
        ("tw_left", "least(l.name_wsum, r.name_wsum) - tw_shared"),
    ),
    strong=6,
    weak=2,
    spelt=7,
)


def _person(prefix: str) -> Comparison:
    g, f, full = f"{prefix}_given", f"{prefix}_family", prefix
    return Comparison(
        prefix,
        (g, f, full),
        _null(full),
        (
            ("exact", f"l_{full} = r_{full}"),
            ("same family, close given", f"l_{f} = r_{f} AND jw_{g} >= 0.9"),
            ("close family, same given", f"jw_{f} >= 0.92 AND l_{g} = r_{g}"),
            ("same family, same initial", f"l_{f} = r_{f} AND left(l_{g}, 1) = left(r_{g}, 1)"),
            ("close", f"jw_{full} >= 0.85"),
        ),
        strong=3,
        weak=1,
    )


_OTHERS = {
    # Number and street apart: "435 S La Cienega Blvd" and "435 s. la cienega blv."
    # agree; "12 Main St" and "21 Main St" do not.
    "address": Comparison(
        "address",
        ("address", "address_no", "address_street"),
        _null("address"),
        (
            ("exact", "l_address = r_address"),
            (
                "same number, same or close street",
                "l_address_no = r_address_no AND jw_address_street >= 0.9",
            ),
            ("close", "jw_address >= 0.92"),
            ("same number, similar street", "l_address_no = r_address_no AND jw_address >= 0.75"),
        ),
        strong=3,
        weak=2,
    ),
    "city": Comparison(
        "city",
        ("city",),
        _null("city"),
        (
            ("exact", "l_city = r_city"),
            ("close", "jw_city >= 0.9"),
        ),
        tf=True,
        strong=2,
        weak=1,
    ),
    "zip": Comparison(
        "zip",
        ("zip",),
        _null("zip"),
        (
            ("exact", "l_zip = r_zip"),
            ("same first three", "left(l_zip, 3) = left(r_zip, 3)"),
        ),
        strong=2,
        weak=1,
    ),
    # Country codes and trunk zeros come and go: compare the last digits.
    "phone": Comparison(
        "phone",
        ("phone",),
        _null("phone"),
        (
            ("same number", "right(l_phone, 9) = right(r_phone, 9)"),
            ("same last 7 digits", "right(l_phone, 7) = right(r_phone, 7)"),
        ),
        tf=True,
        strong=1,
        weak=1,
    ),
    # Only the whole address: a mailbox name ("eric.davis") repeats the person's name.
    "email": Comparison(
        "email", ("email",), _null("email"), (("exact", "l_email = r_email"),), strong=1, weak=1
    ),
    "domain": Comparison(
        "domain",
        ("domain",),
        _null("domain"),
        (("exact", "l_domain = r_domain"),),
        tf=True,
        strong=1,
        weak=1,
    ),
}


def comparisons_for(columns: set[str]) -> list[Comparison]:
    """The comparisons that the prepared columns support, in a fixed order."""
    out = []
    people = "name_given" in columns
    if "name_sorted" in columns:
        out.append(_ORG_NAME)
    elif people:
        out.append(_person("name"))
    if "person" in columns:
        out.append(_person("person"))
    for comparison in _OTHERS.values():
        if all(c in columns for c in comparison.columns):
            # Colleagues share their company's switchboard and domain by design: among
            # people a common number or domain is no weaker a sign (contacts' recall fell
            # 0.999 -> 0.997 with the adjustment, precision stayed).
            if people and comparison.kind in ("phone", "domain"):
                comparison = replace(comparison, tf=False)
            out.append(comparison)
    return out


# Kinds that describe one place: two companies in one building share the street address,
# the postcode and the city, so agreement on all three is not three pieces of evidence
# (docs/identity.md, Two companies in one building).
ONE_PLACE = ("address", "zip", "city")


def agree_groups(kinds: list[str]) -> tuple[tuple[int, ...], ...]:
    """Positions in ``kinds`` of comparisons whose agreements count once (``FellegiSunter``'s
    ``agree``): those of one place, when there are two or more."""
    place = tuple(i for i, k in enumerate(kinds) if k in ONE_PLACE)
    return (place,) if len(place) > 1 else ()


@dataclass(frozen=True)
class Rule:
    """A blocking rule: a key expression over prepared columns, and the comparison kinds
    it makes every pair agree on (training leaves those out of its EM session)."""

    name: str
    key: str
    kinds: tuple[str, ...]
    many: bool = False  # the key is a list: the record is in one block per element


def blocking_rules(columns: set[str]) -> list[Rule]:
    """The blocking rules the prepared columns support."""
    rules: list[Rule] = []
    if "name_sorted" in columns:  # organisations
        rules += [
            Rule("name", "name_sorted", ("name",)),
            Rule("name ends", "left(name, 3) || '|' || right(name, 3)", ("name",)),
            # Two names sharing one of their two rarest words ("st catherine" / "catherine
            # school"); a common word's block is too large and is left out.
            Rule("rare word", "name_rare", ("name",), many=True),
            # The telling word mistyped once ("nvidia" / "nvida", "jacobs engineering" /
            # "jaocbs engineernig"): no word, prefix or ending need be shared.
            Rule("one letter apart", "name_deletes", ("name",), many=True),
            # A name and its acronym ("ibm" / "international business machines"): three or more
            # initials, or a short one-word name.
            Rule(
                "acronym",
                "CASE WHEN length(name_initials) >= 3 THEN name_initials"
                " WHEN name_initials IS NULL AND length(name_compact) BETWEEN 3 AND 6"
                " THEN name_compact END",
                ("name",),
            ),
        ]
        for other in ("city", "zip", "domain"):
            if other in columns:
                rules.append(
                    Rule(f"first word + {other}", f"name_first || '|' || {other}", ("name", other))
                )
    if "name_given" in columns:  # people
        # Across the whole file only when nothing else can bring a person's records together.
        if not columns & {"domain", "phone", "email"}:
            rules.append(
                Rule("family + initial", "name_family || '|' || left(name_given, 1)", ("name",))
            )
        for other in ("domain", "city", "zip"):
            if other in columns:
                rules.append(
                    Rule(f"family + {other}", f"name_family || '|' || {other}", ("name", other))
                )
                rules.append(
                    Rule(f"given + {other}", f"name_given || '|' || {other}", ("name", other))
                )
    if "person" in columns:
        rules.append(Rule("person", "person", ("person",)))
    for col, key in (
        ("domain", "domain"),
        ("email", "email"),
        ("phone", "right(phone, 7)"),
        ("address", "address"),
    ):
        # Colleagues share a domain: for people it blocks only together with a name.
        if col in columns and not (col == "domain" and "name_given" in columns):
            rules.append(Rule(col, key, (col,)))
    if "address_no" in columns and "zip" in columns:
        rules.append(Rule("house number + zip", "address_no || '|' || zip", ("address", "zip")))
    return rules


def pairs_sql(rules: list[Rule], changed: str | None = None, *, twins: bool = False) -> str:
    """Candidate pairs (left_id < right_id) of the table ``prepared``, each once, with a
    bit mask of the rules that found it. Blocks larger than $max_block are left out: a
    key shared by that many records says little about identity (a generic name, a
    switchboard number), and comparing it all would be quadratic.

    ``twins``: ``prepared`` has a column ``twin``, the smallest id of the records whose
    compared fields are all the same (``_resolve._twins``). A block is then too large
    when it holds more than $max_block *different* records: five hundred records of one
    spelling are one name, however many, and a key they share with a few other spellings
    is as telling as in a small list. In a block of more than $max_block records but no
    more different ones, only one record of each twin set is paired with the others,
    and each of its twins with it (a twin agrees with it on every field, so its pairs
    with the rest would say what its twin's say); a block of $max_block records or fewer
    is paired in full, as without twins.

    ``changed`` names a table of record ids (``record_id``): then only the pairs that
    involve one of them, from the blocks they are in (blocks sized over every record),
    with the same rule masks as the whole set would give them."""
    twin = "twin" if twins else "record_id"
    keyed = " UNION ALL ".join(
        f"SELECT {i} AS rule, record_id, {twin} AS twin, CAST(unnest({r.key}) AS VARCHAR) AS key"
        " FROM prepared"
        if r.many
        else f"SELECT {i} AS rule, record_id, {twin} AS twin, CAST({r.key} AS VARCHAR) AS key"
        " FROM prepared"
        for i, r in enumerate(rules)
    )
    keys = f"keyed AS (SELECT * FROM ({keyed}) WHERE key IS NOT NULL AND key <> '')"
    if changed is None:
        blocked = "SELECT k.*, s.over FROM keyed k JOIN sized s USING (rule, key)"
        touching = ""
    else:
        # Only the keys of blocks a changed record is in are counted and paired (every
        # record of such a block is among them, so a block's size is its size over every
        # record): on mid, half the time of counting every block.
        keys = f"""keyed_all AS MATERIALIZED {keys.removeprefix("keyed AS ")},
keyed AS (
    SELECT k.* FROM keyed_all k SEMI JOIN (
        SELECT DISTINCT rule, key FROM keyed_all JOIN {changed} USING (record_id)
    ) t USING (rule, key)
)"""
        blocked = f"""SELECT k.*, s.over, k.record_id IN (SELECT record_id FROM {changed}) AS changed
    FROM keyed k JOIN sized s USING (rule, key)"""
        touching = " AND (l.changed OR r.changed)"
    pairs = f"""SELECT l.record_id AS left_id, r.record_id AS right_id, l.rule
    FROM blocked l JOIN blocked r ON l.rule = r.rule AND l.key = r.key
        AND l.record_id < r.record_id
    WHERE NOT l.over{touching}"""
    if twins:
        # The oversized blocks of few different records: one of each twin set with each
        # other, and every twin with its own.
        pairs += f"""
    UNION ALL
    SELECT l.record_id, r.record_id, l.rule
    FROM (SELECT * FROM blocked WHERE over AND twin = record_id) l
    JOIN (SELECT * FROM blocked WHERE over AND twin = record_id) r
        ON l.rule = r.rule AND l.key = r.key AND l.record_id < r.record_id
    WHERE true{touching}
    UNION ALL
    SELECT least(twin, record_id), greatest(twin, record_id), rule FROM blocked
    WHERE over AND twin <> record_id{
            ""
            if changed is None
            else f" AND (changed OR twin IN (SELECT record_id FROM {changed}))"
        }"""
    sized = """
sized AS (
    SELECT rule, key, false AS over FROM keyed GROUP BY rule, key
    HAVING count(*) BETWEEN 2 AND $max_block
)"""
    if twins:
        # Different records are counted only in the blocks over the size (counting them in
        # every block was 3.5x the time of counting rows, on 8M keys).
        sized = """
counted AS (SELECT rule, key, count(*) AS n FROM keyed GROUP BY rule, key HAVING n >= 2),
sized AS (
    SELECT rule, key, false AS over FROM counted WHERE n <= $max_block
    UNION ALL
    SELECT rule, key, true AS over FROM keyed
    SEMI JOIN (SELECT rule, key FROM counted WHERE n > $max_block) USING (rule, key)
    GROUP BY rule, key HAVING count(DISTINCT twin) <= $max_block
)"""
    return f"""
WITH {keys},{sized},
blocked AS ({blocked}),
paired AS ({pairs})
SELECT left_id, right_id, bit_or(1::BIGINT << rule) AS rules FROM paired GROUP BY ALL
"""


def apart_kinds(columns: set[str] | list[str]) -> tuple[str, ...]:
    """Why the prepared records' pairs may be kept apart whatever their fields say: one is
    the other's parent (a ``parent`` id), their names place them in different countries
    (an organisation name's ``name_places``)."""
    if "parent" not in columns:
        return ()
    # Places only beside a hierarchy: a list that keeps parents and subsidiaries as records
    # of their own keeps a group's national companies so too; flat lists often count
    # them one organisation (docs/identity.md, Places in names).
    return ("parent", "places") if "name_places" in columns else ("parent",)


def gamma_sql(
    comparisons: list[Comparison], pairs_table: str, *, apart: tuple[str, ...] = ()
) -> str:
    """One row per pair of ``pairs_table`` with a gamma level per comparison.

    The inner query fetches both records' columns and every Jaro-Winkler similarity a
    level needs, once; the outer CASEs then only compare numbers and strings (in SQL a
    similarity written in three WHEN arms would be computed three times). With
    ``apart`` (``apart_kinds``) each pair also gets ``apart``: one record is the other's
    parent (``apart_parent``), so the two are different entities by the list's own say
    (docs/identity.md, Hierarchy), or their names place them in different countries
    (``apart_place``; docs/identity.md, Places in names).
    """
    columns = sorted({c for comp in comparisons for c in comp.columns})
    sims = sorted({s for comp in comparisons for s in _similarities(comp)})
    extras = [e for comp in comparisons for e in comp.extras]
    fetched = ", ".join(f"l.{c} AS l_{c}, r.{c} AS r_{c}" for c in columns)
    jw = "".join(f", {JW}(l.{c}, r.{c}) AS jw_{c}" for c in sims)
    jw += "".join(f", {sql} AS {alias}" for alias, sql in extras)
    # The frequency of an agreed value, for the term-frequency adjustment of the best level.
    jw += "".join(
        f", greatest(l.{c.kind}_tf, r.{c.kind}_tf) AS tf_{c.kind}" for c in comparisons if c.tf
    )
    if "parent" in apart:
        jw += ", coalesce(l.parent = r.record_id OR r.parent = l.record_id, false) AS apart_parent"
        jw += f", {apart_sql() if 'places' in apart else 'false'} AS apart_place"
        jw += ", apart_parent OR apart_place AS apart"
    gammas = ",\n       ".join(f"{c.case()} AS g_{c.kind}" for c in comparisons)
    dropped = (
        [f"l_{c}, r_{c}" for c in columns] + [f"jw_{c}" for c in sims] + [a for a, _ in extras]
    )
    return f"""
SELECT * EXCLUDE ({", ".join(dropped)}),
       {gammas}
FROM (
    SELECT p.*, {fetched}{jw}
    FROM {pairs_table} p
    JOIN prepared l ON l.record_id = p.left_id
    JOIN prepared r ON r.record_id = p.right_id
)
"""
