-- Key material shared by every node of a cloud ([keys] source = "database").
--
-- Fernet token keys and credential keys, each sealed with the key-encryption key (KEK):
-- the database never holds them in plain text. `number` is Keystone's key number:
-- 0 staged, the highest primary, the rest secondary.
CREATE TABLE key_material (
    kind TEXT NOT NULL,
    number BIGINT NOT NULL,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, number)
);

-- Every node's JWS public keys (public, so not sealed), named by fingerprint.
CREATE TABLE jws_public_keys (
    fingerprint TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    public_pem TEXT NOT NULL,
    published_at BIGINT NOT NULL
);

-- Settings for the whole cloud that override each node's configuration (the token
-- formats issued and accepted), as JSON.
CREATE TABLE cluster_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One counter per kind of shared material, bumped in the same transaction as every change,
-- so nodes notice changes by polling these few rows instead of the tables above.
CREATE TABLE change_counters (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO change_counters (name, version) VALUES ('fernet', 0);
INSERT INTO change_counters (name, version) VALUES ('credential', 0);
INSERT INTO change_counters (name, version) VALUES ('jws', 0);
INSERT INTO change_counters (name, version) VALUES ('settings', 0);
