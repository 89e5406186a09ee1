"""Clusters from scored pairs that do not chain unrelated records through one bad link.

Connected components of the links above the threshold are only candidates. Inside a
component of three or more records every pair is scored, and the records are grouped
by average linkage: two groups join only when their records match ON AVERAGE above the
threshold, so A~B and B~C with A and C clearly different does not make one entity.
Components larger than ``max_component`` are grouped so too, over their different
records (records alike in every field, twins, as one weighted row: one organisation
keyed in hundreds of times is hundreds of records but a few dozen spellings); only one
of more than ``max_nodes`` different records is split by links of very high
probability instead, as comparing all its pairs would cost too much.

An incremental run (``fixed``) keeps the stored clusters of every component no new or
changed record touches: the same records with the same links give the same groups, so
only the components a week's changes reach are grouped again.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["ascending", "components", "average_linkage", "cluster"]

# Links below this probability change no record's confidence at the four decimals it is
# given to; the confidence step leaves them out.
CONFIDENCE_FLOOR = 0.001


def ascending(ids: pl.Series) -> bool:
    """Whether ``ids`` are sorted and each is there once (no nulls): then keeping each
    id once and sorting them (a hash pass and a sort: 0.2-0.5 s on mid's 273k contacts)
    changes nothing."""
    if ids.null_count():
        return False
    return len(ids) < 2 or bool((ids.slice(1) > ids.slice(0, len(ids) - 1)).all())


def components(left: np.ndarray, right: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """The root (smallest node id) of each of ``nodes``' components, over integer node ids
    linked by the (left, right) edges."""
    size = int(nodes.max()) + 1 if len(nodes) else 0
    if len(left):
        size = max(size, int(left.max()) + 1, int(right.max()) + 1)
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(size, size))
    _, label = connected_components(graph, directed=False)
    root = np.full(label.max() + 1 if size else 0, size, dtype=np.int64)
    np.minimum.at(root, label, np.arange(size))
    return root[label[nodes]].astype(np.int64)


def average_linkage(
    prob: np.ndarray, threshold: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """Group labels for a symmetric matrix of match probabilities (diagonal ignored).

    Greedy: the two groups whose records match best on average join, until no two
    match on average at ``threshold`` or above; of equal averages, the pair first in
    row-major order. A pair at -inf is two entities for certain (one is the other's
    parent): no group ever holds both, as any average over it is -inf.

    ``weights``: how many records each row stands for (twins, whose pairs with any
    third record are all alike, see ``cluster``); an average then counts each row's
    records, as if every twin had a row of its own that joined its twins first.

    Each row keeps its best partner, so a join recomputes only the rows that pointed to
    one of the two groups (not the whole matrix): the same joins as comparing every
    pair at every step, in about n^2 rather than n^3 operations."""
    n = len(prob)
    sizes = np.ones(n) if weights is None else np.asarray(weights, dtype=float).copy()
    sums = prob.astype(float) * np.outer(sizes, sizes)
    np.fill_diagonal(sums, -np.inf)
    label = np.arange(n)
    alive = np.ones(n, dtype=bool)
    best = np.full(n, -np.inf)
    partner = np.zeros(n, dtype=np.int64)

    def refresh(rows: np.ndarray) -> None:
        link = sums[rows] / np.outer(sizes[rows], sizes)
        link[:, ~alive] = -np.inf
        partner[rows] = np.argmax(link, axis=1)
        best[rows] = link[np.arange(len(rows)), partner[rows]]

    if n:
        refresh(np.arange(n))
    while n:
        i = int(np.argmax(np.where(alive, best, -np.inf)))
        j = int(partner[i])
        if not alive[i] or best[i] < threshold:
            break
        i, j = min(i, j), max(i, j)  # it is so already: a j before i would have come first
        sums[i, :] += sums[j, :]
        sums[:, i] += sums[:, j]
        sums[i, i] = -np.inf
        sizes[i] += sizes[j]
        alive[j] = False
        best[j] = -np.inf
        label[label == j] = i
        stale = alive & ((partner == i) | (partner == j))
        stale[i] = True
        # Every other row's link to the grown group changed; only the one to it moves.
        to_i = sums[:, i] / (sizes * sizes[i])
        better = alive & ~stale & ((to_i > best) | ((to_i == best) & (i < partner)))
        best[better] = to_i[better]
        partner[better] = i
        refresh(np.flatnonzero(stale))
    return label


def cluster(
    pairs: pl.DataFrame,
    record_ids: pl.Series,
    threshold: float,
    score_all: Callable[[pl.DataFrame], pl.DataFrame],
    *,
    max_component: int = 400,
    max_nodes: int = 2000,
    hub_threshold: float = 0.999,
    twins: pl.Series | None = None,
    fixed: pl.DataFrame | None = None,
    detail: bool = False,
) -> pl.DataFrame:
    """(record_id, cluster_id, confidence) for every record.

    ``pairs`` has left_id, right_id, probability for the candidate pairs; ``score_all``
    scores any (left_id, right_id) frame, used for the pairs inside a component that
    blocking did not generate. cluster_id is the smallest record id of the cluster;
    confidence is a record's mean probability with the rest of its cluster, or for a
    record alone, one minus its best link's probability.

    A component of more than ``max_component`` records is grouped by average linkage
    too, over its different records: ``twins`` (each record's twin, aligned with
    ``record_ids``: the smallest id of the records whose compared fields are all the
    same) makes twins one row weighted by their number, so a name keyed in five hundred
    times is one row, not five hundred; only a component of more than ``max_nodes``
    different records (its pairs are all scored) is split by links of ``hub_threshold``
    or more instead.

    ``fixed`` (record_id, component, cluster_id, linkage), a stored clustering: a
    component whose records are all there, with one stored component of the same size,
    keeps its stored clusters and linkage instead of being grouped again. ``detail``
    adds each record's ``component`` (its smallest record id) and ``linkage`` (its mean
    probability with the rest of its group, from average linkage), which is what a later
    run passes as ``fixed``.
    """
    ids = record_ids.cast(pl.String)
    if not ascending(ids):  # a resolution's records come sorted, each once
        ids = ids.unique().sort()
    index = pl.DataFrame({"record_id": ids, "node": np.arange(len(ids))})
    # The pairs' ends as node numbers, once, for the links and the confidences: only the
    # pairs either can use, with only their ids and probability (the pairs carry every
    # comparison's level, and filtering them whole copied all of those).
    ends = _ends(
        pairs.select("left_id", "right_id", "probability"), index, min(threshold, CONFIDENCE_FLOOR)
    )
    nodes = ends.filter(pl.col("probability") >= threshold)
    roots = components(nodes["l"].to_numpy(), nodes["r"].to_numpy(), np.arange(len(ids)))
    comp = index.with_columns(component=pl.Series(roots))
    sizes = comp.group_by("component").len()
    big = comp.join(sizes.filter(pl.col("len") >= 3), on="component").sort("node")
    labels = roots.copy()  # node -> the node whose id names its cluster
    member_prob = np.full(len(ids), np.nan)  # node -> mean probability with its group
    if fixed is not None and not big.is_empty():
        kept = _kept(big, sizes, fixed, index, max_component)
        at = kept["node"].to_numpy()
        labels[at] = kept["head"].to_numpy()
        member_prob[at] = kept["linkage"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        big = big.join(kept.select("node"), on="node", how="anti")

    if not big.is_empty():
        within = big.select("component", "record_id", "node")
        small = within.join(sizes.filter(pl.col("len") <= max_component), on="component")
        all_pairs = (
            small.join(small, on="component", suffix="_r")
            .filter(pl.col("record_id") < pl.col("record_id_r"))
            .select(left_id="record_id", right_id="record_id_r")
        )
        # Each component's members and scored pairs as slices of arrays sorted by
        # component: a frame per component (group_by, partition_by) cost more than the
        # grouping itself over the many components of three or four records.
        small = small.sort("component", "node")
        comp_of = small["component"].to_numpy()
        members_of = small["node"].to_numpy()
        cuts = np.flatnonzero(np.diff(comp_of)) + 1
        starts = np.r_[0, cuts] if len(comp_of) else np.zeros(0, np.int64)
        stops = np.r_[cuts, len(comp_of)] if len(comp_of) else np.zeros(0, np.int64)
        pl_, pr, pp = (np.zeros(0, np.int64),) * 2 + (np.zeros(0),)
        papart: np.ndarray | None = None
        pair_comp = np.zeros(0, np.int64)
        if not all_pairs.is_empty():
            scored = score_all(all_pairs)
            keep = ["probability", "apart"] if "apart" in scored.columns else ["probability"]
            scored = _ends(scored.select("left_id", "right_id", *keep), index, None)
            node_comp = small.select(l="node", component="component")
            scored = scored.join(node_comp, on="l").sort("component", maintain_order=True)
            pair_comp = scored["component"].to_numpy()
            pl_, pr = scored["l"].to_numpy(), scored["r"].to_numpy()
            pp = scored["probability"].to_numpy()
            if "apart" in scored.columns:
                papart = scored["apart"].fill_null(False).to_numpy()
            del scored
        at = np.searchsorted(pair_comp, comp_of[starts], side="left")
        until = np.searchsorted(pair_comp, comp_of[starts], side="right")
        for start, stop, a, b in zip(starts, stops, at, until, strict=True):
            members = members_of[start:stop]
            prob = np.zeros((len(members), len(members)))
            li = np.searchsorted(members, pl_[a:b])
            ri = np.searchsorted(members, pr[a:b])
            prob[li, ri] = prob[ri, li] = pp[a:b]
            if papart is not None:  # never one group, whatever else links them
                apart = papart[a:b]
                prob[li[apart], ri[apart]] = prob[ri[apart], li[apart]] = -np.inf
            one = _one_group(prob, threshold)
            if one and len(members) <= _ROW_SUMS:
                labels[members] = members[0]  # members are sorted
                # each one's mean with the others: its row (the diagonal is 0)
                member_prob[members] = prob.sum(axis=1) / (len(members) - 1)
                continue
            groups = np.zeros(len(members), np.int64) if one else average_linkage(prob, threshold)
            for g in np.unique(groups):
                idx = np.flatnonzero(groups == g)
                labels[members[idx]] = members[idx].min()
                if len(idx) > 1:  # each one's mean with the others of its group
                    member_prob[members[idx]] = [prob[i, idx[idx != i]].mean() for i in idx]
        hubs = within.join(sizes.filter(pl.col("len") > max_component), on="component")
        if not hubs.is_empty():
            hubs = _twin_heads(hubs, twins, record_ids, index, score_all, threshold)
            counts = hubs.group_by("component").agg(n=pl.col("head").n_unique())
            hubs = hubs.join(counts, on="component")
            for (_,), hub in hubs.filter(pl.col("n") <= max_nodes).group_by("component"):
                _group_hub(hub, index, score_all, threshold, labels, member_prob)
            rest = hubs.filter(pl.col("n") > max_nodes)
            if not rest.is_empty():
                strong = nodes.filter(pl.col("probability") >= hub_threshold)
                hub_nodes = rest["node"].to_numpy()
                strong = strong.filter(pl.col("l").is_in(hub_nodes) & pl.col("r").is_in(hub_nodes))
                sub = components(
                    strong["l"].to_numpy(), strong["r"].to_numpy(), np.arange(len(ids))
                )
                labels[hub_nodes] = sub[hub_nodes]

    # From here on by node number, which is the record's place in ``ids`` (sorted): a
    # record's cluster and component are gathered, not joined on the record ids (on mid's
    # 273k contacts the joins were most of an incremental run's clustering).
    head = labels.astype(np.int64)
    # Confidence: pairs, mean with the rest of the cluster; alone, 1 - best link (links
    # below CONFIDENCE_FLOOR change neither figure at four decimals' precision that matters).
    if threshold < CONFIDENCE_FLOOR:
        ends = ends.filter(pl.col("probability") >= CONFIDENCE_FLOOR)
    left, right = ends["l"].to_numpy(), ends["r"].to_numpy()
    same = head[left] == head[right]
    both = pl.DataFrame(
        {
            "node": np.concatenate([left, right]),
            "p": np.concatenate([ends["probability"].to_numpy()] * 2),
            "inside": np.concatenate([same, same]),
        }
    )
    del ends, left, right, same
    inside = both.filter("inside").group_by("node").agg(p_in=pl.col("p").mean())
    outside = both.filter(~pl.col("inside")).group_by("node").agg(p_out=pl.col("p").max())
    del both
    # Each figure put at its node, not joined on: a join copies every column of a frame
    # of all the records.
    columns = {
        "record_id": ids,
        "cluster_id": ids.gather(head),
        "cluster_size": np.bincount(head, minlength=len(ids))[head],
        "p_avg": pl.Series(member_prob, dtype=pl.Float64).fill_nan(None),
        "p_in": _at(len(ids), inside["node"], inside["p_in"]),
        "p_out": _at(len(ids), outside["node"], outside["p_out"]),
    }
    if detail:
        columns["component"] = ids.gather(roots)
    confidence = (
        pl.when(pl.col("cluster_size") > 1)
        .then(pl.coalesce("p_avg", "p_in"))
        .otherwise(1 - pl.col("p_out").fill_null(0.0))
        .fill_null(1.0)
        .round(4)
        .alias("confidence")
    )
    shown = [pl.col("component"), pl.col("p_avg").alias("linkage")] if detail else []
    return pl.DataFrame(columns).select("record_id", "cluster_id", confidence, *shown)


# How far above the threshold every pair of a component must be for it to be one group
# without average linkage: more than the rounding of any average of up to 400 x 400
# probabilities, so that average linkage would join them all too.
_CLEAR = 1e-9
# Up to this many records, a row's sum is added in order as the mean of the row without
# its diagonal is (numpy adds fewer than eight numbers one by one, more in blocks), so
# the means are the same to the last bit.
_ROW_SUMS = 7


def _one_group(prob: np.ndarray, threshold: float) -> bool:
    """Whether every pair of a component is above the threshold: every average then is
    too, so average linkage joins all its records in one group whatever the order (most
    components of a list of people are so)."""
    off = prob[~np.eye(len(prob), dtype=bool)]
    return bool(off.size) and bool(off.min() >= threshold + _CLEAR)


def _at(n: int, nodes: pl.Series, values: pl.Series) -> pl.Series:
    """``values`` at ``nodes`` in a series of ``n``, null elsewhere."""
    out = pl.repeat(None, n, dtype=values.dtype, eager=True).alias(values.name)
    return out.scatter(nodes, values) if len(nodes) else out


def _ends(pairs: pl.DataFrame, index: pl.DataFrame, floor: float | None) -> pl.DataFrame:
    """``pairs`` at or above ``floor`` (all without one) with their ids' node numbers l
    and r in place of the ids, their other columns kept (so select first); a pair whose
    ids are not both records is left out."""
    at = pairs.lazy()
    if floor is not None:
        at = at.filter(pl.col("probability") >= floor)
    rest = [c for c in pairs.columns if c not in ("left_id", "right_id")]
    return (
        at.join(index.lazy().rename({"record_id": "left_id", "node": "l"}), on="left_id")
        .join(index.lazy().rename({"record_id": "right_id", "node": "r"}), on="right_id")
        .select("l", "r", *rest)
        .collect()
    )


def _twin_heads(
    hub: pl.DataFrame,
    twins: pl.Series | None,
    record_ids: pl.Series,
    index: pl.DataFrame,
    score_all: Callable[[pl.DataFrame], pl.DataFrame],
    threshold: float,
) -> pl.DataFrame:
    """``hub`` (component, record_id, node) with ``head``: the node that stands for the
    record, the first of its twins in its component, or the record itself where its
    twins match each other under ``threshold`` (as a person's marks or a model that
    trusts no field alone may make them)."""
    hub = hub.with_columns(head=pl.col("node"))
    if twins is None:
        return hub
    # ``twins`` is aligned with the records as given, which need not be sorted as ``index``
    twin_of = pl.DataFrame(
        {"record_id": record_ids.cast(pl.String), "twin": twins.cast(pl.String)}
    ).unique("record_id", keep="first")
    hub = hub.join(twin_of, on="record_id", how="left").with_columns(
        head=pl.col("node").min().over("component", "twin")
    )
    ids = index["record_id"]
    # Twins' pairs all have the same levels: one pair scores them all.
    one = hub.filter(pl.col("node") != pl.col("head")).group_by("head").agg(other=pl.first("node"))
    if one.is_empty():
        return hub.drop("twin")
    one = one.with_columns(left_id=ids.gather(one["head"]), right_id=ids.gather(one["other"]))
    scored = score_all(one.select("left_id", "right_id"))
    apart = pl.col("apart").fill_null(False) if "apart" in scored.columns else pl.lit(False)
    p_self = one.join(
        scored.select(
            "left_id", "right_id", p_self=pl.when(apart).then(-np.inf).otherwise("probability")
        ),
        on=["left_id", "right_id"],
        how="left",
    )
    return (
        hub.join(p_self.select("head", "p_self"), on="head", how="left")
        .with_columns(
            head=pl.when(pl.col("p_self") >= threshold).then("head").otherwise("node"),
            p_self=pl.when(pl.col("p_self") >= threshold).then("p_self"),
        )
        .drop("twin")
    )


def _group_hub(
    hub: pl.DataFrame,
    index: pl.DataFrame,
    score_all: Callable[[pl.DataFrame], pl.DataFrame],
    threshold: float,
    labels: np.ndarray,
    member_prob: np.ndarray,
) -> None:
    """Average linkage over one large component's different records (``hub``: its
    records' node and head), each head weighted by its number of twins; writes each
    record's cluster head into ``labels`` and its mean probability with the rest of its
    group into ``member_prob``."""
    heads = hub.group_by("head").agg(w=pl.len(), p_self=pl.col("p_self").first()).sort("head")
    at = heads["head"].to_numpy()
    weight = heads["w"].to_numpy().astype(float)
    p_self = heads["p_self"].fill_null(0.0).to_numpy()
    ids = index["record_id"]
    n = len(at)
    li, ri = np.triu_indices(n, 1)
    prob = np.zeros((n, n))
    if n > 1:
        scored = score_all(
            pl.DataFrame({"left_id": ids.gather(at[li]), "right_id": ids.gather(at[ri])})
        )
        found = scored.join(index.rename({"record_id": "left_id", "node": "l"}), on="left_id").join(
            index.rename({"record_id": "right_id", "node": "r"}), on="right_id"
        )
        a = np.searchsorted(at, found["l"].to_numpy())
        b = np.searchsorted(at, found["r"].to_numpy())
        p = found["probability"].to_numpy().astype(float)
        if "apart" in found.columns:
            p = np.where(found["apart"].fill_null(False).to_numpy(), -np.inf, p)
        prob[a, b] = prob[b, a] = p
    groups = average_linkage(prob, threshold, weight)
    head_of = np.empty(n, dtype=np.int64)
    mean = np.full(n, np.nan)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        head_of[idx] = at[idx].min()
        total = weight[idx].sum()
        if total > 1:  # each one's mean with the others of its group, its twins among them
            inner = prob[np.ix_(idx, idx)] * weight[idx]
            np.fill_diagonal(inner, 0.0)
            mean[idx] = (inner.sum(axis=1) + (weight[idx] - 1) * p_self[idx]) / (total - 1)
    k = np.searchsorted(at, hub["head"].to_numpy())
    labels[hub["node"].to_numpy()] = head_of[k]
    member_prob[hub["node"].to_numpy()] = mean[k]


def _kept(
    big: pl.DataFrame,
    sizes: pl.DataFrame,
    fixed: pl.DataFrame,
    index: pl.DataFrame,
    max_component: int,
) -> pl.DataFrame:
    """(node, cluster head node, linkage) of the records of components that keep their
    stored clusters: every record stored, all in one stored component of the same size."""
    members = big.join(sizes.filter(pl.col("len") <= max_component), on="component")
    # Only the stored rows of these records, and the sizes of their stored components,
    # are looked up: a tenth of mid's 273k contacts.
    mine = fixed.join(members.select("record_id"), on="record_id", how="semi")
    stored = mine.select("record_id", "component", "cluster_id", "linkage").join(
        index.rename({"record_id": "cluster_id", "node": "head"}), on="cluster_id", how="left"
    )
    members = members.join(
        stored.rename({"component": "stored_component"}), on="record_id", how="left"
    )
    stored_sizes = (
        fixed.join(mine.select("component").unique(), on="component", how="semi")
        .group_by("component")
        .len()
        .rename({"component": "stored_component", "len": "stored_len"})
    )
    whole = (
        members.join(stored_sizes, on="stored_component", how="left")
        .group_by("component")
        .agg(
            ok=pl.col("head").is_not_null().all()
            & (pl.col("stored_component").n_unique() == 1)
            & (pl.col("stored_len").first() == pl.len())
        )
        .filter("ok")
    )
    return members.join(whole.select("component"), on="component").select("node", "head", "linkage")
