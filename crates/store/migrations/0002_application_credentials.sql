-- Application credentials and the access rules they carry.

CREATE TABLE application_credentials (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id TEXT,
    description TEXT,
    secret_hash TEXT NOT NULL,
    expires_at BIGINT,
    unrestricted BIGINT NOT NULL,
    role_ids TEXT NOT NULL DEFAULT '[]',
    access_rule_ids TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    UNIQUE (user_id, name)
);
CREATE INDEX application_credentials_project ON application_credentials (project_id);

CREATE TABLE access_rules (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    path TEXT NOT NULL,
    method TEXT NOT NULL,
    UNIQUE (user_id, service, path, method)
);
