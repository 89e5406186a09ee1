"""The pipeline health agent: risk signals on every open deal, with reasons and
evidence, and a learned risk score. Its backtest (``revstack.metrics.pipeline``)
replays the same signals and model week by week through this module."""

import typing  # a module: the package's public names stay what __all__ says

from revstack.agents.pipeline_health._agent import HIGH_RISK, MODEL_THRESHOLD, PipelineHealth
from revstack.agents.pipeline_health._risk_model import (
    HORIZON_DAYS,
    closed_outcomes,
    feature_matrix,
    outcome_labels,
)
from revstack.agents.pipeline_health._signals import Benchmarks, learn_benchmarks, rule_flags

if typing.TYPE_CHECKING:  # for the type checker only; at run time __getattr__ imports it late
    from revstack.agents.pipeline_health._risk_estimator import RiskModel

__all__ = [
    "HIGH_RISK",
    "HORIZON_DAYS",
    "MODEL_THRESHOLD",
    "Benchmarks",
    "PipelineHealth",
    "RiskModel",
    "closed_outcomes",
    "feature_matrix",
    "learn_benchmarks",
    "outcome_labels",
    "rule_flags",
]


def __getattr__(name: str) -> object:
    # scikit-learn takes a second to import; only a run that trains the model pays it.
    if name == "RiskModel":
        from revstack.agents.pipeline_health._risk_estimator import RiskModel

        return RiskModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
