"""Layer 1 governance: canonical definitions and one data contract per agent.

RevOps owns the YAML (``definitions.yaml``, ``agents/*.yaml``); this package loads
it into typed objects, checks it against the warehouse, and compiles definitions
into SQL that selects the rows that break them.
"""

from revstack.contracts._check import ContractProblem, check_all
from revstack.contracts._criteria import (
    required_fields_sql,
    stage_checks_sql,
    stage_fit_sql,
    stage_violations_sql,
)
from revstack.contracts._load import Bundle, default_dir, load_all, load_contract, load_definitions
from revstack.contracts._model import Action, AgentContract, Definitions, Stage

__all__ = [
    "Action",
    "AgentContract",
    "Bundle",
    "ContractProblem",
    "Definitions",
    "Stage",
    "check_all",
    "default_dir",
    "load_all",
    "load_contract",
    "load_definitions",
    "required_fields_sql",
    "stage_checks_sql",
    "stage_fit_sql",
    "stage_violations_sql",
]
