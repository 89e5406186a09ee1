"""Vectorised names: companies, people, domains, and the variants real duplicates have."""

from __future__ import annotations

import numpy as np

__all__ = ["company_names", "person_names", "name_variants", "NICKNAMES"]

_SYL = np.array(
    ["ac", "al", "an", "ar", "ba", "be", "bo", "ca", "ce", "co", "da", "de", "di", "do", "el", "en", "er", "fa", "fe", "fi", "fo", "ga", "ge", "go", "ha", "he", "in", "ja", "ka", "ke", "ko", "la", "le", "li", "lo", "lu", "ma", "me", "mi", "mo", "na", "ne", "no", "or", "pa", "pe", "pi", "po", "ra", "re", "ri", "ro", "sa", "se", "si", "so", "ta", "te", "ti", "to", "tra", "tri", "ul", "va", "ve", "vi", "vo", "xa", "ze", "zo"]
)  # fmt: skip
_SUFFIX = np.array(["Inc", "Corp", "LLC", "Ltd", "Group", "Technologies", "Systems", "Solutions",
                    "Holdings", "GmbH", "S.A.", "B.V.", "plc", "Partners", "Labs", "Industries"])  # fmt: skip
_SUFFIX_P = np.array([14, 12, 9, 6, 6, 8, 7, 8, 4, 5, 3, 3, 3, 4, 4, 4], dtype=float)
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


def company_names(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n distinct (display name, domain stem) pairs, distinct by construction."""
    k = len(_SYL)
    width = 3 if n <= k**3 // 4 else 4
    codes = rng.choice(k**width, size=n, replace=False)
    stem = np.full(n, "", dtype=object)
    for _ in range(width):
        stem = stem + _SYL[codes % k]
        codes //= k
    stem = stem.astype(str)
    display = np.char.capitalize(stem)
    suffix = rng.choice(_SUFFIX, size=n, p=_SUFFIX_P / _SUFFIX_P.sum())
    return np.char.add(np.char.add(display, " "), suffix), stem


def person_names(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.choice(FIRST, size=n), rng.choice(LAST, size=n)


_SWAP = {"Inc": "Incorporated", "Corp": "Corporation", "LLC": "L.L.C.", "Ltd": "Limited",
         "Technologies": "Tech", "Systems": "Sys", "Solutions": "Soln", "Industries": "Ind.",
         "Group": "Grp", "Holdings": "Hldgs", "GmbH": "G.m.b.H.", "S.A.": "SA", "B.V.": "BV",
         "plc": "PLC", "Partners": "& Partners", "Labs": "Laboratories"}  # fmt: skip


def name_variants(
    rng: np.random.Generator, names: np.ndarray, domains: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A realistic variant of each company name, and which kind of variant it is."""
    kinds = rng.choice(
        ["suffix_swap", "upper_punct", "suffix_dropped", "typo", "domain_as_name", "and_amp", "suffix_added"],
        size=len(names), p=[0.26, 0.14, 0.16, 0.16, 0.08, 0.06, 0.14],
    )  # fmt: skip
    out = []
    for name, domain, kind in zip(names, domains, kinds, strict=True):
        base, _, suffix = name.rpartition(" ")
        if kind == "suffix_swap":
            v = f"{base} {_SWAP.get(suffix, suffix + '.')}"
        elif kind == "upper_punct":
            v = f"{base.upper()} {suffix}."
        elif kind == "suffix_dropped":
            v = base
        elif kind == "typo":  # two neighbouring letters swapped
            i = int(rng.integers(1, len(base) - 1))
            v = f"{base[:i]}{base[i + 1]}{base[i]}{base[i + 2 :]} {suffix}"
        elif kind == "domain_as_name":
            v = domain
        elif kind == "and_amp":
            v = f"{base} & Co"
        else:
            v = (
                f"{base} {suffix}, Inc."
                if suffix not in ("Inc", "LLC")
                else f"{base} Corp. {suffix}"
            )
        out.append(v)
    return np.array(out, dtype=str), kinds
