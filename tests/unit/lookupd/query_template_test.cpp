// query_template_test.cpp - tests for lookupd/query_template.hpp (mysql_table(5) expansions).
#include "lookupd/query_template.hpp"

#include <catch2/catch.hpp>

using namespace postern;
using namespace postern::lookupd;

namespace {

// Marks every expansion so the tests can see exactly what went through the escaper.
const Escaper kBrackets = [](std::string_view s) -> Result<std::string> { return "[" + std::string(s) + "]"; };
// Doubles single quotes, as SQLite (and standard SQL) quoting does.
const Escaper kDoubleQuotes = [](std::string_view s) -> Result<std::string> {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out;
};

std::optional<std::string> q(std::string_view tmpl, std::string_view key, const Escaper& esc = kBrackets) {
  auto r = expand_query(tmpl, key, esc);
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE("query: %s %u %d on a full address", "[query_template]") {
  CHECK(q("%s", "user@example.com") == "[user@example.com]");
  CHECK(q("%u", "user@example.com") == "[user]");
  CHECK(q("%d", "user@example.com") == "[example.com]");
  CHECK(q("SELECT x FROM t WHERE u='%u' AND d='%d'", "a@b.c") == "SELECT x FROM t WHERE u='[a]' AND d='[b.c]'");
}

TEST_CASE("query: upper-case forms equal their lower-case counterparts", "[query_template]") {
  CHECK(q("%S|%U|%D", "User@Example.com") == "[User@Example.com]|[User]|[Example.com]");
}

TEST_CASE("query: %% is a literal percent and is not escaped", "[query_template]") {
  CHECK(q("LIKE '%%%s%%'", "x") == "LIKE '%[x]%'");
  CHECK(q("100%%", "x") == "100%");
}

TEST_CASE("query: the address splits at the last @", "[query_template]") {
  CHECK(q("%u|%d", "a@b@example.com") == "[a@b]|[example.com]");
}

TEST_CASE("query: %u without @ is the whole key", "[query_template]") {
  CHECK(q("%u", "example.com") == "[example.com]");
}

TEST_CASE("query: suppression cases", "[query_template]") {
  // Empty local part with %u or %U.
  CHECK_FALSE(q("%u", "@example.com").has_value());
  CHECK_FALSE(q("%U", "@example.com").has_value());
  // ... but %s alone and %d are fine on a catch-all key.
  CHECK(q("%s", "@example.com") == "[@example.com]");
  CHECK(q("%d", "@example.com") == "[example.com]");
  // %d / %D / %1 need an @ and a non-empty domain.
  CHECK_FALSE(q("%d", "example.com").has_value());
  CHECK_FALSE(q("%D", "example.com").has_value());
  CHECK_FALSE(q("%d", "user@").has_value());
  CHECK_FALSE(q("%1", "example.com").has_value());
  // A need anywhere in the template suppresses the whole query.
  CHECK_FALSE(q("%s %d", "user").has_value());
  // Postfix never queries for an empty key.
  CHECK_FALSE(q("%s", "").has_value());
  CHECK_FALSE(q("SELECT 1", "").has_value());
}

TEST_CASE("query: %1..%9 count domain labels from the right", "[query_template]") {
  CHECK(q("%1", "u@mail.example.com") == "[com]");
  CHECK(q("%2", "u@mail.example.com") == "[example]");
  CHECK(q("%3", "u@mail.example.com") == "[mail]");
  CHECK(q("%3.%2.%1", "u@mail.example.com") == "[mail].[example].[com]");
  // Not enough labels for the highest index: suppressed, even for %1 in the same template.
  CHECK_FALSE(q("%1 %4", "u@mail.example.com").has_value());
  CHECK_FALSE(q("%2", "u@localhost").has_value());
  // An empty label among the needed ones is not silently skipped.
  CHECK_FALSE(q("%1", "u@example.com.").has_value());
  CHECK_FALSE(q("%2", "u@example..com").has_value());
  CHECK(q("%1", "u@example..com") == "[com]");
}

TEST_CASE("query: text outside expansions is not escaped", "[query_template]") {
  CHECK(q("SELECT 'it''s' WHERE a='%s'", "k") == "SELECT 'it''s' WHERE a='[k]'");
  CHECK(q("SELECT 1", "key") == "SELECT 1");
}

TEST_CASE("query: an injection attempt stays inside the quotes", "[query_template]") {
  auto r = q("SELECT 1 FROM virtual_domains WHERE name='%s'", "' OR 1=1 --", kDoubleQuotes);
  CHECK(r == "SELECT 1 FROM virtual_domains WHERE name=''' OR 1=1 --'");
  // Every expansion is escaped, not just %s.
  CHECK(q("'%u' '%d'", "o'brien@ex'ample.com", kDoubleQuotes) == "'o''brien' 'ex''ample.com'");
}

TEST_CASE("query: escaper failure is an error", "[query_template]") {
  Escaper failing = [](std::string_view) -> Result<std::string> { return Error{"no connection"}; };
  auto r = expand_query("x='%s'", "k", failing);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("no connection") != std::string::npos);
  // A template without expansions never needs the escaper.
  auto plain = expand_query("SELECT 1", "k", failing);
  REQUIRE(plain.ok());
  CHECK(*plain == "SELECT 1");
}

TEST_CASE("query: an unknown %x is an error", "[query_template]") {
  auto r = expand_query("WHERE a='%x'", "k", kBrackets);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("%x") != std::string::npos);
  CHECK_FALSE(expand_query("trailing %", "k", kBrackets).ok());
  CHECK_FALSE(expand_query("%0", "k", kBrackets).ok());
}

TEST_CASE("check_template accepts every documented expansion and rejects others", "[query_template]") {
  CHECK(check_template("%% %s %u %d %S %U %D %1 %2 %3 %4 %5 %6 %7 %8 %9").ok());
  CHECK(check_template("SELECT 1").ok());
  CHECK_FALSE(check_template("%n").ok());
  CHECK_FALSE(check_template("%L").ok());
  CHECK_FALSE(check_template("50%").ok());
  auto st = check_template("a %q b");
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("%q") != std::string::npos);
}

TEST_CASE("result: %s and lower-case forms read the value", "[query_template]") {
  CHECK(expand_result("%s", "alice@example.com", "key@x") == "alice@example.com");
  CHECK(expand_result("smtp:[%s]", "mx.example.com", "k") == "smtp:[mx.example.com]");
  CHECK(expand_result("%u", "alice@example.com", "k") == "alice");
  CHECK(expand_result("%u", "alice", "k") == "alice");
  CHECK(expand_result("%d", "alice@example.com", "k") == "example.com");
  CHECK(expand_result("%%%s", "v", "k") == "%v");
}

TEST_CASE("result: values lacking a needed part, and empty values, are skipped", "[query_template]") {
  CHECK_FALSE(expand_result("%d", "alice", "k").has_value());
  CHECK_FALSE(expand_result("%d", "alice@", "k").has_value());
  CHECK_FALSE(expand_result("%u", "@example.com", "k").has_value());
  CHECK_FALSE(expand_result("%s", "", "k").has_value());
}

TEST_CASE("result: upper case and digits read the key", "[query_template]") {
  CHECK(expand_result("%S", "v", "user@mail.example.com") == "user@mail.example.com");
  CHECK(expand_result("%U", "v", "user@mail.example.com") == "user");
  CHECK(expand_result("%D", "v", "user@mail.example.com") == "mail.example.com");
  CHECK(expand_result("%s/%2", "v", "user@mail.example.com") == "v/example");
  CHECK_FALSE(expand_result("%D", "v", "example.com").has_value());
  CHECK_FALSE(expand_result("%U", "v", "@example.com").has_value());
  CHECK_FALSE(expand_result("%3", "v", "u@example.com").has_value());
  // No escaping in results.
  CHECK(expand_result("%s", "o'brien", "k") == "o'brien");
}

TEST_CASE("result_key_ok tells whether a result_format can use the key at all", "[query_template]") {
  CHECK(result_key_ok("%s", "anything"));
  CHECK(result_key_ok("%d", "no-at-here"));  // %d reads the value, not the key
  CHECK_FALSE(result_key_ok("%D", "example.com"));
  CHECK_FALSE(result_key_ok("%U", "@example.com"));
  CHECK_FALSE(result_key_ok("%2", "u@localhost"));
  CHECK(result_key_ok("%2", "u@example.com"));
}
