// config_file_dovecot_test.cpp - tests for common/config_file.hpp's Dovecot .conf.ext
// dialect (ConfigDialect::dovecot): comments, quoting, continuation, !include.
#include "common/config_file.hpp"

#include "tests/unit/common/config_file_test_support.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace postern;
using namespace config_test;
using namespace std::string_literals;

namespace {

ConfigFile parse_dovecot_ok(std::string_view text, std::string origin = "dovecot-sql.conf.ext") {
  auto r = ConfigFile::parse(text, std::move(origin), ConfigDialect::dovecot);
  INFO((r.ok() ? std::string() : r.error().message));
  REQUIRE(r.ok());
  return std::move(r).value();
}

std::string parse_dovecot_error(std::string_view text) {
  auto r = ConfigFile::parse(text, "dovecot-sql.conf.ext", ConfigDialect::dovecot);
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

// Seed 000's complete /etc/dovecot/dovecot-sql.conf.ext, verbatim, with the four-space
// indentation the tutorial prints it with.
const char* kSeed000SqlConf = R"SEED(    # This file is opened as root, so it should be owned by root and mode 0600.
    #
    # http://wiki2.dovecot.org/AuthDatabase/SQL
    #
    # For the sql passdb module, you'll need a database with a table that
    # contains fields for at least the username and password. If you want to
    # use the user@domain syntax, you might want to have a separate domain
    # field as well.
    #
    # If your users all have the same uig/gid, and have predictable home
    # directories, you can use the static userdb module to generate the home
    # dir based on the username and domain. In this case, you won't need fields
    # for home, uid, or gid in the database.
    #
    # If you prefer to use the sql userdb module, you'll want to add fields
    # for home, uid, and gid. Here is an example table:
    #
    # CREATE TABLE users (
    #     username VARCHAR(128) NOT NULL,
    #     domain VARCHAR(128) NOT NULL,
    #     password VARCHAR(64) NOT NULL,
    #     home VARCHAR(255) NOT NULL,
    #     uid INTEGER NOT NULL,
    #     gid INTEGER NOT NULL,
    #     active CHAR(1) DEFAULT 'Y' NOT NULL
    # );
    
    # Database driver: mysql, pgsql, sqlite
    driver = mysql
    
    # Database connection string. This is driver-specific setting.
    #
    # HA / round-robin load-balancing is supported by giving multiple host
    # settings, like: host=sql1.host.org host=sql2.host.org
    #
    # pgsql:
    #   For available options, see the PostgreSQL documention for the
    #   PQconnectdb function of libpq.
    #   Use maxconns=n (default 5) to change how many connections Dovecot can
    #   create to pgsql.
    #
    # mysql:
    #   Basic options emulate PostgreSQL option names:
    #     host, port, user, password, dbname
    #
    #   But also adds some new settings:
    #     client_flags        - See MySQL manual
    #     ssl_ca, ssl_ca_path - Set either one or both to enable SSL
    #     ssl_cert, ssl_key   - For sending client-side certificates to server
    #     ssl_cipher          - Set minimum allowed cipher security (default: HIGH)
    #     option_file         - Read options from the given file instead of
    #                           the default my.cnf location
    #     option_group        - Read options from the given group (default: client)
    # 
    #   You can connect to UNIX sockets by using host: host=/var/run/mysql.sock
    #   Note that currently you can't use spaces in parameters.
    #
    # sqlite:
    #   The path to the database file.
    #
    # Examples:
    #   connect = host=192.168.1.1 dbname=users
    #   connect = host=sql.example.com dbname=virtual user=virtual password=blarg
    #   connect = /etc/dovecot/authdb.sqlite
    #
    connect = host=127.0.0.1 dbname=mailserver user=mailuser password=mailuserpass
    
    # Default password scheme.
    #
    # List of supported schemes is in
    # http://wiki2.dovecot.org/Authentication/PasswordSchemes
    #
    default_pass_scheme = SHA512-CRYPT
    
    # passdb query to retrieve the password. It can return fields:
    #   password - The user's password. This field must be returned.
    #   user - user@domain from the database. Needed with case-insensitive lookups.
    #   username and domain - An alternative way to represent the "user" field.
    #
    # The "user" field is often necessary with case-insensitive lookups to avoid
    # e.g. "name" and "nAme" logins creating two different mail directories. If
    # your user and domain names are in separate fields, you can return "username"
    # and "domain" fields instead of "user".
    #
    # The query can also return other fields which have a special meaning, see
    # http://wiki2.dovecot.org/PasswordDatabase/ExtraFields
    #
    # Commonly used available substitutions (see http://wiki2.dovecot.org/Variables
    # for full list):
    #   %u = entire user@domain
    #   %n = user part of user@domain
    #   %d = domain part of user@domain
    # 
    # Note that these can be used only as input to SQL query. If the query outputs
    # any of these substitutions, they're not touched. Otherwise it would be
    # difficult to have eg. usernames containing '%' characters.
    #
    # Example:
    #   password_query = SELECT userid AS user, pw AS password \
    #     FROM users WHERE userid = '%u' AND active = 'Y'
    #
    #password_query = \
    #  SELECT username, domain, password \
    #  FROM users WHERE username = '%n' AND domain = '%d'
    password_query = SELECT email as user, password FROM virtual_users WHERE email='%u';
    
    # userdb query to retrieve the user information. It can return fields:
    #   uid - System UID (overrides mail_uid setting)
    #   gid - System GID (overrides mail_gid setting)
    #   home - Home directory
    #   mail - Mail location (overrides mail_location setting)
    #
    # None of these are strictly required. If you use a single UID and GID, and
    # home or mail directory fits to a template string, you could use userdb static
    # instead. For a list of all fields that can be returned, see
    # http://wiki2.dovecot.org/UserDatabase/ExtraFields
    #
    # Examples:
    #   user_query = SELECT home, uid, gid FROM users WHERE userid = '%u'
    #   user_query = SELECT dir AS home, user AS uid, group AS gid FROM users where userid = '%u'
    #   user_query = SELECT home, 501 AS uid, 501 AS gid FROM users WHERE userid = '%u'
    #
    #user_query = \
    #  SELECT home, uid, gid \
    #  FROM users WHERE username = '%n' AND domain = '%d'
    
    # If you wish to avoid two SQL lookups (passdb + userdb), you can use
    # userdb prefetch instead of userdb sql in dovecot.conf. In that case you'll
    # also have to return userdb fields in password_query prefixed with "userdb_"
    # string. For example:
    #password_query = \
    #  SELECT userid AS user, password, \
    #    home AS userdb_home, uid AS userdb_uid, gid AS userdb_gid \
    #  FROM users WHERE userid = '%u'
    
    # Query to get a list of all usernames.
    #iterate_query = SELECT username AS user FROM users
    
)SEED";


}  // namespace

TEST_CASE("dovecot: seed 000's dovecot-sql.conf.ext yields only its four active lines", "[config][dovecot]") {
  ConfigFile cf = parse_dovecot_ok(kSeed000SqlConf);
  CHECK(cf.keys() == std::vector<std::string>{"driver", "connect", "default_pass_scheme", "password_query"});
  CHECK(cf.get("driver") == "mysql");
  CHECK(cf.get("connect") == "host=127.0.0.1 dbname=mailserver user=mailuser password=mailuserpass");
  CHECK(cf.get("default_pass_scheme") == "SHA512-CRYPT");
  CHECK(cf.get("password_query") == "SELECT email as user, password FROM virtual_users WHERE email='%u';");
  // The commented-out multi-line queries (each line starts with '#') must not leak in.
  CHECK_FALSE(cf.has("user_query"));
  CHECK_FALSE(cf.has("iterate_query"));
  CHECK(cf.line_of("driver") == 29);
  CHECK(cf.line_of("password_query") == 105);
}

TEST_CASE("dovecot: the same file without indentation parses the same", "[config][dovecot]") {
  std::string text;
  std::istringstream in(kSeed000SqlConf);
  for (std::string line; std::getline(in, line);) text += (line.rfind("    ", 0) == 0 ? line.substr(4) : line) + "\n";
  ConfigFile cf = parse_dovecot_ok(text);
  CHECK(cf.keys().size() == 4);
  CHECK(cf.get("connect") == "host=127.0.0.1 dbname=mailserver user=mailuser password=mailuserpass");
}

TEST_CASE("dovecot: backslash continuation joins with one space", "[config][dovecot]") {
  ConfigFile cf = parse_dovecot_ok(
      "driver = sqlite\n"
      "password_query = \\\n"
      "  SELECT username, domain, password \\\n"
      "\n"
      "  # a comment line inside the continuation is skipped, as Dovecot does\n"
      "  FROM users WHERE username = '%n' AND domain = '%d'\n"
      "user_query = SELECT home\t\\\n"
      "\tFROM users   \n");
  CHECK(cf.get("password_query") == "SELECT username, domain, password FROM users WHERE username = '%n' AND domain = '%d'");
  CHECK(cf.line_of("password_query") == 2);
  CHECK(cf.get("user_query") == "SELECT home FROM users");
  CHECK(cf.get("driver") == "sqlite");
}

TEST_CASE("dovecot: '#' comments after values, but not inside quotes", "[config][dovecot]") {
  ConfigFile cf = parse_dovecot_ok(
      "a = value # trailing comment\n"
      "b = value#glued\n"
      "password_query = SELECT password FROM t WHERE tag = '#1' AND x = \"#2\" # c\n"
      "c = it's # unbalanced quote: the rest is not scanned\n");
  CHECK(cf.get("a") == "value");
  CHECK(cf.get("b") == "value");  // Dovecot warns but still cuts here
  CHECK(cf.get("password_query") == "SELECT password FROM t WHERE tag = '#1' AND x = \"#2\"");
  CHECK(cf.get("c") == "it's # unbalanced quote: the rest is not scanned");
}

TEST_CASE("dovecot: quoted values lose their quotes and backslashes", "[config][dovecot]") {
  ConfigFile cf = parse_dovecot_ok(
      "a = \"  spaced value  \"\n"
      "b = 'single'\n"
      "c = \"with \\\"escaped\\\" quote and back\\\\slash\"\n"
      "d = \"only\" at start\n"
      "e = \"\"\n"
      "f=g=h\n"
      "empty =\n"
      "crlf = yes\r\n");
  CHECK(cf.get("a") == "  spaced value  ");
  CHECK(cf.get("b") == "single");
  CHECK(cf.get("c") == "with \"escaped\" quote and back\\slash");
  CHECK(cf.get("d") == "\"only\" at start");
  CHECK(cf.has("e"));
  CHECK(cf.get("e", "x").empty());
  CHECK(cf.get("f") == "g=h");
  CHECK(cf.has("empty"));
  CHECK(cf.get("crlf") == "yes");
}

TEST_CASE("dovecot: a later duplicate wins; keys are case-sensitive", "[config][dovecot]") {
  ConfigFile cf = parse_dovecot_ok("driver = mysql\nDriver = pgsql\ndriver = sqlite\n");
  CHECK(cf.get("driver") == "sqlite");
  CHECK(cf.get("Driver") == "pgsql");
  CHECK(cf.line_of("driver") == 3);
  CHECK(cf.keys() == std::vector<std::string>{"driver", "Driver"});
}

TEST_CASE("dovecot: syntax errors", "[config][dovecot]") {
  CHECK_THAT(parse_dovecot_error("driver = mysql\npassdb {\n  driver = sql\n}\n"),
             Catch::StartsWith("dovecot-sql.conf.ext line 2: ") && Catch::Contains("sections"));
  CHECK_THAT(parse_dovecot_error("}\n"), Catch::Contains("sections"));
  std::string no_eq = parse_dovecot_error("\n\npassword s3cret\n");
  CHECK_THAT(no_eq, Catch::StartsWith("dovecot-sql.conf.ext line 3: ") && Catch::Contains("missing '='"));
  CHECK_THAT(no_eq, !Catch::Contains("s3cret"));
  CHECK_THAT(parse_dovecot_error("= value\n"), Catch::Contains("missing name"));
  CHECK_THAT(parse_dovecot_error("a = b\npassword_query = SELECT \\\n"),
             Catch::StartsWith("dovecot-sql.conf.ext line 2: ") && Catch::Contains("continued"));
  CHECK_THAT(parse_dovecot_error("password = $ENV:DBPASS\n"), Catch::Contains("$ENV:"));
  CHECK_THAT(parse_dovecot_error("a = b\0c\n"s), Catch::Contains("NUL"));
  // Quoted, "$ENV:" is plain text.
  CHECK(parse_dovecot_ok("password = \"$ENV:x\"\n").get("password") == "$ENV:x");
}

TEST_CASE("dovecot: the Postfix dialect is unchanged by the new one", "[config][dovecot]") {
  // Indented lines continue in Postfix files but are ordinary lines in Dovecot files.
  std::string text = "hosts = a\n  b = c\n";
  CHECK(parse_ok(text).get("hosts") == "a b = c");
  ConfigFile dv = parse_dovecot_ok(text);
  CHECK(dv.get("hosts") == "a");
  CHECK(dv.get("b") == "c");
}

TEST_CASE("dovecot: !include and !include_try, relative to the including file", "[config][dovecot]") {
  postern::testing::TempDir dir;
  std::filesystem::create_directory(dir.path + "/conf.d");
  dir.write("conf.d/10-a.conf.ext", "connect = host=db1 dbname=mail\n");
  dir.write("conf.d/20-b.conf.ext", "default_pass_scheme = SHA512-CRYPT\n");
  dir.write("secret.ext", "driver = mysql\n");
  std::string main = dir.write("dovecot-sql.conf.ext",
                               "!include secret.ext\n"
                               "!include conf.d/*.conf.ext\n"
                               "!include_try missing.ext\n"
                               "!include_try nothing-*.ext\n"
                               "default_pass_scheme = BLF-CRYPT\n");
  auto cf = ConfigFile::load(main, ConfigDialect::dovecot);
  INFO((cf.ok() ? std::string() : cf.error().message));
  REQUIRE(cf.ok());
  CHECK(cf->get("driver") == "mysql");
  CHECK(cf->get("connect") == "host=db1 dbname=mail");
  CHECK(cf->get("default_pass_scheme") == "BLF-CRYPT");  // the later line in the main file wins
  CHECK(cf->keys() == std::vector<std::string>{"driver", "connect", "default_pass_scheme"});

  std::string missing = dir.write("m.ext", "a = b\n!include missing.ext\n");
  auto bad = ConfigFile::load(missing, ConfigDialect::dovecot);
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message, Catch::StartsWith(missing + " line 2: ") && Catch::Contains("missing.ext"));

  // An error inside an included file names that file and its line.
  dir.write("broken.ext", "ok = 1\nbroken\n");
  std::string outer = dir.write("outer.ext", "!include broken.ext\n");
  auto nested = ConfigFile::load(outer, ConfigDialect::dovecot);
  REQUIRE_FALSE(nested.ok());
  CHECK_THAT(nested.error().message, Catch::Contains(dir.path + "/broken.ext line 2: "));

  std::string loop = dir.write("loop.ext", "a = 1\n!include loop.ext\n");
  auto cyclic = ConfigFile::load(loop, ConfigDialect::dovecot);
  REQUIRE_FALSE(cyclic.ok());
  CHECK_THAT(cyclic.error().message, Catch::Contains("recursive"));
}
