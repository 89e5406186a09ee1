"""The forecast agent: P10/P50/P90 of won revenue per period and segment, and the
machinery it runs on: as-of deal rows, baselines, the deal model, the not-yet-created
revenue, the correlated simulation, the range correction, the rolling backtest and
the scores it is judged by. ``revstack forecast backtest`` and the metrics read it
through this module."""

from revstack.agents.forecast._accuracy import accuracy, deal_calibration, summary_table
from revstack.agents.forecast._agent import ForecastAgent
from revstack.agents.forecast._backtest import (
    COMBINE_WITH,
    Forecast,
    default_start,
    prepare,
    run_forecast,
)
from revstack.agents.forecast._baselines import BASELINES
from revstack.agents.forecast._inputs import Inputs, load
from revstack.agents.forecast._outputs import to_outputs
from revstack.agents.forecast._sample import SAMPLED_WARNING
from revstack.agents.forecast._scores import (
    brier,
    crps_from_draws,
    crps_from_quantiles,
    mape_ratio,
    pinball,
    point_scores,
    range_scores,
    reliability,
    share_interval,
)

__all__ = [
    "BASELINES",
    "COMBINE_WITH",
    "Forecast",
    "ForecastAgent",
    "Inputs",
    "SAMPLED_WARNING",
    "accuracy",
    "brier",
    "crps_from_draws",
    "crps_from_quantiles",
    "deal_calibration",
    "default_start",
    "load",
    "mape_ratio",
    "pinball",
    "point_scores",
    "prepare",
    "range_scores",
    "reliability",
    "run_forecast",
    "share_interval",
    "summary_table",
    "to_outputs",
]
