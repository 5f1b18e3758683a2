-- Web login through the mini program (design.md, "Web login through the mini program"): one row per mini program
-- code shown on a web page. The id is the code's scene, so it is public (it is on a screen); the poll token, the
-- web page's secret, is stored only as its SHA-256. A row lives 120 s, and is purged a while after, so a late
-- poll still reads `expired`; the web's tokens are never stored: the poll that collects them mints them.
CREATE TABLE qr_logins (
    id             TEXT    PRIMARY KEY,
    appid          TEXT    NOT NULL,
    poll_hash      BYTEA   NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('pending', 'scanned', 'confirmed', 'denied')),
    -- The status the web's last poll was answered: a poll waits while nothing changed since.
    reported       TEXT    NOT NULL,
    web_ip         TEXT    NOT NULL,
    web_user_agent TEXT,
    web_origin     TEXT,
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    -- The mini program user who scanned the code: only they can confirm or deny it.
    scanned_appid  TEXT,
    scanned_openid TEXT,
    scanned_at     BIGINT,
    decided_at     BIGINT,
    -- When a poll collected the web's tokens: they are handed out once.
    delivered_at   BIGINT
);
CREATE INDEX qr_logins_expires_at ON qr_logins (expires_at);
