// authenticator.hpp - the worker-side decision: passdb lookup, cache, password check.
//
// Thread-safe; called on workers. A passdb failure is `temp` (the session then closes
// the client connection so Postfix answers 454), logged once per outage rather than
// once per login.
#pragma once

#include "authd/passdb.hpp"
#include "authd/password_scheme.hpp"
#include "authd/verification_cache.hpp"

#include <atomic>
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
  Authenticator(size_t cache_entries, std::chrono::milliseconds cache_ttl) : cache_(cache_entries, cache_ttl) {}

  AuthOutcome verify_plain(Passdb& passdb, const PassdbRequest& request, std::string_view password,
                           WorkerContext& worker);
  AuthOutcome lookup_credentials(Passdb& passdb, const PassdbRequest& request, WorkerContext& worker);

 private:
  // Runs the lookup and keeps the once-per-outage log state.
  PassdbLookup lookup(Passdb& passdb, const PassdbRequest& request, WorkerContext& worker);

  VerificationCache cache_;
  std::atomic<bool> backend_down_{false};
};

}  // namespace postern::authd
