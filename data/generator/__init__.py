"""The sample company: a realistic B2B CRM with its ground truth, built straight into
the warehouse, deterministic by seed. See docs/generator.md."""

from revstack.data.generator._config import DEFAULT_AS_OF, RATES, SCALES, Rates, Scale
from revstack.data.generator._generate import generate
from revstack.data.generator._realism import REALISM_COLUMNS, figure_text, real_figures, realism
from revstack.data.generator._replay import REPLAYED, Replay

__all__ = [
    "generate",
    "realism",
    "real_figures",
    "figure_text",
    "REALISM_COLUMNS",
    "SCALES",
    "RATES",
    "DEFAULT_AS_OF",
    "Rates",
    "Scale",
    "Replay",
    "REPLAYED",
]
