-- WeChat message pushes already handled (design.md, "Personal data and operations"): the SHA-256 of a delivery's
-- signed parameters (appid, signature or msg_signature, timestamp, nonce), kept while its timestamp is within the
-- accepted window. The same delivery again is a replay: refused, and nothing changes. Nothing personal is kept.
CREATE TABLE wechat_pushes (
    digest     BYTEA  PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX wechat_pushes_expires_at ON wechat_pushes (expires_at);
