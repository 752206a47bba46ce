-- Short-lived state of the OpenID Provider (login sessions, authorization codes, grants,
-- refresh tokens, consents, revoked access tokens, used-once markers): JSON by kind and
-- id, each with the unix second after which it is dead. Kept apart from `documents`
-- because it is written per login rather than per configuration change, is never part
-- of the change feed, and is pruned by expiry.
CREATE TABLE oauth_records (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX oauth_records_expiry ON oauth_records (expires_at);

-- Revoked access tokens move here from `documents`.
DELETE FROM documents WHERE kind = 'oauth_revoked_access_token';
