"""Pairwise precision, recall and F1 of a clustering against true entity labels."""

from __future__ import annotations

import polars as pl

__all__ = ["pairwise_scores"]


def _pairs(n: pl.Expr) -> pl.Expr:
    return n * (n - 1) // 2


def pairwise_scores(predicted: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float | int]:
    """``predicted`` (record_id, cluster_id) against ``truth`` (record_id, entity_id).

    A pair of records is predicted when they share a cluster and true when they share
    an entity; precision, recall and F1 are over pairs (the usual measure for
    deduplication), counted from cluster sizes so nothing quadratic is built.
    """
    joined = predicted.select("record_id", "cluster_id").join(
        truth.select("record_id", "entity_id"), on="record_id", how="inner"
    )
    both = (
        joined.group_by("cluster_id", "entity_id").len().select(_pairs(pl.col("len")).sum()).item()
    )
    pred = joined.group_by("cluster_id").len().select(_pairs(pl.col("len")).sum()).item()
    true = joined.group_by("entity_id").len().select(_pairs(pl.col("len")).sum()).item()
    precision = both / pred if pred else 1.0
    recall = both / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "records": len(joined),
        "true_pairs": int(true),
        "predicted_pairs": int(pred),
        "correct_pairs": int(both),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
    }
