"""A policy override, written as the contract edit it stands for, routes the same way."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

from revstack.agents.registry import policy_frame
from revstack.contracts import default_dir, load_contract
from revstack.data.errors import ContractError
from revstack.metrics.trust import contract_change, policy_as_contracts


def _effective(contract, action: str) -> pl.DataFrame:
    return policy_frame(contract).filter(pl.col("action_type") == action)


@pytest.fixture
def contracts_dir(tmp_path: Path) -> Path:
    shutil.copytree(default_dir() / "agents", tmp_path / "agents")
    return tmp_path


def test_graduating_makes_every_write_of_the_action_tier_one(contracts_dir: Path) -> None:
    before = load_contract(contracts_dir / "agents" / "crm_hygiene.yaml")
    assert set(_effective(before, "correct_field")["tier"]) == {2}
    change = contract_change(
        "crm_hygiene", "correct_field", tier=1, note="graduated", directory=contracts_dir
    )
    path = contracts_dir / "agents" / "crm_hygiene.yaml"
    path.write_text(change.after)
    after = load_contract(path)
    assert set(_effective(after, "correct_field")["tier"]) == {1}
    # only correct_field and the grants it needed moved; the website grant is shared by none
    for action in (
        "enrich_empty_field",
        "merge_accounts",
        "merge_contacts",
        "move_stage",
        "close_phantom_deal",
    ):
        assert _effective(after, action).equals(_effective(before, action)), action
    # comments and layout survive: only changed lines differ
    removed = [
        ln for ln in change.diff.splitlines() if ln.startswith("-") and not ln.startswith("---")
    ]
    assert len(removed) == 2 and change.before.count("#") < change.after.count("#")


def test_a_lower_threshold_reaches_the_field_grants_and_says_who_else_moves(
    contracts_dir: Path,
) -> None:
    change = contract_change(
        "crm_hygiene", "enrich_empty_field", min_confidence=0.8, directory=contracts_dir
    )
    path = contracts_dir / "agents" / "crm_hygiene.yaml"
    path.write_text(change.after)
    eff = _effective(load_contract(path), "enrich_empty_field")
    assert eff["min_confidence"].to_list() == [0.8] * 4
    assert change.also_affects == ("correct_field",)  # it writes the same four fields


def test_tier_three_cannot_be_exported_away(contracts_dir: Path) -> None:
    with pytest.raises(ContractError, match="tier 3"):
        contract_change("crm_hygiene", "close_phantom_deal", tier=1, directory=contracts_dir)


def test_every_override_in_force_folds_into_one_change_per_contract(contracts_dir: Path) -> None:
    at = dt.datetime(2026, 11, 1)
    policies = pl.DataFrame(
        {
            "agent": ["crm_hygiene", "crm_hygiene", "pipeline_health", "filler"],
            "action_type": ["correct_field", "enrich_empty_field", "flag_risk", "x"],
            "tier": [1, None, 2, 1],
            "min_confidence": [None, 0.95, None, None],
            "changed_by": ["ana"] * 4,
            "changed_at": [at] * 4,
            "reason": ["r"] * 4,
        }
    )
    changes = {c.path.stem: c for c in policy_as_contracts(policies, directory=contracts_dir)}
    assert set(changes) == {"crm_hygiene", "pipeline_health"}  # no contract for filler
    path = contracts_dir / "agents" / "crm_hygiene.yaml"
    path.write_text(changes["crm_hygiene"].after)
    after = load_contract(path)
    assert set(_effective(after, "correct_field")["tier"]) == {1}
    assert set(_effective(after, "enrich_empty_field")["min_confidence"]) == {0.95}
    assert "policy by ana on 2026-11-01: r" in changes["crm_hygiene"].diff
