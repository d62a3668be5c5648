-- The Linode schema and sample data (seed 001), in SQLite. Passwords are SHA512-CRYPT:
-- email1@example.com / firstpassword, email2@example.com / secondpassword.
CREATE TABLE virtual_domains (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name VARCHAR(50) NOT NULL
);
CREATE TABLE virtual_users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  domain_id INTEGER NOT NULL REFERENCES virtual_domains(id) ON DELETE CASCADE,
  password VARCHAR(106) NOT NULL,
  email VARCHAR(100) NOT NULL UNIQUE
);
CREATE TABLE virtual_aliases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  domain_id INTEGER NOT NULL REFERENCES virtual_domains(id) ON DELETE CASCADE,
  source VARCHAR(100) NOT NULL,
  destination VARCHAR(100) NOT NULL
);
INSERT INTO virtual_domains (id, name) VALUES
  (1, 'example.com'), (2, 'hostname.example.com'), (3, 'hostname'), (4, 'localhost.example.com');
INSERT INTO virtual_users (id, domain_id, password, email) VALUES
  (1, 1, '$6$7d2e1a9c4b8f0e35$gqEoC8EwDegdu1dyQncLBYbXimfZoXUrlkm7UvVBStv1i1.vklbGzAyO2JLE0kHPHAjA57o03KUus0b.FHggO1', 'email1@example.com'),
  (2, 1, '$6$3f9b2c7a1e5d8046$kfECBjPNrpAaTQak21KalVfGjYGKl.NLPAJoMHDKYifP.x733.ZiGoOUmTMAb3m.2UyuVDS8s1I.BFLTF3CwJ1', 'email2@example.com');
INSERT INTO virtual_aliases (id, domain_id, source, destination) VALUES
  (1, 1, 'alias@example.com', 'email1@example.com'),
  (2, 1, 'all@example.com', 'email1@example.com'),
  (3, 1, 'all@example.com', 'email2@example.com');
