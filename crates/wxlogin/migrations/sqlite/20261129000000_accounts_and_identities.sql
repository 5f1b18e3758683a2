-- Accounts across apps. A person is an account; a WeChat user in one app is an identity (appid, openid) of an
-- account. The phone moves from users to the account (at most one account per phone: a unique index), sessions
-- belong to an identity (and through it to its app), and every link, phone move and merge is written to
-- audit_log. The earlier `users` table is migrated in place: each user becomes an identity with the same id (so
-- its sessions keep working), users that share a unionid become one account, and a phone held by several users
-- stays with the one that verified it last (what `phone_conflict = "move"` does from now on).

CREATE TABLE accounts (
    id           TEXT    PRIMARY KEY NOT NULL,  -- acc_ + 24 hex digits: the accountId clients see, never reused
    unionid      TEXT    UNIQUE,
    phone_enc    BLOB,                          -- AES-GCM nonce + ciphertext, sealed to (phone_appid, phone_openid)
    phone_hash   BLOB    UNIQUE,                -- keyed HMAC of the phone: one phone, one account
    phone_appid  TEXT,                          -- the identity that verified the phone (what it is sealed to)
    phone_openid TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    CHECK ((phone_enc IS NULL) = (phone_hash IS NULL)),
    CHECK ((phone_enc IS NULL) = (phone_appid IS NULL)),
    CHECK ((phone_enc IS NULL) = (phone_openid IS NULL))
) STRICT, WITHOUT ROWID; -- rows live in the primary key's b-tree: one b-tree fewer to write per new account

CREATE TABLE identities (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    appid       TEXT    NOT NULL,
    openid      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (appid, openid)
) STRICT;

CREATE INDEX identities_account_id ON identities (account_id);

-- No phone, openid or unionid in clear: people are named by accountId, identities by a keyed hash.
CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    event         TEXT    NOT NULL,  -- identity_linked, phone_moved, accounts_merged, ...
    account_id    TEXT    NOT NULL,
    other_account TEXT,              -- phone_moved: the account that lost the phone; merged: the one merged away
    appid         TEXT,
    subject       BLOB,              -- keyed hash of (appid, openid)
    reason        TEXT               -- unionid, phone, ...
) STRICT;

CREATE INDEX audit_log_account_id ON audit_log (account_id, at);

-- Each user's account: users with the same unionid share the account of the first of them.
CREATE TEMP TABLE migrate_leader AS
    SELECT u.id AS user_id,
           COALESCE((SELECT MIN(v.id) FROM users v WHERE v.unionid = u.unionid), u.id) AS leader
    FROM users u;
CREATE TEMP TABLE migrate_account AS
    SELECT leader, 'acc_' || lower(hex(randomblob(12))) AS account_id
    FROM (SELECT DISTINCT leader FROM migrate_leader);
-- A phone held by several users stays with the one that verified it last.
CREATE TEMP TABLE migrate_phone AS
    SELECT u.id AS user_id FROM users u
    WHERE NOT EXISTS (SELECT 1 FROM users v WHERE v.phone_hash = u.phone_hash
                      AND (v.updated_at > u.updated_at OR (v.updated_at = u.updated_at AND v.id > u.id)));

INSERT INTO accounts (id, unionid, phone_enc, phone_hash, phone_appid, phone_openid, created_at, updated_at)
SELECT a.account_id,
       (SELECT unionid FROM users WHERE id = a.leader),
       p.phone_enc, p.phone_hash, p.appid, p.openid,
       (SELECT MIN(u.created_at) FROM migrate_leader l JOIN users u ON u.id = l.user_id WHERE l.leader = a.leader),
       (SELECT MAX(u.updated_at) FROM migrate_leader l JOIN users u ON u.id = l.user_id WHERE l.leader = a.leader)
FROM migrate_account a
LEFT JOIN users p ON p.id = (
    SELECT u.id FROM migrate_phone w
    JOIN migrate_leader l ON l.user_id = w.user_id
    JOIN users u ON u.id = w.user_id
    WHERE l.leader = a.leader
    ORDER BY u.updated_at DESC, u.id DESC LIMIT 1);

INSERT INTO identities (id, account_id, appid, openid, created_at, updated_at)
SELECT u.id, a.account_id, u.appid, u.openid, u.created_at, u.updated_at
FROM users u
JOIN migrate_leader l ON l.user_id = u.id
JOIN migrate_account a ON a.leader = l.leader;

-- Sessions now name their identity; the ids are the users' ids, so every session stays valid.
CREATE TABLE sessions_by_identity (
    token_hash  BLOB    PRIMARY KEY NOT NULL,
    identity_id INTEGER NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
INSERT INTO sessions_by_identity (token_hash, identity_id, created_at, expires_at)
    SELECT token_hash, user_id, created_at, expires_at FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_by_identity RENAME TO sessions;
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_identity_id ON sessions (identity_id);

DROP TABLE users;
DROP TABLE migrate_leader;
DROP TABLE migrate_account;
DROP TABLE migrate_phone;
