-- The token change feed: every write that can change what a validated token says, as the
-- dependency it touches (see limen_core::validation_cache). Sequence numbers come from a
-- single counter row updated in the recording transaction, so they commit in order and a
-- reader that has seen number N has seen every number below it.
CREATE TABLE token_change_counter (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO token_change_counter (id, seq) VALUES (1, 0);

CREATE TABLE token_changes (
    seq BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX token_changes_at ON token_changes (at);
