-- One row per user and record: the primary key is what the upsert conflicts on, and its leading
-- columns (record_type, record_id) are the range an aggregate scans. WITHOUT ROWID stores the rows
-- in that key's order; STRICT makes SQLite refuse values of the wrong type.
CREATE TABLE ratings (
    record_type TEXT    NOT NULL CHECK (length(record_type) BETWEEN 1 AND 64),
    record_id   TEXT    NOT NULL CHECK (length(record_id) BETWEEN 1 AND 64),
    user_id     TEXT    NOT NULL CHECK (length(user_id) BETWEEN 1 AND 64),
    value       INTEGER NOT NULL CHECK (value BETWEEN 1 AND 5),
    updated_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (record_type, record_id, user_id)
) STRICT, WITHOUT ROWID;
