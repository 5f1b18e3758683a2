-- meta: facts about the database itself. `data_key_check` is a keyed hash of a fixed label under the data key
-- (never the key): a start with another key is refused instead of answering 500 for every stored user later.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT;

-- A ticket is reserved (until `reserved_until`) by the /api/v1/phone request that redeems a phone code with it, so
-- a second request with the same ticket answers 409 without spending its phone code; `failures` counts phone
-- codes WeChat refused for this ticket (past the cap the ticket is spent).
ALTER TABLE login_tickets ADD COLUMN reserved_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE login_tickets ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
