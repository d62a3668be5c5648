// lmtp_replies_test.cpp - recipient splitting, trace headers and reply texts.
#include "lmtpd/lmtp_replies.hpp"

#include <catch2/catch.hpp>

#include <regex>
#include <set>

using namespace postern::lmtpd;

TEST_CASE("split_recipient: case folding and the recipient delimiter", "[replies]") {
  auto r = split_recipient("Alice+Tag@Example.COM", "+");
  CHECK(r.user == "alice@example.com");
  CHECK(r.detail == "Tag");
  r = split_recipient("bob-lists+x@example.com", "+-");
  CHECK(r.user == "bob@example.com");
  CHECK(r.detail == "lists+x");
  r = split_recipient("carol@example.com", "+");
  CHECK(r.user == "carol@example.com");
  CHECK(r.detail.empty());
  r = split_recipient("+foo@example.com", "+");  // nothing before the delimiter: not split
  CHECK(r.user == "+foo@example.com");
  r = split_recipient("dave+x@example.com", "");
  CHECK(r.user == "dave+x@example.com");
  r = split_recipient("postmaster", "+");
  CHECK(r.user == "postmaster");
}

TEST_CASE("trace headers: Dovecot's order, Delivered-To and 'for' only for one recipient", "[replies]") {
  TraceInfo t;
  t.sender = "sender@example.org";
  t.lhlo_name = "mx.example.com";
  t.hostname = "mail.example.com";
  t.session_id = "kBtTLnJMvWaNHQAAvPf1Bw";
  t.recipients = {"alice+tag@example.com"};
  t.now = 1700000000;
  std::string one = trace_headers(t);
  CHECK(std::regex_match(one, std::regex("Return-Path: <sender@example\\.org>\n"
                                          "Delivered-To: alice\\+tag@example\\.com\n"
                                          "Received: from mx\\.example\\.com\n"
                                          "\tby mail\\.example\\.com with LMTP\n"
                                          "\tid kBtTLnJMvWaNHQAAvPf1Bw\n"
                                          "\t\\(envelope-from <sender@example\\.org>\\)\n"
                                          "\tfor <alice\\+tag@example\\.com>; [A-Z][a-z]{2}, \\d{2} [A-Z][a-z]{2} 2023 "
                                          "\\d{2}:\\d{2}:\\d{2} [+-]\\d{4}\n")));
  t.recipients = {"a@example.com", "b@example.com"};
  t.sender = "";
  t.lhlo_name = "";
  std::string two = trace_headers(t);
  CHECK(two.find("Delivered-To") == std::string::npos);
  CHECK(two.find("\tfor <") == std::string::npos);
  CHECK(two.rfind("Return-Path: <>\n", 0) == 0);
  CHECK(two.find("Received: from unknown\n") != std::string::npos);
}

TEST_CASE("delivery replies: Dovecot's texts and codes", "[replies]") {
  DeliveryOutcome saved{DeliveryOutcome::Kind::saved, "f", ""};
  CHECK(delivery_reply(saved, "a@x", "ID", false) == "250 2.0.0 <a@x> ID Saved\r\n");
  DeliveryOutcome quota{DeliveryOutcome::Kind::over_quota, "", "full"};
  CHECK(delivery_reply(quota, "a@x", "ID", false) == "552 5.2.2 <a@x> Quota exceeded (mailbox for user is full)\r\n");
  CHECK(delivery_reply(quota, "a@x", "ID", true) == "452 4.2.2 <a@x> Quota exceeded (mailbox for user is full)\r\n");
  DeliveryOutcome disk{DeliveryOutcome::Kind::disk_full, "", "ENOSPC"};
  CHECK(delivery_reply(disk, "a@x", "ID", false).rfind("452 4.3.1 <a@x> ", 0) == 0);
  DeliveryOutcome failed{DeliveryOutcome::Kind::failed, "", "EIO"};
  CHECK(delivery_reply(failed, "a@x", "ID", false) == "451 4.3.0 <a@x> Temporary internal error\r\n");
}

TEST_CASE("session ids are 22 base64 characters and differ", "[replies]") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = new_session_id();
    CHECK(std::regex_match(id, std::regex("[A-Za-z0-9+/]{22}")));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}
