-- Tokens other services can verify (design.md): a session is now refreshed with a rotating refresh token and
-- ends at an absolute time; rotated refresh tokens are remembered to detect their reuse; ES256 signing keys are
-- stored encrypted with the data key, so every instance signs and publishes the same keys.
-- Sessions of earlier releases (opaque `wxs_` tokens) have no refresh token and no absolute end: they stay valid
-- until their `expires_at`, as before.
ALTER TABLE sessions ADD COLUMN refresh_hash BLOB;
ALTER TABLE sessions ADD COLUMN ends_at INTEGER;

-- A refresh token that was rotated away: presenting it again ends its session (reuse detection). Kept until the
-- session could not have lived longer.
CREATE TABLE refresh_spent (
    secret_hash BLOB    PRIMARY KEY NOT NULL,
    session_id  BLOB    NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX refresh_spent_expires_at ON refresh_spent (expires_at);

-- One row per key; the highest generation signs. The private key is PKCS#8, sealed with AES-256-GCM under a key
-- derived from the data key (bound to its kid); the public JWK is published until tokens it signed have expired.
CREATE TABLE signing_keys (
    generation      INTEGER PRIMARY KEY NOT NULL,
    kid             TEXT    NOT NULL UNIQUE,
    private_key_enc BLOB    NOT NULL,
    public_jwk      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;
