"""How well the hygiene agent does, against the generator's truth where there is one.

- duplicates: pairwise precision / recall / F1 of the resolver's latest clusters
  (ops.identity_clusters) against truth.entities, accounts and contacts apart; and the
  share of merge proposals that truth confirms;
- enrichment: the share of proposed values that match the true firmographics, by field
  and by what happened to them (applied automatically or queued);
- defects found: per injected class, how many the agent's proposals and flags caught
  (recall), and where every proposal of a kind claims that defect (missing fields,
  phantoms, corrections), how many are about a true one (precision). Merge precision is
  under duplicates; stage moves have no precision here (metrics/verdicts.py judges
  each, right only on an injected stage violation).
On a real import (no truth) it reports what the agent proposed and what people decided.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from revstack.data.identity import pairwise_scores
from revstack.data.warehouse import frame, scalar
from revstack.metrics.remembered import remembered
from revstack.metrics.verdicts import ENRICH_VERDICTS, MERGE_VERDICTS

__all__ = ["REVIEW_FIELDS", "defects_found", "pairs_to_review", "report"]

_HAS_TRUTH = "SELECT count(*) FROM truth.entities"
_LATEST_RUN = """
SELECT max(run_id) FROM ops.runs WHERE agent = 'crm_hygiene' AND status = 'succeeded'
  AND run_id IN (SELECT run_id FROM ops.identity_clusters)
"""
_CLUSTERS = """
SELECT e.record_id, coalesce(c.cluster_id, e.record_id) AS cluster_id, e.true_entity_id AS entity_id
FROM truth.entities e
LEFT JOIN (SELECT * FROM ops.identity_clusters WHERE run_id = $run) c
  ON c.object_type = e.object_type AND c.record_id = e.record_id
WHERE e.object_type = $kind
"""
# Per defect class: the defects' keys, and the keys of the proposals that would catch
# them (a flag names its record's blank fields; a duplicate is caught by a merge that
# maps it, or maps its original onto it).
_DEFECT_KEYS = "SELECT DISTINCT object_type, record_id, coalesce(field, '') AS field FROM truth.defects WHERE defect_class = $cls"
_PROPOSAL_KEYS = {
    "missing_required_field": """
        SELECT object_type, record_id, unnest(CAST(new_value -> '$.missing' AS VARCHAR[])) AS field
        FROM ops.proposals WHERE agent = 'crm_hygiene' AND action_type = 'flag_missing_field'""",
    "stage_violation": """
        SELECT 'opportunities' AS object_type, record_id, 'stage' AS field FROM ops.proposals
        WHERE agent = 'crm_hygiene' AND action_type = 'move_stage'
        UNION ALL
        SELECT 'opportunities', record_id, 'stage' FROM ops.proposals
        WHERE agent = 'crm_hygiene' AND action_type = 'flag_missing_field' AND object_type = 'opportunities'""",
    "phantom_deal": """
        SELECT 'opportunities' AS object_type, record_id, '' AS field FROM ops.proposals
        WHERE agent = 'crm_hygiene' AND action_type = 'close_phantom_deal'""",
    "wrong_firmographics": """
        SELECT 'accounts' AS object_type, record_id, field FROM ops.proposals
        WHERE agent = 'crm_hygiene' AND action_type = 'correct_field'""",
}
for _kind in ("accounts", "contacts"):
    _PROPOSAL_KEYS[f"duplicate_{_kind[:-1]}"] = f"""
        SELECT '{_kind}' AS object_type, split_part(record_id, ':', 2) AS record_id, '' AS field
        FROM ops.proposals WHERE agent = 'crm_hygiene' AND action_type = 'merge_{_kind}'
        UNION ALL
        SELECT '{_kind}', new_value ->> '$', '' FROM ops.proposals
        WHERE agent = 'crm_hygiene' AND action_type = 'merge_{_kind}'"""
# Classes whose proposals are all meant to be about a defect of that class (precision).
_PRECISION_OF = {"missing_required_field", "phantom_deal", "wrong_firmographics"}
_DECISIONS = """
SELECT action_type, status, count(*) AS n FROM ops.proposals WHERE agent = 'crm_hygiene'
GROUP BY ALL ORDER BY ALL
"""


def _share(df: pl.DataFrame, by: list[str]) -> list[dict[str, Any]]:
    return (
        df.group_by(by)
        .agg(
            proposals=pl.len(),
            correct=pl.col("correct").sum(),
            accuracy=pl.col("correct").mean().round(4),
        )
        .sort(by)
        .to_dicts()
    )


_STATUS = """
SELECT proposal_id, status FROM ops.proposals
WHERE agent = 'crm_hygiene' AND action_type IN ('enrich_empty_field', 'correct_field')
"""


def report(con: duckdb.DuckDBPyConnection, definitions: Any = None) -> dict[str, Any]:
    """The hygiene agent's measures (see the module docstring); truth parts are None
    when the warehouse holds a real import."""
    out: dict[str, Any] = {"proposals": frame(con, _DECISIONS).to_dicts()}
    if not int(scalar(con, _HAS_TRUTH) or 0):
        out["truth"] = None
        return out
    # A decision moves only the proposals' statuses: what truth says of the clusters,
    # the merges and the values is kept (metrics.remembered), the statuses read anew.
    enrich = _enrich_verdicts(con)
    if not enrich.is_empty():
        enrich = enrich.join(frame(con, _STATUS), on="proposal_id", how="left")
    out["truth"] = {
        "duplicates": _duplicates(con),
        "enrichment": _share(enrich, ["action_type", "field", "status"])
        if not enrich.is_empty()
        else [],
        "defects": defects_found(con),
    }
    return out


@remembered
def _duplicates(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    run = scalar(con, _LATEST_RUN)
    dup: dict[str, Any] = {"run_id": run}
    for kind in ("accounts", "contacts"):
        clusters = frame(con, _CLUSTERS, {"run": run, "kind": kind})
        dup[kind] = (
            pairwise_scores(clusters, clusters.select("record_id", "entity_id")) if run else None
        )
    merges = frame(con, MERGE_VERDICTS)
    dup["merge_proposals"] = _share(merges, ["kind"]) if not merges.is_empty() else []
    return dup


@remembered
def _enrich_verdicts(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return frame(con, ENRICH_VERDICTS).drop("status")


@remembered  # the proposals' keys and truth's defects: no decision changes them
def defects_found(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """Per injected defect class: how many there are, how many the agent's proposals
    caught (recall) and, where every proposal of a kind claims that defect, how many of
    them are about a true one (precision). Needs the generator's truth.defects."""
    found = {}
    keys = ["object_type", "record_id", "field"]
    for cls, sql in _PROPOSAL_KEYS.items():
        defects = frame(con, _DEFECT_KEYS, {"cls": cls})
        proposed = frame(con, sql).unique()
        hit = defects.join(proposed, on=keys, how="semi")
        row: dict[str, Any] = {
            "injected": len(defects),
            "found": len(hit),
            "recall": round(len(hit) / len(defects), 4) if len(defects) else None,
        }
        if cls in _PRECISION_OF:
            on_defect = proposed.join(defects, on=keys, how="semi")
            row["proposals"] = len(proposed)
            row["precision"] = round(len(on_defect) / len(proposed), 4) if len(proposed) else None
        found[cls] = row
    return found


# What a person compares to answer "one company (person) or two?"
REVIEW_FIELDS = {
    "accounts": ("account_id", ["name", "website", "phone", "street", "city", "postal_code"]),
    "contacts": ("contact_id", ["full_name", "email", "phone", "title", "account_id"]),
}
_TO_REVIEW = """
SELECT r.rank, r.probability, r.left_id, r.right_id, r.levels
FROM ops.identity_review r
WHERE r.object_type = $kind
  AND NOT EXISTS (SELECT 1 FROM ops.identity_labels l WHERE l.object_type = r.object_type
                  AND l.left_id = r.left_id AND l.right_id = r.right_id)
ORDER BY r.rank
"""
_ANSWERED = (
    "SELECT count(DISTINCT (left_id, right_id)) FROM ops.identity_labels WHERE object_type = $kind"
)


def pairs_to_review(con: duckdb.DuckDBPyConnection, object_type: str) -> dict[str, Any]:
    """The latest hygiene run's hardest pairs nobody has answered yet, each with both
    records' fields side by side (``pairs``: rank, probability, left_id, right_id,
    levels, left_<field>, right_<field>), and how many pairs people have answered."""
    key, fields = REVIEW_FIELDS[object_type]
    pairs = frame(con, _TO_REVIEW, {"kind": object_type})
    cols = ", ".join(f'"{f}"' for f in (key, *fields))  # names from REVIEW_FIELDS
    ids = sorted({*pairs["left_id"], *pairs["right_id"]})  # only the records on show
    records = frame(
        con,
        f'SELECT {cols} FROM crm.{object_type} WHERE "{key}" IN (SELECT unnest($ids))',
        {"ids": ids},
    ).rename({key: "record_id"})
    for side in ("left", "right"):
        pairs = pairs.join(
            records.rename({c: f"{side}_{c}" for c in records.columns}),
            left_on=f"{side}_id",
            right_on=f"{side}_record_id",
            how="left",
        )
    return {
        "pairs": pairs.sort("rank"),
        "fields": fields,
        "answered": int(scalar(con, _ANSWERED, {"kind": object_type})),
    }
