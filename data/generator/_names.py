"""Names of companies and people, built vectorised, and the nicknames duplicates use."""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["FIRST", "LAST", "NICKNAMES", "INDUSTRIES", "LOOKALIKE_NEAR", "LOOKALIKE_SAME_STEM",
           "company_names", "person_names"]

_SYL = np.array(
    ["ac", "al", "an", "ar", "ba", "be", "bo", "ca", "ce", "co", "da", "de", "di", "do", "el", "en", "er", "fa", "fe", "fi", "fo", "ga", "ge", "go", "ha", "he", "in", "ja", "ka", "ke", "ko", "la", "le", "li", "lo", "lu", "ma", "me", "mi", "mo", "na", "ne", "no", "or", "pa", "pe", "pi", "po", "ra", "re", "ri", "ro", "sa", "se", "si", "so", "ta", "te", "ti", "to", "tra", "tri", "ul", "va", "ve", "vi", "vo", "xa", "ze", "zo"]
)  # fmt: skip
INDUSTRIES = [
    "Software", "Financial Services", "Healthcare", "Manufacturing", "Retail", "Energy",
    "Telecommunications", "Education", "Logistics", "Media", "Insurance", "Biotech",
]  # fmt: skip
# Descriptor words in company names; some imply the industry.
_DESCRIPTORS = {
    "": (34, None), "Technologies": (8, "Software"), "International": (6, None), "Systems": (6, None),
    "Solutions": (7, None), "Group": (5, None), "Industries": (4, "Manufacturing"),
    "Manufacturing": (3, "Manufacturing"), "Logistics": (3, "Logistics"), "Health": (4, "Healthcare"),
    "Capital": (3, "Financial Services"), "Media": (3, "Media"), "Labs": (4, "Biotech"),
    "Software": (4, "Software"), "Analytics": (3, "Software"), "Energy": (3, "Energy"),
    "Foods": (2, "Retail"), "Partners": (3, None), "Associates": (2, None), "Services": (3, None),
    "Networks": (3, "Telecommunications"),
}  # fmt: skip
_ACCENT = {  # where local names carry accents, one vowel of the stem gets one
    "France": ("e", "é"), "Germany": ("u", "ü"), "Sweden": ("o", "ö"),
    "Brazil": ("a", "ã"), "Mexico": ("o", "ó"), "Chile": ("i", "í"),
}  # fmt: skip
FIRST = np.array(
    ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "William", "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Anthony", "Margaret", "Mark", "Sandra", "Steven", "Ashley", "Andrew", "Kimberly", "Joshua", "Emily", "Kenneth", "Donna", "Kevin", "Michelle", "Brian", "Carol", "George", "Amanda", "Timothy", "Melissa", "Ronald", "Deborah", "Edward", "Stephanie", "Jason", "Rebecca", "Jeffrey", "Sharon", "Ryan", "Laura", "Jacob", "Cynthia", "Gary", "Kathleen", "Nicholas", "Amy", "Eric", "Angela", "Jonathan", "Shirley", "Stephen", "Anna", "Larry", "Brenda", "Justin", "Pamela", "Scott", "Emma", "Brandon", "Nicole", "Benjamin", "Helen", "Samuel", "Samantha", "Gregory", "Katherine", "Alexander", "Christine", "Frank", "Debra", "Patrick", "Rachel", "Raymond", "Carolyn", "Jack", "Janet", "Dennis", "Catherine", "Jerry", "Maria", "Tyler", "Heather", "Aaron", "Diane", "Jose", "Ruth", "Adam", "Julie", "Nathan", "Olivia", "Henry", "Joyce", "Douglas", "Virginia", "Zachary", "Victoria", "Peter", "Kelly", "Kyle", "Lauren", "Noah", "Christina", "Ethan", "Joan", "Jeremy", "Evelyn", "Walter", "Judith", "Christian", "Megan", "Keith", "Andrea", "Roger", "Cheryl", "Terry", "Hannah", "Austin", "Jacqueline", "Sean", "Martha", "Gerald", "Gloria", "Carl", "Teresa", "Harold", "Ann", "Dylan", "Sara", "Arthur", "Madison", "Lawrence", "Frances", "Jordan", "Kathryn", "Jesse", "Janice", "Bryan", "Jean", "Billy", "Abigail", "Bruce", "Alice", "Gabriel", "Judy", "Joe", "Sophia", "Logan", "Grace", "Alan", "Denise", "Juan", "Amber", "Albert", "Doris", "Willie", "Marilyn", "Elijah", "Danielle", "Wayne", "Beverly", "Randy", "Isabella", "Vincent", "Theresa", "Mason", "Diana", "Roy", "Natalie", "Ralph", "Brittany", "Bobby", "Charlotte", "Russell", "Marie", "Bradley", "Kayla", "Philip", "Alexis", "Eugene", "Lori", "Sven", "Ingrid", "Lars", "Astrid", "Pierre", "Amelie", "Hans", "Greta", "Jose", "Lucia", "Hiroshi", "Yuki", "Wei", "Mei", "Raj", "Priya", "Ahmed", "Fatima", "Kwame", "Ama", "Mateo", "Sofia", "Luca", "Giulia"]
)  # fmt: skip
LAST = np.array(
    ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Powell", "Jenkins", "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler", "Henderson", "Barnes", "Gonzales", "Fisher", "Vasquez", "Simmons", "Romero", "Jordan", "Patterson", "Alexander", "Hamilton", "Graham", "Reynolds", "Griffin", "Wallace", "Moreno", "West", "Cole", "Hayes", "Bryant", "Herrera", "Gibson", "Ellis", "Tran", "Medina", "Aguilar", "Stevens", "Murray", "Ford", "Castro", "Marshall", "Owens", "Harrison", "Fernandez", "McDonald", "Woods", "Washington", "Kennedy", "Wells", "Vargas", "Henry", "Chen", "Freeman", "Webb", "Tucker", "Guzman", "Burns", "Crawford", "Olson", "Simpson", "Porter", "Hunter", "Gordon", "Mendez", "Silva", "Shaw", "Snyder", "Mason", "Dixon", "Munoz", "Hunt", "Hicks", "Holmes", "Palmer", "Wagner", "Black", "Robertson", "Boyd", "Rose", "Stone", "Salazar", "Fox", "Warren", "Mills", "Meyer", "Rice", "Schmidt", "Garza", "Daniels", "Ferguson", "Nichols", "Stephens", "Soto", "Weaver", "Ryan", "Gardner", "Payne", "Grant", "Dunn", "Kelley", "Spencer", "Hawkins", "Arnold", "Pierce", "Hansen", "Peters", "Santos", "Hart", "Bradley", "Knight", "Elliott", "Muller", "Schneider", "Fischer", "Weber", "Dubois", "Lefevre", "Rossi", "Bianchi", "Sato", "Suzuki", "Wang", "Li", "Zhang", "Singh", "Kumar", "Haddad", "Mensah", "Okafor", "Novak", "Horvat", "Nowak", "Jensen", "Larsen", "Lindqvist"]
)  # fmt: skip
NICKNAMES = {
    "Robert": "Bob", "William": "Bill", "Elizabeth": "Liz", "Richard": "Rick", "James": "Jim",
    "Michael": "Mike", "Jennifer": "Jen", "Joseph": "Joe", "Thomas": "Tom", "Christopher": "Chris",
    "Daniel": "Dan", "Matthew": "Matt", "Anthony": "Tony", "Steven": "Steve", "Andrew": "Andy",
    "Joshua": "Josh", "Kenneth": "Ken", "Katherine": "Kate", "Patricia": "Pat", "Margaret": "Maggie",
    "Nicholas": "Nick", "Jonathan": "Jon", "Samuel": "Sam", "Alexander": "Alex", "Benjamin": "Ben",
    "Gregory": "Greg", "Timothy": "Tim", "Edward": "Ed", "Rebecca": "Becky", "Deborah": "Deb",
    "Stephanie": "Steph", "Kimberly": "Kim", "Jacqueline": "Jackie", "Victoria": "Vicky",
}  # fmt: skip


LOOKALIKE_SAME_STEM = 0.03  # share of companies named like another, unrelated one
LOOKALIKE_NEAR = 0.03  # share one syllable away from another's name


def company_names(
    rng: np.random.Generator, places: pl.DataFrame
) -> tuple[pl.DataFrame, np.ndarray]:
    """(frame of name, domain, industry, is "&" name) for each place, and the industry."""
    n = len(places)
    k = len(_SYL)
    width = 3 if n <= k**3 // 4 else 4
    codes = rng.choice(k**width, size=n, replace=False)  # distinct stems by construction
    # Look-alikes: unrelated companies whose names a matcher must keep apart. Some share
    # another company's stem (same name, another country or line of business), some
    # differ from one by a single syllable (Lataal / Lataol).
    look = rng.random(n)
    other = rng.integers(0, n, n)
    same_stem = look < LOOKALIKE_SAME_STEM
    codes[same_stem] = codes[other[same_stem]]
    near = (look >= LOOKALIKE_SAME_STEM) & (look < LOOKALIKE_SAME_STEM + LOOKALIKE_NEAR)
    codes[near] = (codes[other[near]] // k) * k + rng.integers(0, k, int(near.sum()))
    stem = np.full(n, "", dtype=object)
    for _ in range(width):
        stem = stem + _SYL[codes % k]
        codes //= k
    words = np.array(list(_DESCRIPTORS), dtype=object)
    w = np.array([v[0] for v in _DESCRIPTORS.values()], dtype=float)
    desc = words[rng.choice(len(words), size=n, p=w / w.sum())]
    implied = pl.Series(desc.astype(str)).replace_strict(
        {d: v[1] for d, v in _DESCRIPTORS.items()}, default=None, return_dtype=pl.String
    )
    industry = pl.Series(rng.choice(INDUSTRIES, size=n))
    partner = LAST[rng.integers(0, len(LAST), n)]
    joiner = rng.choice(["", " & ", " and "], size=n, p=[0.91, 0.065, 0.025])
    f = pl.DataFrame({"stem": stem.astype(str), "desc": desc.astype(str), "joiner": joiner,
                      "partner": partner, "country": places["country"], "legal": places["legal"],
                      "tld": places["tld"]})  # fmt: skip
    display = pl.col("stem").str.to_titlecase()
    for country, (plain, accented) in _ACCENT.items():
        display = (
            pl.when((pl.col("country") == country) & pl.Series(rng.random(n) < 0.3))
            .then(display.str.replace(plain, accented, literal=True))
            .otherwise(display)
        )
    with_partner = (
        pl.when(pl.col("joiner") != "")
        .then(pl.concat_str([display, pl.col("joiner"), pl.col("partner")]))
        .otherwise(display)
    )
    name = pl.concat_str([with_partner, pl.col("desc"), pl.col("legal")], separator=" ")
    f = f.with_columns(
        name=name.str.replace_all(r"\s+", " ").str.strip_chars(),
        domain=pl.concat_str([
            pl.col("stem"),
            pl.when(pl.col("joiner") != "").then(pl.col("partner").str.to_lowercase()).otherwise(pl.lit("")),
            pl.col("tld"),
        ]),
        industry=pl.coalesce(implied, industry),
    )  # fmt: skip
    # A domain belongs to one company: a look-alike whose plain domain is taken adds a word.
    taken = f.select(pl.col("domain").is_first_distinct().not_()).to_series()
    f = f.with_columns(
        domain=pl.when(taken)
        .then(pl.concat_str([pl.col("stem"), pl.col("desc").str.to_lowercase().str.replace_all(r"[^a-z]", ""),
                             pl.lit(pl.Series(rng.integers(1, 99, n)).cast(pl.String)), pl.col("tld")]))
        .otherwise("domain")
    )  # fmt: skip
    return f.select("name", "domain", "industry"), desc


def person_names(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return FIRST[rng.integers(0, len(FIRST), n)], LAST[rng.integers(0, len(LAST), n)]
