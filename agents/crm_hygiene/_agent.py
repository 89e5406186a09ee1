"""The CRM hygiene agent, on which every other agent depends.

It proposes (never writes): merges of duplicate accounts and contacts into one entity
(tier 2, with the evidence side by side), enrichment of empty firmographic fields from
the provider waterfall (tier 1 above the contract's threshold) and corrections where
providers contradict the CRM (tier 2), stage moves for deals that fail their stage's
criteria (tier 2), flags for blank required fields (tier 1, output only) and phantom
deals to close (tier 3: a task for a person). Its resolver's clusters are an output
(ops.identity_clusters) so others can see a suspected duplicate before anyone decides.
See docs/hygiene.md.
"""

from __future__ import annotations

import polars as pl

from revstack.agents.crm_hygiene._checks import check_proposals
from revstack.agents.crm_hygiene._enrich import FIELDS, enrichment_proposals
from revstack.agents.crm_hygiene._merge import merge_proposals
from revstack.agents.engine import Agent, AgentResult, Context, empty_proposals

__all__ = ["CrmHygiene", "FIELDS"]


class CrmHygiene(Agent):
    name = "crm_hygiene"
    version = "0.2.0"

    def run(self, ctx: Context) -> AgentResult:
        merges, clusters, review, identity, store = merge_proposals(ctx, version=self.version)
        enrich, enrichment = enrichment_proposals(ctx)
        checks, checked = check_proposals(ctx)
        frames = [f for f in (*merges, *enrich, *checks) if not f.is_empty()]
        proposals = pl.concat(frames, how="vertical_relaxed") if frames else empty_proposals()
        # What the engine would drop as already recorded is left out here: the same
        # outcome, without routing a week's repeats (96k flags on mid) again.
        found = len(proposals)
        proposals = ctx.unrecorded(proposals)
        # A resolver that could not learn says so where people look: the run's note.
        fallbacks = [
            f"{kind}: {'; '.join(m['warnings'])}"
            for kind, m in identity.items()
            if m.get("method") == "rules"
        ]
        return AgentResult(
            proposals,
            {
                "identity": identity,
                "enrichment": enrichment,
                "checks": checked,
                "already_proposed": found - len(proposals),
            },
            # the resolution as it stands, for the next run to redo only what changed
            {"ops.identity_clusters": clusters, "ops.identity_review": review, **store},
            note=("identity resolution fell back to rules for " + " | ".join(fallbacks))
            if fallbacks
            else "",
        )
