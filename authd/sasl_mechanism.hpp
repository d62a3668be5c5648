// sasl_mechanism.hpp - one SASL exchange, as a state machine fed by the auth session.
//
// The session calls start() with the initial response (if any), then step() with each
// client CONT payload (already base64-decoded). Each call returns what to do next:
// send a challenge, verify a plaintext password, fetch the user's credentials (for
// CRAM-MD5/SCRAM, answered with credentials()), or finish. Mechanisms never touch the
// passdb or the network themselves, so they are unit-testable with RFC vectors.
#pragma once

#include "authd/password_scheme.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::authd {

struct MechStep {
  enum class Kind {
    challenge,           // send `data` (raw bytes; the session base64-encodes it) as CONT
    verify_plain,        // check `password` for `user`; on success the exchange is done
    lookup_credentials,  // fetch `user`'s stored password, then call credentials()
    success,             // authenticated as `user` (after credentials())
    failure              // `reason` goes to the log; the client sees a generic text
  };
  Kind kind = Kind::failure;
  std::string data;
  std::string user;      // authcid
  std::string authzid;   // empty unless the client asked for another identity
  std::string password;  // verify_plain only; a secret: never log it
  std::string reason;

  static MechStep fail(std::string why) {
    MechStep s;
    s.kind = Kind::failure;
    s.reason = std::move(why);
    return s;
  }
  static MechStep send(std::string bytes) {
    MechStep s;
    s.kind = Kind::challenge;
    s.data = std::move(bytes);
    return s;
  }
};

class SaslMechanism {
 public:
  virtual ~SaslMechanism() = default;
  virtual MechStep start(const std::optional<std::string>& initial_response) = 0;
  virtual MechStep step(std::string_view response) = 0;
  // REQUIRES: the last step was lookup_credentials. stored = the user's stored password.
  virtual MechStep credentials(const StoredPassword& stored) {
    (void)stored;
    return MechStep::fail("mechanism takes no credentials");
  }
};

struct MechanismInfo {
  std::string name;                // upper case, e.g. "SCRAM-SHA-256"
  std::vector<std::string> flags;  // Dovecot's MECH flags, e.g. {"plaintext"}
  bool plaintext = false;          // refused on unsecured connections when required
};

// PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1, SCRAM-SHA-256, in this order.
const std::vector<MechanismInfo>& known_mechanisms();
// name is matched case-insensitively; nullptr if unknown. hostname is used in the
// CRAM-MD5 challenge.
std::unique_ptr<SaslMechanism> make_mechanism(std::string_view name, std::string_view hostname);

}  // namespace postern::authd
