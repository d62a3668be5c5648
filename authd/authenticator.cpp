// authenticator.cpp - see authenticator.hpp.
#include "authd/authenticator.hpp"

#include "common/log.hpp"

namespace postern::authd {
namespace {

AuthOutcome outcome(AuthOutcome::Kind kind, std::string user, std::string reason = {}) {
  return {kind, std::move(user), std::move(reason), {}};
}

}  // namespace

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

Authenticator::Answer Authenticator::find(Passdb& passdb, const PassdbRequest& request, const std::string& key,
                                          WorkerContext& worker, bool bypass_cache) {
  auto now = AuthCache::Clock::now();
  std::optional<AuthCache::Hit> hit;
  if (!key.empty()) hit = cache_.find(key, now);
  if (hit && hit->fresh && !bypass_cache) return {std::move(hit->answer), true, hit->last_success};
  PassdbLookup found = lookup(passdb, request, worker);
  if (found.status != PassdbLookup::Status::temp_error) {
    if (!key.empty()) cache_.store(key, found, now);
    return {std::move(found), false, false};
  }
  // Dovecot's rule: while the passdb fails, expired data still answers. Not when the
  // entry was just doubted (bypass_cache): then only the passdb can tell.
  if (hit && !bypass_cache) {
    log_debug("passdb {} failing: answering {} from an expired cache entry", passdb.describe(), request.user);
    return {std::move(hit->answer), true, hit->last_success};
  }
  return {std::move(found), false, false};
}

std::optional<AuthOutcome> Authenticator::verify_plain_cached(const Passdb& passdb, const PassdbRequest& request,
                                                              std::string_view password) {
  if (!cache_.enabled()) return std::nullopt;
  std::string key = passdb.cache_key(request);
  if (key.empty()) return std::nullopt;
  auto now = AuthCache::Clock::now();
  auto hit = cache_.find(key, now);
  if (!hit || !hit->fresh) return std::nullopt;
  const PassdbLookup& found = hit->answer;
  if (found.status == PassdbLookup::Status::not_found)
    return outcome(AuthOutcome::Kind::fail, request.user, "unknown user (cached)");
  if (found.nopassword) return outcome(AuthOutcome::Kind::ok, found.user);
  if (cache_.verified(key, password, now)) return outcome(AuthOutcome::Kind::ok, found.user);
  return std::nullopt;  // a password not seen to match yet: a worker hashes it
}

AuthOutcome Authenticator::check(const Passdb& passdb, const PassdbRequest& request, const PassdbLookup& found,
                                 std::string_view password, bool* mismatch) {
  *mismatch = false;
  if (found.status == PassdbLookup::Status::not_found)
    return outcome(AuthOutcome::Kind::fail, request.user, "unknown user");
  if (found.nopassword) return outcome(AuthOutcome::Kind::ok, found.user);
  if (!found.password) return outcome(AuthOutcome::Kind::fail, request.user, "no password stored");
  auto stored = parse_stored_password(*found.password, found.default_scheme);
  if (!stored) {
    log_error("passdb {}: stored password of {} is unusable: {}", passdb.describe(), found.user, stored.error().message);
    return outcome(AuthOutcome::Kind::fail, request.user, "unusable stored password");
  }
  auto match = verify_password(password, *stored, found.user);
  if (!match) {
    log_error("passdb {}: cannot verify {}'s password: {}", passdb.describe(), found.user, match.error().message);
    return outcome(AuthOutcome::Kind::fail, request.user, "unusable stored password");
  }
  if (!*match) {
    *mismatch = true;
    return outcome(AuthOutcome::Kind::fail, request.user, "password mismatch");
  }
  return outcome(AuthOutcome::Kind::ok, found.user);
}

AuthOutcome Authenticator::verify_plain(Passdb& passdb, const PassdbRequest& request, std::string_view password,
                                        WorkerContext& worker) {
  std::string key = cache_.enabled() ? passdb.cache_key(request) : std::string();
  Answer answer = find(passdb, request, key, worker);
  if (answer.lookup.status == PassdbLookup::Status::temp_error)
    return outcome(AuthOutcome::Kind::temp, request.user, answer.lookup.error);
  if (!key.empty() && answer.lookup.status == PassdbLookup::Status::found &&
      cache_.verified(key, password, AuthCache::Clock::now()))
    return outcome(AuthOutcome::Kind::ok, answer.lookup.user);
  bool mismatch = false;
  AuthOutcome result = check(passdb, request, answer.lookup, password, &mismatch);
  if (mismatch && answer.from_cache && answer.last_success) {
    // Dovecot's rule: this entry's password matched last time, so it may have changed
    // since; only the passdb can tell.
    answer = find(passdb, request, key, worker, /*bypass_cache=*/true);
    if (answer.lookup.status == PassdbLookup::Status::temp_error)
      return outcome(AuthOutcome::Kind::temp, request.user, answer.lookup.error);
    result = check(passdb, request, answer.lookup, password, &mismatch);
  }
  if (!key.empty() && answer.lookup.status == PassdbLookup::Status::found)
    cache_.record(key, password, result.kind == AuthOutcome::Kind::ok);
  return result;
}

AuthOutcome Authenticator::lookup_credentials(Passdb& passdb, const PassdbRequest& request, WorkerContext& worker) {
  std::string key = cache_.enabled() ? passdb.cache_key(request) : std::string();
  Answer answer = find(passdb, request, key, worker);
  const PassdbLookup& found = answer.lookup;
  switch (found.status) {
    case PassdbLookup::Status::temp_error:
      return outcome(AuthOutcome::Kind::temp, request.user, found.error);
    case PassdbLookup::Status::not_found:
      return outcome(AuthOutcome::Kind::fail, request.user, "unknown user");
    case PassdbLookup::Status::found:
      break;
  }
  if (!found.password) return outcome(AuthOutcome::Kind::fail, request.user, "no password stored");
  auto stored = parse_stored_password(*found.password, found.default_scheme);
  if (!stored)
    return outcome(AuthOutcome::Kind::fail, request.user, "unusable stored password: " + stored.error().message);
  return {AuthOutcome::Kind::ok, found.user, {}, std::move(*stored)};
}

}  // namespace postern::authd
