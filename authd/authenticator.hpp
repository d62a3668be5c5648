// authenticator.hpp - the decision: auth cache, passdb lookup, password check.
//
// Thread-safe. verify_plain_cached() runs on the loop thread and answers a repeated login
// from the cache alone; everything else runs on workers. A passdb failure is `temp` (the
// session then closes the client connection so Postfix answers 454), logged once per
// outage rather than once per login, unless an expired cache entry can still answer.
#pragma once

#include "authd/auth_cache.hpp"
#include "authd/passdb.hpp"
#include "authd/password_scheme.hpp"

#include <atomic>
#include <optional>
#include <string>
#include <string_view>

namespace postern::authd {

struct AuthOutcome {
  enum class Kind { ok, fail, temp };
  Kind kind = Kind::fail;
  std::string user;    // ok: the canonical name for OK user=; otherwise the name tried
  std::string reason;  // fail/temp: for the log line
  StoredPassword stored;  // lookup_credentials only
};

class Authenticator {
 public:
  explicit Authenticator(const AuthCacheSettings& cache) : cache_(cache) {}

  // Loop thread: the outcome if the cache alone decides it (a fresh entry for an unknown
  // user, or the password that last matched); nullopt sends the request to a worker.
  std::optional<AuthOutcome> verify_plain_cached(const Passdb& passdb, const PassdbRequest& request,
                                                 std::string_view password);
  AuthOutcome verify_plain(Passdb& passdb, const PassdbRequest& request, std::string_view password,
                           WorkerContext& worker);
  AuthOutcome lookup_credentials(Passdb& passdb, const PassdbRequest& request, WorkerContext& worker);

 private:
  struct Answer {
    PassdbLookup lookup;
    bool from_cache = false;
    bool last_success = false;
  };
  // A fresh cache entry, else the passdb (kept in the cache), else an expired entry.
  Answer find(Passdb& passdb, const PassdbRequest& request, const std::string& key, WorkerContext& worker,
              bool bypass_cache = false);
  // The passdb lookup, with the once-per-outage log state.
  PassdbLookup lookup(Passdb& passdb, const PassdbRequest& request, WorkerContext& worker);
  AuthOutcome check(const Passdb& passdb, const PassdbRequest& request, const PassdbLookup& found,
                    std::string_view password, bool* mismatch);

  AuthCache cache_;
  std::atomic<bool> backend_down_{false};
};

}  // namespace postern::authd
