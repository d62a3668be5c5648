// dovecot_template_test.cpp - tests for common/dovecot_template.hpp (Dovecot %-variables).
#include "common/dovecot_template.hpp"

#include <catch2/catch.hpp>

using namespace postern;

namespace {

DovecotVars vars_for(std::string user) {
  DovecotVars v;
  v.user = std::move(user);
  v.service = "smtp";
  v.home = "/var/mail/vhosts/example.com/Email1";
  v.rip = "192.0.2.7";
  v.lip = "198.51.100.1";
  return v;
}

std::string expand_ok(std::string_view tmpl, const DovecotVars& v, const TemplateEscaper& esc = nullptr) {
  auto r = expand_dovecot_template(tmpl, v, esc);
  INFO((r.ok() ? std::string() : r.error().message));
  REQUIRE(r.ok());
  return *r;
}

// SQL-style escaping that makes its effect visible.
Result<std::string> double_quotes(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out;
}

}  // namespace

TEST_CASE("short variables and %%", "[template]") {
  DovecotVars v = vars_for("Email1@Example.com");
  CHECK(expand_ok("%u|%n|%d|%s|%h|%r|%l|100%%", v) ==
        "Email1@Example.com|Email1|Example.com|smtp|/var/mail/vhosts/example.com/Email1|192.0.2.7|198.51.100.1|100%");
  CHECK(expand_ok("no variables", v) == "no variables");
  CHECK(expand_ok("", v).empty());
}

TEST_CASE("%n and %d split at the first '@', as Dovecot's auth does", "[template]") {
  // auth-request-var-expand.c: %n = t_strcut(user, '@'), %d = strchr(user, '@') + 1.
  DovecotVars v = vars_for("a@b@example.com");
  CHECK(expand_ok("%n", v) == "a");
  CHECK(expand_ok("%d", v) == "b@example.com");
  DovecotVars bare = vars_for("postmaster");
  CHECK(expand_ok("[%n][%d]", bare) == "[postmaster][]");
}

TEST_CASE("L and U modifiers, also stacked", "[template]") {
  DovecotVars v = vars_for("Email1@Example.COM");
  CHECK(expand_ok("%Lu", v) == "email1@example.com");
  CHECK(expand_ok("%Ud", v) == "EXAMPLE.COM");
  CHECK(expand_ok("/var/mail/vhosts/%Ld/%Ln", v) == "/var/mail/vhosts/example.com/email1");
  CHECK(expand_ok("%LUn", v) == "EMAIL1");  // applied in order: the last one wins
  CHECK(expand_ok("%L%", v) == "%");
}

TEST_CASE("long forms", "[template]") {
  DovecotVars v = vars_for("Email1@Example.com");
  CHECK(expand_ok("%{user} %{username} %{domain} %{service} %{home} %{rip} %{lip}", v) ==
        "Email1@Example.com Email1 Example.com smtp /var/mail/vhosts/example.com/Email1 192.0.2.7 198.51.100.1");
  CHECK(expand_ok("%L{user}/%U{domain}", v) == "email1@example.com/EXAMPLE.COM");
}

TEST_CASE("width and offset, as var-expand.c", "[template]") {
  DovecotVars v = vars_for("username@example.com");
  CHECK(expand_ok("%1n/%n", v) == "u/username");
  CHECK(expand_ok("%2.1n", v) == "e");
  CHECK(expand_ok("%.2n", v) == "us");
  CHECK(expand_ok("%-2.2n", v) == "me");
  CHECK(expand_ok("%.-2n", v) == "userna");  // a negative width drops from the end
  CHECK(expand_ok("%-2n", v) == "us");       // without '.', the sign means nothing
  CHECK(expand_ok("%01.1n", vars_for("ab@x")) == "b");
  CHECK(expand_ok("%.05n", vars_for("ab@x")) == "000ab");
  CHECK(expand_ok("%1Ln", vars_for("Bob@x")) == "b");
  CHECK(expand_ok("%20n", v) == "username");
}

TEST_CASE("escaping applies to expanded values only", "[template]") {
  DovecotVars v = vars_for("o'brien@example.com");
  CHECK(expand_ok("SELECT password FROM users WHERE email='%u' AND note='it''s'", v, double_quotes) ==
        "SELECT password FROM users WHERE email='o''brien@example.com' AND note='it''s'");
  CHECK(expand_ok("'%n' '%d'", v, double_quotes) == "'o''brien' 'example.com'");
  // Without an escaper the value is copied as is.
  CHECK(expand_ok("'%u'", v) == "'o'brien@example.com'");
}

TEST_CASE("an injection key stays inside the literal", "[template]") {
  DovecotVars v = vars_for("' OR 1=1 --");
  CHECK(expand_ok("WHERE email='%u'", v, double_quotes) == "WHERE email=''' OR 1=1 --'");
}

TEST_CASE("an escaper error propagates", "[template]") {
  DovecotVars v = vars_for("alice@example.com");
  int calls = 0;
  TemplateEscaper failing = [&calls](std::string_view s) -> Result<std::string> {
    ++calls;
    if (s == "example.com") return Error{"connection refused"};
    return std::string(s);
  };
  auto r = expand_dovecot_template("'%n' '%d'", v, failing);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "connection refused");
  CHECK(calls == 2);
}

TEST_CASE("unknown variables and bad syntax are errors, at load and at expansion", "[template]") {
  DovecotVars v = vars_for("alice@example.com");
  for (const char* bad : {"%x", "%{nosuch}", "trailing %", "%L", "%{user", "%w", "%Eu", "%Mu", "%123456789u"}) {
    INFO(bad);
    auto st = check_dovecot_template(bad);
    REQUIRE_FALSE(st.ok());
    CHECK_FALSE(expand_dovecot_template(bad, v).ok());
  }
  CHECK_THAT(check_dovecot_template("WHERE x='%x'").error().message, Catch::Contains("%x"));
  CHECK_THAT(check_dovecot_template("%{nosuch}").error().message, Catch::Contains("%{nosuch}"));
  CHECK_THAT(check_dovecot_template("%Mu").error().message, Catch::Contains("modifier 'M'"));
  for (const char* good : {"%u", "%Lu", "%L{user}", "100%%", "%1n/%n", "%{rip}", "plain"}) {
    INFO(good);
    CHECK(check_dovecot_template(good).ok());
  }
}

TEST_CASE("template key: differs exactly when a variable the template uses differs", "[template]") {
  const char* query = "SELECT password FROM users WHERE email='%u' AND ip='%r'";
  auto key = [&](const char* tmpl, DovecotVars v) {
    auto r = dovecot_template_key(tmpl, v);
    REQUIRE(r.ok());
    return *r;
  };
  DovecotVars a = vars_for("alice@example.com");
  DovecotVars other_ip = a, other_service = a, other_user = a;
  other_ip.rip = "192.0.2.8";
  other_service.service = "imap";
  other_user.user = "bob@example.com";
  CHECK(key(query, a) != key(query, other_ip));
  CHECK(key(query, a) == key(query, other_service));  // %s unused
  CHECK(key(query, a) != key(query, other_user));
  // Modifiers apply first: %Lu keys "Alice" and "alice" alike.
  DovecotVars upper = a;
  upper.user = "Alice@example.com";
  CHECK(key("%Lu", a) == key("%Lu", upper));
  // Values never run into each other or the template's text, and never appear in clear.
  DovecotVars ab = a, a_b = a;
  ab.user = "ab@x";
  a_b.user = "a@bx";
  CHECK(key("%n%d", ab) != key("%n%d", a_b));
  CHECK(key("%u", vars_for("x' OR 1=1")).find('\'') == std::string::npos);
}
