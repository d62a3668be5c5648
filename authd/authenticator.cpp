// authenticator.cpp - see authenticator.hpp.
#include "authd/authenticator.hpp"

#include "common/log.hpp"

namespace postern::authd {

PassdbLookup Authenticator::lookup(Passdb& passdb, const PassdbRequest& request, WorkerContext& worker) {
  PassdbLookup found = passdb.lookup(request, worker);
  if (found.status == PassdbLookup::Status::temp_error) {
    if (!backend_down_.exchange(true))
      log_error("passdb {} is failing: {}; closing client connections (Postfix answers 454) until it recovers",
                passdb.describe(), found.error);
    else
      log_debug("passdb {}: {}", passdb.describe(), found.error);
  } else if (backend_down_.exchange(false)) {
    log_info("passdb {} answers again", passdb.describe());
  }
  return found;
}

AuthOutcome Authenticator::verify_plain(Passdb& passdb, const PassdbRequest& request, std::string_view password,
                                        WorkerContext& worker) {
  PassdbLookup found = lookup(passdb, request, worker);
  switch (found.status) {
    case PassdbLookup::Status::temp_error:
      return {AuthOutcome::Kind::temp, request.user, found.error, {}};
    case PassdbLookup::Status::not_found:
      return {AuthOutcome::Kind::fail, request.user, "unknown user", {}};
    case PassdbLookup::Status::found:
      break;
  }
  if (found.nopassword) return {AuthOutcome::Kind::ok, found.user, {}, {}};
  if (!found.password) return {AuthOutcome::Kind::fail, request.user, "no password stored", {}};

  std::string key;
  if (cache_.enabled()) {
    key = cache_.key(found.user, password, *found.password);
    if (cache_.contains(key, VerificationCache::Clock::now())) return {AuthOutcome::Kind::ok, found.user, {}, {}};
  }
  auto stored = parse_stored_password(*found.password, found.default_scheme);
  if (!stored) {
    log_error("passdb {}: stored password of {} is unusable: {}", passdb.describe(), found.user, stored.error().message);
    return {AuthOutcome::Kind::fail, request.user, "unusable stored password", {}};
  }
  auto match = verify_password(password, *stored, found.user);
  if (!match) {
    log_error("passdb {}: cannot verify {}'s password: {}", passdb.describe(), found.user, match.error().message);
    return {AuthOutcome::Kind::fail, request.user, "unusable stored password", {}};
  }
  if (!*match) return {AuthOutcome::Kind::fail, request.user, "password mismatch", {}};
  if (cache_.enabled()) cache_.insert(key, VerificationCache::Clock::now());
  return {AuthOutcome::Kind::ok, found.user, {}, {}};
}

AuthOutcome Authenticator::lookup_credentials(Passdb& passdb, const PassdbRequest& request, WorkerContext& worker) {
  PassdbLookup found = lookup(passdb, request, worker);
  switch (found.status) {
    case PassdbLookup::Status::temp_error:
      return {AuthOutcome::Kind::temp, request.user, found.error, {}};
    case PassdbLookup::Status::not_found:
      return {AuthOutcome::Kind::fail, request.user, "unknown user", {}};
    case PassdbLookup::Status::found:
      break;
  }
  if (!found.password) return {AuthOutcome::Kind::fail, request.user, "no password stored", {}};
  auto stored = parse_stored_password(*found.password, found.default_scheme);
  if (!stored) return {AuthOutcome::Kind::fail, request.user, "unusable stored password: " + stored.error().message, {}};
  return {AuthOutcome::Kind::ok, found.user, {}, std::move(*stored)};
}

}  // namespace postern::authd
