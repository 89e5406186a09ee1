"""Normalised comparison columns for each kind of field a record can carry.

Every function is a polars expression over one column, so preparing a million records
is vectorised. What is normalised, and why:

- organisation names: accents, case, punctuation, "&"/"and", legal forms in many
  languages (data.normalize.company_key) and the usual business abbreviations
  (International/Intl, Technologies/Tech ...), so "ACME Intl. Corp" = "Acme International";
- person names: folded, first name mapped through common nicknames (Bob -> robert);
- domains from websites or e-mail addresses (free-mail domains are not company domains);
- phones as digits, compared on their last digits (country codes and trunk zeros vary);
- addresses with street-type words abbreviated (Street -> st) and the house number apart;
- a parent id (``parent``), not compared: a record and its parent are never one entity.
"""

from __future__ import annotations

import polars as pl

from revstack.data.identity._places import name_places
from revstack.data.normalize import (
    LEGAL_SUFFIXES,
    company_key,
    domain_from_email,
    domain_from_website,
)

__all__ = ["KINDS", "NICKNAMES", "address_parts", "initials", "prepare", "person_parts"]

# The kinds a record's fields can be given as (`revstack dedupe --field KIND=COL`).
KINDS = ("name", "person", "address", "city", "zip", "phone", "email", "domain", "parent")

# Business words and their usual abbreviations, mapped to one spelling: the long one, so
# that a misspelt long word ("Internacionale", "Technolgies") stays close to it, as it
# would not to "intl" or "tech" (Fortune 500 + typos, tuning half: F1 0.865 -> 0.882).
_BUSINESS_WORDS = {
    "intl": "international",
    # The same words in the other languages of Europe's registers ("Shell Internationale
    # Research Maatschappij", "Schlumberger Technologie").
    "internationale": "international",
    "internationaal": "international",
    "internacional": "international",
    "internazionale": "international",
    "internatl": "international",
    "internat": "international",
    "technologie": "technology",
    "technologia": "technology",
    "industrie": "industries",
    "industria": "industries",
    "technologies": "technology",
    "tech": "technology",
    "sys": "systems",
    "soln": "solutions",
    "mfg": "manufacturing",
    "inds": "industries",
    "assoc": "associates",
    "svcs": "services",
    "service": "services",
    "labs": "laboratories",
    "laboratory": "laboratories",
    "group": "grp",
    "nets": "networks",
    "ptnrs": "partners",
    "analytix": "analytics",
    "assn": "association",
    "delicatessen": "deli",
    "company": "co",
    "bros": "brothers",
    "natl": "national",
    "univ": "university",
    "ctr": "center",
    "centre": "center",
    "dev": "development",
    "mgmt": "management",
    "saint": "st",
    "mount": "mt",
    "dept": "department",
}

# Common English given names and the nicknames people are keyed in under.
NICKNAMES = {
    "robert": ["bob", "rob", "bobby", "robbie", "bert"],
    "william": ["bill", "will", "billy", "liam"],
    "elizabeth": ["liz", "beth", "betty", "eliza", "lizzie", "libby"],
    "richard": ["rick", "dick", "rich", "ricky"],
    "james": ["jim", "jimmy", "jamie"],
    "john": ["jack", "johnny"],
    "michael": ["mike", "mick", "mikey"],
    "joseph": ["joe", "joey"],
    "thomas": ["tom", "tommy"],
    "charles": ["charlie", "chuck", "chaz"],
    "christopher": ["chris", "kit"],
    "daniel": ["dan", "danny"],
    "matthew": ["matt"],
    "anthony": ["tony"],
    "donald": ["don", "donnie"],
    "steven": ["steve"],
    "stephen": ["steve"],
    "andrew": ["andy", "drew"],
    "joshua": ["josh"],
    "kenneth": ["ken", "kenny"],
    "edward": ["ed", "eddie", "ted", "ned"],
    "timothy": ["tim", "timmy"],
    "jeffrey": ["jeff"],
    "ronald": ["ron", "ronnie"],
    "gregory": ["greg"],
    "nicholas": ["nick", "nicky"],
    "jonathan": ["jon", "jonny"],
    "samuel": ["sam", "sammy"],
    "alexander": ["alex", "sasha", "xander"],
    "benjamin": ["ben", "benny"],
    "patrick": ["pat", "paddy"],
    "peter": ["pete"],
    "frederick": ["fred", "freddie"],
    "lawrence": ["larry"],
    "raymond": ["ray"],
    "gerald": ["jerry"],
    "douglas": ["doug"],
    "zachary": ["zach", "zack"],
    "nathaniel": ["nate", "nat"],
    "nathan": ["nate"],
    "philip": ["phil"],
    "phillip": ["phil"],
    "vincent": ["vince", "vinny"],
    "margaret": ["maggie", "meg", "peggy", "marge"],
    "katherine": ["kate", "kathy", "katie", "kat"],
    "catherine": ["cathy", "kate", "cat"],
    "jennifer": ["jen", "jenny"],
    "jessica": ["jess", "jessie"],
    "rebecca": ["becky", "becca"],
    "susan": ["sue", "suzy"],
    "deborah": ["deb", "debbie"],
    "patricia": ["pat", "patty", "trish"],
    "barbara": ["barb"],
    "kimberly": ["kim"],
    "victoria": ["vicky", "tori"],
    "alexandra": ["alex", "lexi", "sasha"],
    "samantha": ["sam"],
    "christine": ["chris", "tina"],
    "christina": ["chris", "tina"],
    "pamela": ["pam"],
    "abigail": ["abby"],
    "amanda": ["mandy"],
    "cynthia": ["cindy"],
    "dorothy": ["dot", "dottie"],
    "judith": ["judy"],
    "teresa": ["terry", "tess"],
    "theresa": ["terry", "tess"],
    "angela": ["angie"],
    "melissa": ["mel", "missy"],
    "stephanie": ["steph"],
    "jacqueline": ["jackie"],
    "gabriel": ["gabe"],
    "gabriela": ["gabby"],
    "isabel": ["izzy", "bel"],
    "eleanor": ["ellie", "nora"],
    "frances": ["fran"],
    "francis": ["frank"],
    "franklin": ["frank"],
    "harold": ["harry", "hal"],
    "henry": ["hank", "harry"],
    "leonard": ["leo", "len"],
    "louis": ["lou"],
    "mohammed": ["mohamed", "muhammad"],
    "ivan": ["vanya"],
    "dmitri": ["dima"],
    "giuseppe": ["beppe", "pino"],
    "francisco": ["paco", "pancho"],
    "jose": ["pepe"],
    "guillermo": ["memo"],
    "hans": ["hansi"],
    "wolfgang": ["wolf"],
}
_NICK_TO_NAME = {nick: name for name, nicks in NICKNAMES.items() for nick in nicks}

_STREET_WORDS = {
    "street": "st",
    "str": "st",
    "strasse": "st",
    "avenue": "ave",
    "av": "ave",
    "road": "rd",
    "boulevard": "blvd",
    "drive": "dr",
    "lane": "ln",
    "court": "ct",
    "place": "pl",
    "square": "sq",
    "highway": "hwy",
    "parkway": "pkwy",
    "suite": "ste",
    "floor": "fl",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "building": "bldg",
    "blv": "blvd",
    "bl": "blvd",
    "terrace": "ter",
    "circle": "cir",
    "plaza": "plz",
    "point": "pt",
    "center": "ctr",
    "centre": "ctr",
    "expressway": "expy",
    "freeway": "fwy",
    "mount": "mt",
    "saint": "st",
}

# Unit, suite, floor and room parts of an address say where inside a building, not which
# building: "100 Main St Suite 200" and "100 Main St #5" are one address.
_UNIT = (
    r"\b(?:ste|suite|unit|apt|apartment|fl|floor|rm|room|bldg|dept|po box|box)\s*[a-z]?\d+[a-z]?\b"
)


def _fold(expr: pl.Expr) -> pl.Expr:
    return (
        expr.cast(pl.String)
        .str.normalize("NFKD")
        .str.replace_all(r"\p{M}", "")
        .str.to_lowercase()
        .str.replace_all(r"&", " and ")
        .str.replace_all(r"[^a-z0-9]+", " ")
        .str.strip_chars()
    )


def _words(expr: pl.Expr, mapping: dict[str, str]) -> pl.Expr:
    """Replace whole words through ``mapping`` (on folded text: words are [a-z0-9]+ with
    single spaces between), in one pass over the words rather than a regex per word."""
    words = expr.str.split(" ").list.eval(pl.element().replace(mapping))
    return words.list.join(" ").replace("", None)


# A name keyed in as the company's web address ("Acme.co.uk", "www.acme.com"): its name
# is the address's first label.
_HOSTNAME = r"(?i)^\s*(?:https?://)?(?:www\.)?([a-z0-9][a-z0-9-]*)(?:\.[a-z]{2,6}){1,2}/?\s*$"


def _form(suffix: str) -> str:
    # "b.v.", "b. v.", "bv": a short form's letters may be dotted and spaced.
    return r"\.?\s?".join(suffix) if len(suffix) <= 3 else suffix


# A legal form followed by a comma or semicolon, or by one word in brackets that ends the
# name: what follows is the seat or the country, not the name ("ASML Netherlands B.V.,
# Veldhoven", "Unilever N.V. (NL)", "DSM N.V., te Heerlen"); registers and patent
# offices write them so. Longer brackets stay: "Firman House II SA (21st Century CLC)".
_SEAT = (
    r"(?i)\b((?:"
    + "|".join(_form(s) for s in sorted(LEGAL_SUFFIXES, key=len, reverse=True) if s != "the")
    + r")\.?)\s*(?:[,;].*|\(\s*\w+\s*\)\s*)$"
)


# Legal forms written out, as the abbreviation company_key drops ("Unilever Naamloze
# Vennootschap" is "Unilever N.V.", "Schering Aktiengesellschaft" is "Schering AG").
_SPELT_FORMS = (
    r"(?i)\b(?:naamloze|besloten)\s+vennootschap\b|\baktiengesellschaft\b"
    r"|\bgesellschaft\s+mit\s+beschr\S*nkter\s+haftung\b|\bsoci\S+\s+anonym[ea]\b"
    r"|\bkabushiki\s+kaisha\b"
    # Russia's and its neighbours' forms, written out in English or transliterated ("Open
    # Joint Stock Company Belarusian Potash Company" is "OJSC Belarusian Potash Company").
    r"|\b(?:(?:open|closed|public|private|publichn\w*)\s+)?joint[\s-]+stock\s+company\b"
    r"|\blimited\s+liability\s+company\b"
    r"|\b(?:(?:otkryt|zakryt|publichn|chastn)\w*\s+)?aktsionern\w*\s+obshchestvo\b"
    r"|\bobshchestvo\s+s\s+ogranichenn\w*\s+otvetstvennost\w*\b"
)
# The same forms' abbreviations, wherever they stand ("OOO Romashka", "Romashka, OAO",
# "JSC Krayinvestbank"); Bulgaria's EOOD / OOD, the Emirates' free-zone FZE / FZCO, and
# "y Cia." beside a Latin-American form. Letters no name is made of ("AO" is A. O. Smith).
_FORM_WORDS = (
    r"(?i)\b(?:ooo|oao|zao|pao|ojsc|cjsc|pjsc|jsc|eood|ood|fze|fzco|fzc|fz\s*llc)\b"
    r"|\b(?:y|e)\s+c[ií]a\b\.?"
)
# A form that some countries write first: "N.V. Nutricia", "N V Philips", "B.V. Wavin".
# Only when its letters are dotted or spaced: "NV Energy" and "AB InBev" are names, and
# "AB SKF" keeps its "ab" rather than lose a word of every name that starts so.
_LEADING_FORM = r"(?i)^\s*(?:n\.\s*v\.?|n\s+v|b\.\s*v\.?|b\s+v)\s+(\S)"


def _letters_joined(folded: pl.Expr) -> pl.Expr:
    """Two or more single letters in a row are one word: an acronym keyed in spaced or
    dotted ("D S M IP Assets", "E.I. du Pont") is the acronym ("dsm ip assets", "ei du
    pont", "I B M" -> "ibm"). Each pass joins neighbouring runs two by two (a marked
    letter stays marked when joined), so four passes join runs of up to sixteen letters."""
    marked = folded.str.replace_all(r"\b([a-z])\b", "$1\x00")
    # company_key has already joined the last two letters of a name ("I B M" -> "i bm")
    marked = marked.str.replace(r"(\x00 [a-z]{2})$", "$1\x00")
    for _ in range(4):
        marked = marked.str.replace_all(r"\x00 ([a-z]+)\x00", "$1\x00")
    return marked.str.replace_all("\x00", "")


def org_key(expr: pl.Expr) -> pl.Expr:
    """An organisation name folded, its legal forms and seat gone, its words as written."""
    # A possessive goes, other apostrophes join: "Art's Deli" -> "art deli", "O'Hare" ->
    # "ohare", never "art s deli".
    return _letters_joined(
        company_key(
            expr.cast(pl.String)
            .str.replace(_HOSTNAME, "$1")
            .str.replace(_LEADING_FORM, "$1")
            .str.replace(_SEAT, "$1")
            .str.replace_all(_SPELT_FORMS, " ")
            .str.replace_all(_FORM_WORDS, " ")
            .str.replace_all(r"(?i)['\u2019`]s\b", "")
            .str.replace_all(r"['\u2019`]", "")
        )
    )


def org_name(expr: pl.Expr) -> pl.Expr:
    """``org_key`` with business words in one spelling (Intl -> international)."""
    return _words(org_key(expr), _BUSINESS_WORDS)


def initials(name: pl.Expr) -> pl.Expr:
    """First letters of a name's words when it has two or more ('international business
    machines' -> 'ibm'), to compare with another name written as its acronym."""
    words = name.str.split(" ")
    return (
        pl.when(words.list.len() >= 2)
        .then(words.list.eval(pl.element().str.slice(0, 1)).list.join(""))
        .otherwise(None)
    )


def address_parts(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(address, house number, street) from a free-text street address: folded, street
    words abbreviated (Boulevard, Blv. -> blvd), unit / suite / floor dropped, the
    first number apart from the street it is on."""
    raw = expr.cast(pl.String).str.replace_all(r"#\s*[A-Za-z]?\d+[A-Za-z]?", " ")
    a = _words(_fold(raw), _STREET_WORDS)
    a = a.str.replace_all(_UNIT, " ").str.replace_all(r"\s+", " ").str.strip_chars()
    a = a.replace("", None)
    number = a.str.extract(r"\b(\d+[a-z]?)\b", 1)
    street = (
        a.str.replace(r"\b\d+[a-z]?\b", "")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .replace("", None)
    )
    return a, number, street


def person_folded(expr: pl.Expr) -> pl.Expr:
    """A full name folded, titles and suffixes dropped: 'Dr. Robert  SMITH Jr' -> 'robert smith'."""
    return (
        _fold(expr)
        .str.replace_all(r"\b(?:mr|mrs|ms|dr|prof|jr|sr|ii|iii)\b", "")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .replace("", None)
    )


def person_parts(expr: pl.Expr, *, folded: bool = False) -> tuple[pl.Expr, pl.Expr]:
    """(first name as canonical given name, last name) from a full-name column (already
    ``person_folded`` when ``folded``)."""
    name = expr if folded else person_folded(expr)
    # The first and the last word of the folded name; a one-word name has no last name.
    first = name.str.extract(r"^(\S+)", 1).replace(_NICK_TO_NAME)
    last = pl.when(name.str.contains(" ")).then(name.str.extract(r"(\S+)$", 1)).otherwise(None)
    return first, last


def _digits(expr: pl.Expr) -> pl.Expr:
    d = expr.cast(pl.String).str.replace_all(r"\D", "")
    return pl.when(d.str.len_chars() >= 7).then(d).otherwise(None)


def prepare(
    records: pl.DataFrame, fields: dict[str, str], *, name_type: str = "org"
) -> pl.DataFrame:
    """``records`` with ``record_id`` and the columns named in ``fields`` (kind -> column),
    as a frame of normalised comparison columns (one or more per kind present).

    ``name_type`` says whether the ``name`` kind holds organisations or people.
    """
    out: list[pl.Expr] = [pl.col("record_id").cast(pl.String)]
    # Fold person names once, in a column of their own, before splitting them.
    people = {
        k: c for k, c in fields.items() if k == "person" or (k == "name" and name_type != "org")
    }
    # One lazy plan, run by the streaming engine: each expression is row by row, and
    # the engine parts the rows between the cores (an eager frame runs one expression
    # on one core), the same values in the same order.
    lazy = records.lazy().with_columns(
        [person_folded(pl.col(c)).alias(f"__folded_{k}") for k, c in people.items()]
    )
    # Normalise an organisation name once: five columns derive from it.
    orgs = {
        k: c for k, c in fields.items() if k == "name_org" or (k == "name" and name_type == "org")
    }
    lazy = lazy.with_columns(
        [org_key(pl.col(c)).alias(f"__orgkey_{k}") for k, c in orgs.items()]
    ).with_columns(
        [_words(pl.col(f"__orgkey_{k}"), _BUSINESS_WORDS).alias(f"__org_{k}") for k in orgs]
    )
    # The same for an address: three columns.
    if "address" in fields:
        lazy = lazy.with_columns(
            [
                e.alias(f"__address_{i}")
                for i, e in enumerate(address_parts(pl.col(fields["address"])))
            ]
        )
    for kind, column in fields.items():
        c = pl.col(column)
        if kind == "name" and name_type == "org" or kind == "name_org":
            n = pl.col(f"__org_{kind}")
            out += [
                n.alias("name"),
                n.str.split(" ").list.first().alias("name_first"),
                n.str.split(" ").list.sort().list.join(" ").alias("name_sorted"),
                n.str.replace_all(" ", "").alias("name_compact"),
                # Run together as written, before the business words' spelling: "Storage
                # Technologies" is "StorageTechnologies" keyed without its space.
                pl.col(f"__orgkey_{kind}").str.replace_all(" ", "").alias("name_glued"),
                initials(n).alias("name_initials"),
                name_places(n).alias("name_places"),
            ]
        elif kind in ("name", "person"):
            first, last = person_parts(pl.col(f"__folded_{kind}"), folded=True)
            prefix = "name" if kind == "name" else "person"
            out += [
                first.alias(f"{prefix}_given"),
                last.alias(f"{prefix}_family"),
                pl.concat_str([first, last], separator=" ").alias(prefix),
            ]
        elif kind == "address":
            a, number, street = (pl.col(f"__address_{i}") for i in range(3))
            out += [a.alias("address"), number.alias("address_no"), street.alias("address_street")]
        elif kind == "city":
            out.append(_fold(c).replace("", None).alias("city"))
        elif kind == "zip":
            z = c.cast(pl.String).str.to_uppercase().str.replace_all(r"[^0-9A-Z]", "")
            out.append(z.str.slice(0, 5).replace("", None).alias("zip"))
        elif kind == "phone":
            out.append(_digits(c).alias("phone"))
        elif kind == "email":
            e = c.cast(pl.String).str.to_lowercase().str.strip_chars()
            e = pl.when(e.str.contains(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")).then(e).otherwise(None)
            out += [e.alias("email"), e.str.extract(r"^([^@]+)@", 1).alias("email_local")]
        elif kind == "domain":
            raw = c.cast(pl.String)
            d = (
                pl.when(raw.str.contains("@"))
                .then(domain_from_email(raw))
                .otherwise(domain_from_website(raw))
            )
            out.append(d.alias("domain"))
        elif kind == "parent":
            # Not compared: the id of the record's parent in the list's own hierarchy (a
            # CRM's parent account), which makes the two different entities.
            p = c.cast(pl.String).str.strip_chars()
            out.append(pl.when(p != "").then(p).alias("parent"))
        else:
            raise ValueError(f"unknown field kind {kind!r}; kinds are {', '.join(KINDS)}")
    return lazy.select(out).collect(engine="streaming")
