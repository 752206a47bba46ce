-- Trusts (OS-TRUST): a trustor delegates roles on a project to a trustee.

CREATE TABLE trusts (
    id TEXT PRIMARY KEY,
    trustor_user_id TEXT NOT NULL,
    trustee_user_id TEXT NOT NULL,
    project_id TEXT,
    impersonation BIGINT NOT NULL,
    expires_at BIGINT,
    remaining_uses BIGINT,
    redelegated_trust_id TEXT,
    redelegation_count BIGINT NOT NULL DEFAULT 0,
    role_ids TEXT NOT NULL DEFAULT '[]',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE INDEX trusts_trustor ON trusts (trustor_user_id);
CREATE INDEX trusts_trustee ON trusts (trustee_user_id);
