// fake_passdb.hpp - an in-memory passdb for the authd unit tests: counts its lookups
// and can be taken down to play a database outage.
#pragma once

#include "authd/passdb.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace auth_test {

using postern::WorkerContext;
using postern::authd::Passdb;
using postern::authd::PassdbLookup;
using postern::authd::PassdbRequest;

class FakePassdb : public Passdb {
 public:
  std::map<std::string, std::string> users;  // name -> stored password
  std::atomic<bool> down{false};
  std::atomic<int> lookups{0};
  std::mutex mutex;
  std::vector<std::string> asked;

  PassdbLookup lookup(const PassdbRequest& request, WorkerContext&) override {
    ++lookups;
    {
      std::lock_guard lock(mutex);
      asked.push_back(request.user);
    }
    PassdbLookup out;
    out.default_scheme = "PLAIN";
    if (down) {
      out.status = PassdbLookup::Status::temp_error;
      out.error = "database down";
      return out;
    }
    auto it = users.find(request.user);
    if (it == users.end()) return out;
    out.status = PassdbLookup::Status::found;
    out.user = request.user;
    out.password = it->second;
    return out;
  }
  std::string cache_key(const PassdbRequest& request) const override { return request.user; }
  std::string describe() const override { return "fake"; }
};

}  // namespace auth_test
