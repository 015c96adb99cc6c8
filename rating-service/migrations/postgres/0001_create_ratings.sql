-- One row per user and record: the primary key is what the upsert conflicts on, and its leading
-- columns (record_type, record_id) are the range an aggregate scans.
CREATE TABLE ratings (
    record_type TEXT        NOT NULL CHECK (char_length(record_type) BETWEEN 1 AND 64),
    record_id   TEXT        NOT NULL CHECK (char_length(record_id) BETWEEN 1 AND 64),
    user_id     TEXT        NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 64),
    value       SMALLINT    NOT NULL CHECK (value BETWEEN 1 AND 5),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (record_type, record_id, user_id)
);
