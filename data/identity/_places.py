"""The countries and regions an organisation's name carries: "Siemens USA", "Acme UK",
"Unilever Deutschland", "Oracle EMEA".

A group's national companies are often named after it with their country, share its
website and sometimes its switchboard, and are their own legal entities: a CRM keeps
them as accounts of their own. Names that place two records in different countries or
regions, where otherwise one name holds the other ("acme" / "acme germany", "acme uk" /
"acme germany"), are kept apart (``apart_sql``; docs/identity.md, Places in names).

Only country and region names count, not adjectives: "American Express" and "Deutsche
Bank" name no place. Aliases fold to one name ("usa", "u s a", "united states of
america" -> "united states"), so "Acme USA" and "Acme United States" agree.
"""

from __future__ import annotations

import polars as pl

__all__ = ["PLACES", "PLACE_WORDS", "apart_sql", "name_places"]

# Folded as names are (lowercase ASCII words, single spaces); alias -> the place's name.
_ALIASES = {
    "usa": "united states",
    "u s a": "united states",
    "us": "united states",
    "u s": "united states",
    "united states of america": "united states",
    "america": "united states",
    "uk": "united kingdom",
    "u k": "united kingdom",
    "great britain": "united kingdom",
    "britain": "united kingdom",
    "deutschland": "germany",
    "espana": "spain",
    "italia": "italy",
    "nederland": "netherlands",
    "the netherlands": "netherlands",
    "holland": "netherlands",
    "schweiz": "switzerland",
    "suisse": "switzerland",
    "svizzera": "switzerland",
    "osterreich": "austria",
    "oesterreich": "austria",
    "brasil": "brazil",
    "belgique": "belgium",
    "belgie": "belgium",
    "polska": "poland",
    "sverige": "sweden",
    "norge": "norway",
    "danmark": "denmark",
    "suomi": "finland",
    "nippon": "japan",
    "prc": "china",
    "uae": "united arab emirates",
    "ksa": "saudi arabia",
    "korea": "south korea",
    "republic of korea": "south korea",
    "czechia": "czech republic",
    "eire": "ireland",
    "asia pacific": "apac",
    "asiapac": "apac",
    "latin america": "latam",
    "nordics": "nordic",
}
_COUNTRIES = [
    "argentina",
    "australia",
    "austria",
    "bangladesh",
    "belgium",
    "bolivia",
    "brazil",
    "bulgaria",
    "canada",
    "chile",
    "china",
    "colombia",
    "croatia",
    "cyprus",
    "denmark",
    "ecuador",
    "egypt",
    "estonia",
    "finland",
    "france",
    "germany",
    "ghana",
    "greece",
    "hungary",
    "iceland",
    "india",
    "indonesia",
    "ireland",
    "israel",
    "italy",
    "japan",
    "jordan",
    "kenya",
    "kuwait",
    "latvia",
    "lithuania",
    "luxembourg",
    "malaysia",
    "malta",
    "mexico",
    "morocco",
    "nigeria",
    "norway",
    "pakistan",
    "panama",
    "paraguay",
    "peru",
    "philippines",
    "poland",
    "portugal",
    "qatar",
    "romania",
    "russia",
    "serbia",
    "singapore",
    "slovakia",
    "slovenia",
    "spain",
    "sweden",
    "switzerland",
    "taiwan",
    "thailand",
    "tunisia",
    "turkey",
    "ukraine",
    "uruguay",
    "venezuela",
    "vietnam",
] + [
    "costa rica",
    "czech republic",
    "dominican republic",
    "el salvador",
    "hong kong",
    "new zealand",
    "saudi arabia",
    "south africa",
    "south korea",
    "sri lanka",
    "united arab emirates",
    "united kingdom",
    "united states",
]
_REGIONS = [
    "apac",
    "asia",
    "benelux",
    "dach",
    "emea",
    "europe",
    "latam",
    "middle east",
    "nordic",
    "north america",
    "americas",
]
PLACES: dict[str, str] = {p: p for p in (*_COUNTRIES, *_REGIONS)} | _ALIASES
# The places of one word: two of them spelt alike are still two places ("austria" /
# "australia"): the name comparison must not read one as the other mistyped.
PLACE_WORDS: tuple[str, ...] = tuple(sorted(p for p in PLACES if " " not in p))

# Longest first, so "united states of america" is read before "united states" and "us".
_PATTERN = (
    r"\b(?:"
    + "|".join(p.replace(" ", r"\s") for p in sorted(PLACES, key=len, reverse=True))
    + r")\b"
)


def name_places(name: pl.Expr) -> pl.Expr:
    """The places a folded organisation name carries, by their names, sorted and distinct
    (an empty list when it names none)."""
    return (
        name.str.extract_all(_PATTERN)
        .list.eval(pl.element().replace_strict(PLACES, default=None))
        .list.drop_nulls()
        .list.unique()
        .list.sort()
    )


def apart_sql(left: str = "l", right: str = "r") -> str:
    """SQL over two prepared records (``name``, ``name_places``): their names place them
    in different countries or regions, and either both name a place or one name's words
    are all in the other's ("acme" / "acme germany"). An acronym ("jal" / "japan
    airlines") or a different name ("bank of america" / "bofa") is not this case."""
    lw, rw = (f"string_split({s}.name, ' ')" for s in (left, right))
    return (
        f"coalesce({left}.name_places <> {right}.name_places AND ("
        f"(len({left}.name_places) > 0 AND len({right}.name_places) > 0)"
        f" OR list_has_all({rw}, {lw}) OR list_has_all({lw}, {rw})), false)"
    )
