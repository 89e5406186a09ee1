"""What scikit-learn's tree walk trusts, checked on a tree read back from the warehouse.

The forecast's deal models and pipeline health's risk model are stored as plain numbers
(node tables), never pickled; before scikit-learn's predictor walks a node table read
back, every split's children must be later nodes of its tree (so every walk ends at a
leaf) and its feature must exist.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_nodes"]


def check_nodes(nodes: np.ndarray, n_features: int) -> np.ndarray:
    """Raise ValueError unless ``nodes`` is a walkable tree over ``n_features`` features;
    the mask of its split nodes."""
    if not len(nodes):
        raise ValueError("a tree without nodes")
    split = nodes["is_leaf"] == 0
    at = np.flatnonzero(split)
    left, right = nodes["left"][split].astype(np.int64), nodes["right"][split].astype(np.int64)
    if (
        (left <= at).any()
        or (right <= at).any()
        or (left >= len(nodes)).any()
        or (right >= len(nodes)).any()
    ):
        raise ValueError("a split's children are not later nodes of its tree")
    feats = nodes["feature_idx"][split]
    if ((feats < 0) | (feats >= n_features)).any():
        raise ValueError("a split on a feature the model does not have")
    return split
