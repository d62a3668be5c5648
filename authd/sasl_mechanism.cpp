// sasl_mechanism.cpp - the mechanism table authd advertises (Dovecot's MECH flags) and
// the factory that maps a client-typed mechanism name to its implementation.
#include "authd/sasl_mechanism.hpp"

#include "authd/mechanisms.hpp"
#include "common/strings.hpp"

namespace postern::authd {

const std::vector<MechanismInfo>& known_mechanisms() {
  // Flags as Dovecot 2.3 prints them: Postfix filters on them (smtpd_sasl_security_options),
  // so PLAIN and LOGIN must say "plaintext" or "noplaintext" sites would still offer them.
  static const std::vector<MechanismInfo> table = {
      {"PLAIN", {"plaintext"}, true},
      {"LOGIN", {"plaintext"}, true},
      {"CRAM-MD5", {"dictionary", "active"}, false},
      {"SCRAM-SHA-1", {"mutual-auth"}, false},
      {"SCRAM-SHA-256", {"mutual-auth"}, false},
  };
  return table;
}

std::unique_ptr<SaslMechanism> make_mechanism(std::string_view name, std::string_view hostname) {
  // Postfix passes the name as the SMTP client typed it ("plain"), hence iequals.
  if (iequals(name, "PLAIN")) return make_plain_mechanism();
  if (iequals(name, "LOGIN")) return make_login_mechanism();
  if (iequals(name, "CRAM-MD5")) return make_cram_md5_mechanism(hostname);
  if (iequals(name, "SCRAM-SHA-1")) return make_scram_mechanism(ScramHash::sha1);
  if (iequals(name, "SCRAM-SHA-256")) return make_scram_mechanism(ScramHash::sha256);
  return nullptr;
}

}  // namespace postern::authd
