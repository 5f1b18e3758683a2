-- Users, sessions and login tickets. Times are unix seconds.
-- The phone is encrypted by the service before it gets here (phone_enc: AES-GCM nonce+ciphertext);
-- phone_hash is a keyed HMAC-SHA256 for lookups. Tokens and tickets are stored as SHA-256 hashes only.
-- Unqualified names: the tables land in the first schema of the connection's search_path.

CREATE TABLE users (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    appid       TEXT   NOT NULL,
    openid      TEXT   NOT NULL,
    unionid     TEXT,
    phone_enc   BYTEA  NOT NULL,
    phone_hash  BYTEA  NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (appid, openid)
);

CREATE INDEX users_appid_phone_hash ON users (appid, phone_hash);

CREATE TABLE sessions (
    token_hash  BYTEA  PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE INDEX sessions_expires_at ON sessions (expires_at);
-- Without it, deleting a user scans every session to cascade.
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE login_tickets (
    ticket_hash BYTEA  PRIMARY KEY,
    appid       TEXT   NOT NULL,
    openid      TEXT   NOT NULL,
    unionid     TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE INDEX login_tickets_expires_at ON login_tickets (expires_at);
