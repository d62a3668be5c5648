-- Schema A (Linode, seeds [000][001]) with the seed [001] sample data, for MariaDB.
-- Load into the database `mailserver`. The tables are verbatim from the seeds; the
-- ENCRYPT(...) password calls are replaced by fixed SHA512-CRYPT hashes made with
--   openssl passwd -6 -salt 5a9f3c1e7b2d4f60 firstpassword
--   openssl passwd -6 -salt 0c8e2a4b6d1f3e57 secondpassword
-- The rows after "test additions" are not in the seeds.

CREATE TABLE `virtual_domains` (
  `id` int(11) NOT NULL auto_increment,
  `name` varchar(50) NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `virtual_users` (
  `id` int(11) NOT NULL auto_increment,
  `domain_id` int(11) NOT NULL,
  `password` varchar(106) NOT NULL,
  `email` varchar(100) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `email` (`email`),
  FOREIGN KEY (domain_id) REFERENCES virtual_domains(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `virtual_aliases` (
  `id` int(11) NOT NULL auto_increment,
  `domain_id` int(11) NOT NULL,
  `source` varchar(100) NOT NULL,
  `destination` varchar(100) NOT NULL,
  PRIMARY KEY (`id`),
  FOREIGN KEY (domain_id) REFERENCES virtual_domains(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

INSERT INTO `mailserver`.`virtual_domains` (`id` ,`name`) VALUES
  ('1', 'example.com'), ('2', 'hostname.example.com'), ('3', 'hostname'), ('4', 'localhost.example.com');
INSERT INTO `mailserver`.`virtual_users` (`id`, `domain_id`, `password` , `email`) VALUES
  ('1', '1', '$6$5a9f3c1e7b2d4f60$jFrdMErRFO8WXO5Rrqc8mY7uyI2yZQ9VN8EQuWKSPFmE6qExXztim7JBc534IjygRps/aP9qOSIYu8XbYCpxH1', 'email1@example.com'),
  ('2', '1', '$6$0c8e2a4b6d1f3e57$skl6tBEqPGYQPjzPrS.wI7vb7NIO35zpuXoQsY/I4CLwP07Rg.TGLjQhCeS8mYad3aKQqDtGvKmAxFESNTEjr.', 'email2@example.com');
INSERT INTO `mailserver`.`virtual_aliases` (`id`, `domain_id`, `source`, `destination`) VALUES
  ('1', '1', 'alias@example.com', 'email1@example.com');

-- Test additions: a distribution list (two rows, distinct ids, answered in id order)
-- and a catch-all for hostname.example.com.
INSERT INTO `mailserver`.`virtual_aliases` (`id`, `domain_id`, `source`, `destination`) VALUES
  ('2', '1', 'all@example.com', 'email1@example.com'),
  ('3', '1', 'all@example.com', 'email2@example.com'),
  ('4', '2', '@hostname.example.com', 'email2@example.com');
