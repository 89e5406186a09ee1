-- 018: what a briefing was built from, so a weekly run builds only the briefings whose
-- inputs changed (docs/deal_prep.md, Weekly runs). A digest of every row the briefing
-- reads and the settings it was built with; NULL on demand and before this migration
-- (such a meeting's briefing is built again once).
ALTER TABLE ops.briefings ADD COLUMN inputs VARCHAR;
