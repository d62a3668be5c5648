// mech_plain.cpp - SASL PLAIN (RFC 4616) as Dovecot 2.3 runs it: "[authzid] NUL authcid
// NUL passwd" with exactly two NULs; no initial response gets an empty challenge.
#include "authd/mechanisms.hpp"

namespace postern::authd {

namespace {

class PlainMechanism final : public SaslMechanism {
 public:
  MechStep start(const std::optional<std::string>& initial_response) override {
    // Without an initial response the client sends the message after an empty
    // challenge. A present-but-empty one ("resp==") is parsed, and fails, like any other.
    if (!initial_response) return MechStep::send("");
    return step(*initial_response);
  }

  MechStep step(std::string_view response) override {
    if (done_) return MechStep::fail("PLAIN: unexpected data after the response");
    done_ = true;
    size_t first = response.find('\0');
    size_t second = first == std::string_view::npos ? first : response.find('\0', first + 1);
    // A third NUL would silently truncate the password in Dovecot; refuse it instead.
    if (second == std::string_view::npos || response.find('\0', second + 1) != std::string_view::npos)
      return MechStep::fail("PLAIN: invalid input (need exactly two NULs)");

    std::string_view authzid = response.substr(0, first);
    std::string_view authcid = response.substr(first + 1, second - first - 1);
    if (authcid.empty()) return MechStep::fail("PLAIN: empty authentication identity");

    MechStep s;
    s.kind = MechStep::Kind::verify_plain;
    s.user = std::string(authcid);
    // Naming oneself as the authorization identity is the same as naming none.
    if (authzid != authcid) s.authzid = std::string(authzid);
    s.password = std::string(response.substr(second + 1));
    return s;
  }

 private:
  bool done_ = false;
};

}  // namespace

std::unique_ptr<SaslMechanism> make_plain_mechanism() { return std::make_unique<PlainMechanism>(); }

}  // namespace postern::authd
