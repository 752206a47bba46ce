-- Credentials (EC2, certificates, TOTP seeds, ...): blobs encrypted with the credential
-- key repository; key_hash names the key that sealed each one.

CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id TEXT,
    type TEXT NOT NULL,
    encrypted_blob TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX credentials_user ON credentials (user_id);
