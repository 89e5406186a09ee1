"""Identity resolution: which records are one company or one person.

Normalise (``prepare``), block, compare field by field, weigh the evidence with a
Fellegi-Sunter model estimated from the data, and cluster without chaining. Works on
any table: the hygiene agent runs it on accounts and contacts, ``revstack dedupe`` on
any CSV. A resolution can be stored and a later one redo only what changed
(``resolve_incremental``). See docs/identity.md.
"""

from revstack.data.identity._compare import agree_groups
from revstack.data.identity._file import dedupe_file, parse_fields, read_records
from revstack.data.identity._golden import GOLDEN_FIELDS, SOURCE_TRUST, golden_records
from revstack.data.identity._incremental import changes, resolve_incremental
from revstack.data.identity._labels import review_pairs
from revstack.data.identity._model import FellegiSunter
from revstack.data.identity._prepare import KINDS, prepare
from revstack.data.identity._resolve import Resolution, StoredResolution, fingerprints, resolve
from revstack.data.identity._score import pairwise_scores

__all__ = [
    "GOLDEN_FIELDS",
    "KINDS",
    "SOURCE_TRUST",
    "FellegiSunter",
    "Resolution",
    "StoredResolution",
    "agree_groups",
    "changes",
    "dedupe_file",
    "fingerprints",
    "golden_records",
    "pairwise_scores",
    "parse_fields",
    "prepare",
    "read_records",
    "resolve",
    "resolve_incremental",
    "review_pairs",
]
