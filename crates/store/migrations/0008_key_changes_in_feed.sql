-- Key material and token-format changes are entries of the change feed (token_changes,
-- kind 'key_material'), which every node follows anyway; the separate counters go.
DROP TABLE change_counters;
