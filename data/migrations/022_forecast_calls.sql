-- 022: what the rep commit on a live forecast is made of.
--
-- `rep_commit` is the commit as a RevOps lead rolls it up: each rep's latest call, and for
-- a rep who has not called yet their wins plus their open pipeline at the rates its
-- stages have converted at (docs/forecast.md, The rep commit filled as a team fills it).
-- Early in a period most of that figure can be the fill, not anybody's word, and a
-- manager reading the Forecast page has to know how much. Each live row now also keeps
-- the calls alone (a rep who has not called counts nothing), how many reps the segment
-- counts (a call or deals in the period) and how many of them had called by the
-- snapshot. Null for rows written before, and where the CRM has no forecast
-- submissions at all.

ALTER TABLE ops.forecasts ADD COLUMN rep_commit_calls DOUBLE;  -- the calls alone (sum over the segment)
ALTER TABLE ops.forecasts ADD COLUMN reps INTEGER;             -- reps with a call or deals in the period
ALTER TABLE ops.forecasts ADD COLUMN reps_called INTEGER;      -- of them, those who had called by the snapshot
