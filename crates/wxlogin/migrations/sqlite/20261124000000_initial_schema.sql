-- Users, sessions and login tickets. Times are unix seconds.
-- The phone is encrypted by the service before it gets here (phone_enc: AES-GCM nonce+ciphertext);
-- phone_hash is a keyed HMAC-SHA256 for lookups. Tokens and tickets are stored as SHA-256 hashes only.
-- STRICT makes SQLite enforce the column types like PostgreSQL does.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT, -- AUTOINCREMENT: an id is never reused after a delete
    appid       TEXT    NOT NULL,
    openid      TEXT    NOT NULL,
    unionid     TEXT,
    phone_enc   BLOB    NOT NULL,
    phone_hash  BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (appid, openid)
) STRICT;

CREATE INDEX users_appid_phone_hash ON users (appid, phone_hash);

CREATE TABLE sessions (
    token_hash  BLOB    PRIMARY KEY NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_expires_at ON sessions (expires_at);
-- Without it, deleting a user scans every session to cascade.
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE login_tickets (
    ticket_hash BLOB    PRIMARY KEY NOT NULL,
    appid       TEXT    NOT NULL,
    openid      TEXT    NOT NULL,
    unionid     TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX login_tickets_expires_at ON login_tickets (expires_at);
