// map_source_test.cpp - tests for lookupd/map_source.hpp on the seeds' actual .cf files.
#include "lookupd/map_source.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace postern;
using namespace postern::lookupd;
using namespace std::chrono_literals;

namespace {

using postern::testing::TempDir;

const char* kSeedDomains =
    "user = mailuser\npassword = mailuserpass\nhosts = 127.0.0.1\ndbname = mailserver\n"
    "query = SELECT 1 FROM virtual_domains WHERE name='%s'\n";

Result<MapSource> load_text(const TempDir& dir, const std::string& text, sql::Driver d = sql::Driver::mysql) {
  return load_map_source(dir.write("map.cf", text), d);
}

// Collects what is written to stderr (where log lines go) while it lives.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    file_ = std::tmpfile();
    REQUIRE(file_ != nullptr);
    saved_ = ::dup(2);
    REQUIRE(saved_ >= 0);
    REQUIRE(::dup2(::fileno(file_), 2) == 2);
  }
  ~StderrCapture() {
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    std::fclose(file_);
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  std::string text() const {
    std::fflush(stderr);
    std::string out;
    std::rewind(file_);
    char buf[512];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) out.append(buf, n);
    return out;
  }

 private:
  std::FILE* file_ = nullptr;
  int saved_ = -1;
};

std::string error_of(const Result<MapSource>& r) {
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

}  // namespace

TEST_CASE("map_source: seed 000/001 domains map", "[map_source]") {
  TempDir dir;
  std::string path = dir.write("mysql-virtual-mailbox-domains.cf", kSeedDomains);
  auto r = load_map_source(path, sql::Driver::mysql);
  REQUIRE(r.ok());
  CHECK(r->path == path);
  CHECK(r->endpoint.driver == sql::Driver::mysql);
  CHECK(r->endpoint.user == "mailuser");
  CHECK(r->endpoint.password == "mailuserpass");
  CHECK(r->endpoint.hosts == std::vector<std::string>{"127.0.0.1"});
  CHECK(r->endpoint.dbname == "mailserver");
  CHECK(r->query == "SELECT 1 FROM virtual_domains WHERE name='%s'");
  CHECK(r->result_format == "%s");
  CHECK(r->domains.empty());
  CHECK(r->expansion_limit == 0);
  CHECK(r->endpoint.retry_interval == sql::Endpoint{}.retry_interval);
}

TEST_CASE("map_source: seed 002/003 maps", "[map_source]") {
  TempDir dir;
  auto mailboxes = load_text(dir,
                             "user = mailserver\npassword = mailserver123\nhosts = 127.0.0.1\ndbname = mailserver\n"
                             "query = SELECT 1 FROM virtual_users WHERE enable=1 AND email='%s'\n");
  REQUIRE(mailboxes.ok());
  CHECK(mailboxes->query == "SELECT 1 FROM virtual_users WHERE enable=1 AND email='%s'");
  auto aliases = load_text(dir,
                           "user = mailrl\npassword = mail.rockylinux.me\nhosts = 192.168.100.5\ndbname = mailserver\n"
                           "query = SELECT destination FROM virtual_aliases WHERE source='%s'\n");
  REQUIRE(aliases.ok());
  CHECK(aliases->endpoint.password == "mail.rockylinux.me");
  CHECK(aliases->endpoint.hosts == std::vector<std::string>{"192.168.100.5"});
}

TEST_CASE("map_source: a query continued on the next line", "[map_source]") {
  TempDir dir;
  auto r = load_text(dir, "dbname = d\nquery = SELECT destination\n    FROM virtual_aliases WHERE source='%s'\n");
  REQUIRE(r.ok());
  CHECK(r->query == "SELECT destination FROM virtual_aliases WHERE source='%s'");
}

TEST_CASE("map_source: the legacy form is refused", "[map_source]") {
  TempDir dir;
  std::string path = dir.write("legacy.cf", "dbname = d\ntable = aliases\nselect_field = forw_addr\nwhere_field = alias\n");
  auto r = load_map_source(path, sql::Driver::mysql);
  CHECK(error_of(r) == path +
                           ": the legacy select_field/table/where_field form is not supported; write it as "
                           "query = SELECT ...");
  // One legacy key is enough to recognise it.
  CHECK(error_of(load_text(dir, "dbname = d\ntable = aliases\n")).find("legacy") != std::string::npos);
  // With a query present, Postfix ignores the legacy keys, and so do we.
  CHECK(load_text(dir, "dbname = d\ntable = x\nquery = SELECT 1\n").ok());
}

TEST_CASE("map_source: required parameters", "[map_source]") {
  TempDir dir;
  CHECK(error_of(load_text(dir, "dbname = d\n")).find("query is required") != std::string::npos);
  CHECK(error_of(load_text(dir, "dbname = d\nquery =\n")).find("query is empty") != std::string::npos);
  CHECK(error_of(load_text(dir, "query = SELECT 1\n")).find("dbname") != std::string::npos);
  CHECK(error_of(load_map_source("/nonexistent/dir/x.cf", sql::Driver::mysql)).find("/nonexistent/dir/x.cf") !=
        std::string::npos);
}

TEST_CASE("map_source: templates are checked at load", "[map_source]") {
  TempDir dir;
  std::string e = error_of(load_text(dir, "dbname = d\nquery = SELECT 1 WHERE a='%x'\n"));
  CHECK(e.find("query") != std::string::npos);
  CHECK(e.find("%x") != std::string::npos);
  CHECK(error_of(load_text(dir, "dbname = d\nquery = SELECT 1\nresult_format = %n\n")).find("result_format") !=
        std::string::npos);
  auto ok = load_text(dir, "dbname = d\nquery = SELECT t FROM x WHERE d='%d' AND u='%u'\nresult_format = smtp:[%s]\n");
  REQUIRE(ok.ok());
  CHECK(ok->result_format == "smtp:[%s]");
}

TEST_CASE("map_source: hosts list forms", "[map_source]") {
  TempDir dir;
  auto spaces = load_text(dir, "dbname = d\nquery = SELECT 1\nhosts = host1.some.domain host2.some.domain:3307\n");
  REQUIRE(spaces.ok());
  CHECK(spaces->endpoint.hosts == std::vector<std::string>{"host1.some.domain", "host2.some.domain:3307"});
  auto mixed = load_text(dir, "dbname = d\nquery = SELECT 1\nhosts = inet:db1, unix:/run/mysqld/mysqld.sock,db2\n");
  REQUIRE(mixed.ok());
  CHECK(mixed->endpoint.hosts == std::vector<std::string>{"inet:db1", "unix:/run/mysqld/mysqld.sock", "db2"});
  // mysql_table(5): no hosts means localhost.
  auto none = load_text(dir, "dbname = d\nquery = SELECT 1\n");
  REQUIRE(none.ok());
  CHECK(none->endpoint.hosts == std::vector<std::string>{"localhost"});
}

TEST_CASE("map_source: expansion_limit and retry_interval", "[map_source]") {
  TempDir dir;
  auto r = load_text(dir, "dbname = d\nquery = SELECT 1\nexpansion_limit = 1\nretry_interval = 30\n");
  REQUIRE(r.ok());
  CHECK(r->expansion_limit == 1);
  CHECK(r->endpoint.retry_interval == 30s);
  auto m = load_text(dir, "dbname = d\nquery = SELECT 1\nretry_interval = 2m\n");
  REQUIRE(m.ok());
  CHECK(m->endpoint.retry_interval == 120s);
  CHECK_FALSE(load_text(dir, "dbname = d\nquery = SELECT 1\nexpansion_limit = -1\n").ok());
  CHECK_FALSE(load_text(dir, "dbname = d\nquery = SELECT 1\nexpansion_limit = many\n").ok());
  CHECK_FALSE(load_text(dir, "dbname = d\nquery = SELECT 1\nretry_interval = soon\n").ok());
}

TEST_CASE("map_source: domain list with names and files", "[map_source]") {
  TempDir dir;
  std::string file = dir.write("domains", "# hosted domains\nExample.org\n  example.net  # second\n\nb.example, c.example\n");
  auto r = load_text(dir, "dbname = d\nquery = SELECT 1\ndomain = Example.COM, " + file + " d.example\n");
  REQUIRE(r.ok());
  CHECK(r->domains ==
        std::vector<std::string>{"example.com", "example.org", "example.net", "b.example", "c.example", "d.example"});
}

TEST_CASE("map_source: domain list errors", "[map_source]") {
  TempDir dir;
  std::string e = error_of(load_text(dir, "dbname = d\nquery = SELECT 1\ndomain = a.example, hash:/etc/postfix/d\n"));
  CHECK(e.find("hash:/etc/postfix/d") != std::string::npos);
  CHECK(e.find("not supported") != std::string::npos);
  CHECK_FALSE(load_text(dir, "dbname = d\nquery = SELECT 1\ndomain = !a.example, b.example\n").ok());
  CHECK(error_of(load_text(dir, "dbname = d\nquery = SELECT 1\ndomain = /nonexistent/domains\n"))
            .find("/nonexistent/domains") != std::string::npos);
  // A list that names nothing would skip every key in Postfix: refused rather than ignored.
  std::string empty = dir.write("empty", "# nothing yet\n");
  CHECK(error_of(load_text(dir, "dbname = d\nquery = SELECT 1\ndomain = " + empty + "\n")).find("no domains") !=
        std::string::npos);
  // A file that lists itself stops.
  std::string loop = dir.write("loop", "");
  dir.write("loop", loop + "\n");
  CHECK_FALSE(load_text(dir, "dbname = d\nquery = SELECT 1\ndomain = " + loop + "\n").ok());
}

TEST_CASE("map_source: parameters that do not change answers are accepted", "[map_source]") {
  TempDir dir;
  auto r = load_text(dir, "dbname = d\nquery = SELECT 1\nidle_interval = 60\ncharset = utf8mb4\n");
  CHECK(r.ok());
}

TEST_CASE("map_source: TLS settings are refused, not silently dropped", "[map_source]") {
  TempDir dir;
  for (const char* key : {"tls_CAfile", "tls_CApath", "tls_cert_file", "tls_key_file", "tls_ciphers"}) {
    INFO(key);
    std::string path = dir.write("tls.cf", std::string("dbname = d\nquery = SELECT 1\n") + key + " = /etc/ssl/x\n");
    std::string e = error_of(load_map_source(path, sql::Driver::mysql));
    CHECK_THAT(e, Catch::StartsWith(path + ": TLS to the database (tls_*) is not supported yet; "));
    CHECK_THAT(e, Catch::Contains(key));
    CHECK_THAT(e, Catch::Contains("cleartext"));
  }
  CHECK_THAT(error_of(load_text(dir, "dbname = d\nquery = SELECT 1\ntls_verify_cert = yes\n")),
             Catch::Contains("tls_verify_cert"));
  // "no" only relaxes a check on a session we never start...
  CHECK(load_text(dir, "dbname = d\nquery = SELECT 1\ntls_verify_cert = no\n").ok());
  // ...but does not excuse a key that asks for TLS.
  CHECK_THAT(error_of(load_text(dir, "dbname = d\nquery = SELECT 1\ntls_verify_cert = no\ntls_CAfile = /ca.pem\n")),
             Catch::Contains("tls_CAfile"));
  // An empty value asks for nothing.
  CHECK(load_text(dir, "dbname = d\nquery = SELECT 1\ntls_CAfile =\ntls_cert_file =\n").ok());
  CHECK_FALSE(load_text(dir, "dbname = d\nquery = SELECT 1\ntls_verify_cert = maybe\n").ok());
}

TEST_CASE("map_source: option files are refused; option_group is a warning", "[map_source]") {
  TempDir dir;
  std::string e = error_of(load_text(dir, "dbname = d\nquery = SELECT 1\noption_file = /etc/my.cnf\n"));
  CHECK_THAT(e, Catch::Contains("option_file"));
  CHECK_THAT(e, Catch::Contains("not supported"));

  std::string warnings;
  {
    StderrCapture capture;
    CHECK(load_text(dir, "dbname = d\nquery = SELECT 1\noption_group = client\n").ok());
    warnings = capture.text();
  }
  CHECK_THAT(warnings, Catch::Contains("option_group"));
  CHECK_THAT(warnings, Catch::Contains("not read"));
  // An empty group is how Postfix is told not to read option files: nothing to warn about.
  {
    StderrCapture capture;
    CHECK(load_text(dir, "dbname = d\nquery = SELECT 1\noption_group =\n").ok());
    warnings = capture.text();
  }
  CHECK(warnings.find("option_group") == std::string::npos);
}

TEST_CASE("map_source: require_result_set", "[map_source]") {
  TempDir dir;
  auto dflt = load_text(dir, "dbname = d\nquery = SELECT 1\n");
  REQUIRE(dflt.ok());
  CHECK(dflt->require_result_set);
  auto no = load_text(dir, "dbname = d\nquery = CALL aliases('%s')\nrequire_result_set = no\n");
  REQUIRE(no.ok());
  CHECK_FALSE(no->require_result_set);
  auto yes = load_text(dir, "dbname = d\nquery = SELECT 1\nrequire_result_set = yes\n");
  REQUIRE(yes.ok());
  CHECK(yes->require_result_set);
  CHECK_THAT(error_of(load_text(dir, "dbname = d\nquery = SELECT 1\nrequire_result_set = sometimes\n")),
             Catch::Contains("require_result_set"));
  auto sqlite = load_text(dir, "dbpath = /x.sqlite\nquery = SELECT 1\nrequire_result_set = no\n", sql::Driver::sqlite);
  REQUIRE(sqlite.ok());
  CHECK_FALSE(sqlite->require_result_set);
}

TEST_CASE("map_source: sqlite dbpath", "[map_source]") {
  TempDir dir;
  auto r = load_text(dir, "dbpath = /var/lib/postfix/maps.sqlite\nquery = SELECT v FROM t WHERE k='%s'\n",
                     sql::Driver::sqlite);
  REQUIRE(r.ok());
  CHECK(r->endpoint.driver == sql::Driver::sqlite);
  CHECK(r->endpoint.dbname == "/var/lib/postfix/maps.sqlite");
  CHECK(r->endpoint.hosts.empty());
  CHECK(r->query == "SELECT v FROM t WHERE k='%s'");
  CHECK(error_of(load_text(dir, "query = SELECT 1\n", sql::Driver::sqlite)).find("dbpath") != std::string::npos);
  // A mysql file does not need dbpath, and a sqlite file does not need dbname.
  CHECK(load_text(dir, "dbpath = /x.sqlite\nquery = SELECT 1\n", sql::Driver::sqlite).ok());
}
