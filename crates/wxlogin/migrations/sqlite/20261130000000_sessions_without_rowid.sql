-- Sessions are found only by their token hash (and listed by identity or expiry through the two indexes): kept
-- WITHOUT ROWID, a session's row lives in the primary key's b-tree, one b-tree fewer to write per login.
-- Nothing references sessions, so the table is rebuilt in place; every session and its token stay valid.
CREATE TABLE sessions_without_rowid (
    token_hash  BLOB    PRIMARY KEY NOT NULL,
    identity_id INTEGER NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO sessions_without_rowid (token_hash, identity_id, created_at, expires_at)
    SELECT token_hash, identity_id, created_at, expires_at FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_without_rowid RENAME TO sessions;
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_identity_id ON sessions (identity_id);
