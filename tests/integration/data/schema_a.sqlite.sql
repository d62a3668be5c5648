-- Schema A with the same rows as schema_a.sql, for SQLite (sqlite3 FILE < this).
-- SQLite compares text case-sensitively; the rows are lower case like the seeds', and
-- lookupd folds keys to lower case before querying.
PRAGMA foreign_keys = ON;

CREATE TABLE virtual_domains (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL
);

CREATE TABLE virtual_users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  domain_id INTEGER NOT NULL REFERENCES virtual_domains(id) ON DELETE CASCADE,
  password TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE
);

CREATE TABLE virtual_aliases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  domain_id INTEGER NOT NULL REFERENCES virtual_domains(id) ON DELETE CASCADE,
  source TEXT NOT NULL,
  destination TEXT NOT NULL
);

INSERT INTO virtual_domains (id, name) VALUES
  (1, 'example.com'), (2, 'hostname.example.com'), (3, 'hostname'), (4, 'localhost.example.com');
INSERT INTO virtual_users (id, domain_id, password, email) VALUES
  (1, 1, '$6$5a9f3c1e7b2d4f60$jFrdMErRFO8WXO5Rrqc8mY7uyI2yZQ9VN8EQuWKSPFmE6qExXztim7JBc534IjygRps/aP9qOSIYu8XbYCpxH1', 'email1@example.com'),
  (2, 1, '$6$0c8e2a4b6d1f3e57$skl6tBEqPGYQPjzPrS.wI7vb7NIO35zpuXoQsY/I4CLwP07Rg.TGLjQhCeS8mYad3aKQqDtGvKmAxFESNTEjr.', 'email2@example.com');
INSERT INTO virtual_aliases (id, domain_id, source, destination) VALUES
  (1, 1, 'alias@example.com', 'email1@example.com');

-- Test additions (as in schema_a.sql).
INSERT INTO virtual_aliases (id, domain_id, source, destination) VALUES
  (2, 1, 'all@example.com', 'email1@example.com'),
  (3, 1, 'all@example.com', 'email2@example.com'),
  (4, 2, '@hostname.example.com', 'email2@example.com');
