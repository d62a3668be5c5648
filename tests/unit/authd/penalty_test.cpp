// penalty_test.cpp - the per-IP failure penalty.
#include "authd/penalty.hpp"

#include <catch2/catch.hpp>

using namespace postern::authd;
using std::chrono::milliseconds;

TEST_CASE("penalty: first failure waits the failure delay, then doubles up to the max", "[penalty]") {
  Penalty p(milliseconds(2000), true, milliseconds(8000));
  auto t = Penalty::Clock::now();
  CHECK(p.failure("192.0.2.1", t) == milliseconds(2000));
  CHECK(p.failure("192.0.2.1", t) == milliseconds(4000));  // 2 s + 2 s
  CHECK(p.failure("192.0.2.1", t) == milliseconds(6000));  // 2 s + 4 s
  CHECK(p.failure("192.0.2.1", t) == milliseconds(9000));  // 2 s + 8 s, capped under Postfix's 10 s
  CHECK(p.failure("192.0.2.1", t) == milliseconds(9000));
  // Another address is not affected.
  CHECK(p.failure("192.0.2.2", t) == milliseconds(2000));
}

TEST_CASE("penalty: a success clears the address; unknown addresses are not tracked", "[penalty]") {
  Penalty p(milliseconds(0), true, milliseconds(8000));
  auto t = Penalty::Clock::now();
  CHECK(p.failure("192.0.2.1", t) == milliseconds(0));
  CHECK(p.failure("192.0.2.1", t) == milliseconds(2000));
  p.success("192.0.2.1");
  CHECK(p.failure("192.0.2.1", t) == milliseconds(0));
  CHECK(p.failure("", t) == milliseconds(0));
  CHECK(p.failure("", t) == milliseconds(0));
  CHECK(p.tracked() == 1);
}

TEST_CASE("penalty: off means only the failure delay; idle addresses start over", "[penalty]") {
  Penalty off(milliseconds(500), false, milliseconds(8000));
  auto t = Penalty::Clock::now();
  for (int i = 0; i < 5; ++i) CHECK(off.failure("192.0.2.1", t) == milliseconds(500));
  Penalty on(milliseconds(0), true, milliseconds(8000));
  CHECK(on.failure("192.0.2.1", t) == milliseconds(0));
  CHECK(on.failure("192.0.2.1", t) == milliseconds(2000));
  CHECK(on.failure("192.0.2.1", t + std::chrono::minutes(16)) == milliseconds(0));
}
