-- 025: the forecast's backtest cache keeps each input's own digest (docs/forecast.md,
-- "The backtest cache").
--
-- A run that finds the inputs before the stored as-of changed replays the whole
-- backtest; with only the whole fingerprint stored it could not say which input moved,
-- and a weekly replay on a large company could not be traced. A cache stored before
-- this migration has no parts: its next replay gives the reason in general words, and
-- the cache that run stores has them.

ALTER TABLE ops.forecast_cache ADD COLUMN parts VARCHAR;
