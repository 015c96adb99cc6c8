-- Demo ratings of movies 1-3 (the metadata service's first films), written once, when a database
-- is created: as a migration it never runs again, so a user's later rating is never overwritten
-- by a restart. The same text serves SQLite and PostgreSQL.
INSERT INTO ratings (record_type, record_id, user_id, value) VALUES
    ('movie', '1', 'alice', 5),
    ('movie', '1', 'bob', 4),
    ('movie', '1', 'carol', 5),
    ('movie', '2', 'alice', 4),
    ('movie', '2', 'bob', 3),
    ('movie', '3', 'carol', 5)
ON CONFLICT DO NOTHING;
