-- Schema B (seed [002], `enable` column) with the same rows as schema_b.sql, for SQLite.
PRAGMA foreign_keys = ON;

CREATE TABLE virtual_domains (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL
);

CREATE TABLE virtual_users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  domain_id INTEGER NOT NULL REFERENCES virtual_domains(id) ON DELETE CASCADE,
  password TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE,
  enable INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE virtual_aliases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  domain_id INTEGER NOT NULL REFERENCES virtual_domains(id) ON DELETE CASCADE,
  source TEXT NOT NULL,
  destination TEXT NOT NULL
);

INSERT INTO virtual_domains (id, name) VALUES (1, 'mail.mydomain.com'), (2, 'mydomain.com');
INSERT INTO virtual_users (id, domain_id, password, email) VALUES
  (1, 2, '$6$7f1e3d5c2b4a6980$9oBWXeOluKKNoRInT4oW9HEHNOEN3k0Ily97ghbbriE1cI8jmvJGtiez8LiKFjvVUdkTJZAuwkNo3N8o4vX9L.', 'zhangsan@mydomain.com'),
  (2, 2, '$6$3b5d7f9e1a2c4e68$u6MshEG66fJql05Gad.iPEdZfAbKlojRb0/4Dugegl1M5.ywbsrmVMRTpKf80CeSYuI9FLKLb.QfyOmfvYeC11', 'lisi@mydomain.com');
INSERT INTO virtual_users (id, domain_id, password, email, enable) VALUES
  (3, 2, '$6$9e8d7c6b5a4f3e21$7wex/sRZZ8zkYqPHrT/MgaUwxnMr5cunwBRVklYPgRChb1zEK64arN5k2zYB4f/eaGL4ppRCa44/xy8Zef2uO0', 'wangwu@mydomain.com', 0);
INSERT INTO virtual_aliases (id, domain_id, source, destination) VALUES
  (1, 2, 'all@mydomain.com', 'zhangsan@mydomain.com'),
  (2, 2, 'all@mydomain.com', 'lisi@mydomain.com');
