"""The forecast agent's machinery: as-of deal rows, baselines, the deal model, the
not-yet-created revenue, the correlated simulation, the range correction and the
rolling backtest. Used by ``agents.forecast`` and ``revstack forecast backtest``."""

from agents.forecasting._backtest import Forecast, default_start, prepare, run_forecast
from agents.forecasting._baselines import BASELINES
from agents.forecasting._inputs import Inputs, load
from agents.forecasting._outputs import to_outputs

__all__ = ["BASELINES", "Forecast", "Inputs", "default_start", "load", "prepare", "run_forecast", "to_outputs"]
