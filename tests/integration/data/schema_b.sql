-- Schema B (seed [002]: virtual_users has an `enable` column) with the seed's sample
-- data, for MariaDB. Load into the database `mailserver_b`. Fixed hashes from
--   openssl passwd -6 -salt 7f1e3d5c2b4a6980 123456zhangsan
--   openssl passwd -6 -salt 3b5d7f9e1a2c4e68 123456lisi
--   openssl passwd -6 -salt 9e8d7c6b5a4f3e21 123456wangwu
-- Differences from the seed: the second all@ alias row gets id 2 (the seed reuses id 1,
-- which fails), and a disabled user wangwu (enable = 0) is added for the enable=1 query.

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
  `enable` int(1) NOT NULL DEFAULT '1',
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

insert into virtual_domains(id,name) values(1,'mail.mydomain.com');
insert into virtual_domains(id,name) values(2,'mydomain.com');
insert into virtual_users(id,domain_id,password,email) values (1,2,'$6$7f1e3d5c2b4a6980$9oBWXeOluKKNoRInT4oW9HEHNOEN3k0Ily97ghbbriE1cI8jmvJGtiez8LiKFjvVUdkTJZAuwkNo3N8o4vX9L.','zhangsan@mydomain.com');
insert into virtual_users(id,domain_id,password,email) values (2,2,'$6$3b5d7f9e1a2c4e68$u6MshEG66fJql05Gad.iPEdZfAbKlojRb0/4Dugegl1M5.ywbsrmVMRTpKf80CeSYuI9FLKLb.QfyOmfvYeC11','lisi@mydomain.com');
insert into virtual_users(id,domain_id,password,email,enable) values (3,2,'$6$9e8d7c6b5a4f3e21$7wex/sRZZ8zkYqPHrT/MgaUwxnMr5cunwBRVklYPgRChb1zEK64arN5k2zYB4f/eaGL4ppRCa44/xy8Zef2uO0','wangwu@mydomain.com',0);
insert into virtual_aliases(id,domain_id,source,destination) values (1,2,'all@mydomain.com','zhangsan@mydomain.com');
insert into virtual_aliases(id,domain_id,source,destination) values (2,2,'all@mydomain.com','lisi@mydomain.com');
