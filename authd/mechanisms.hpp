// mechanisms.hpp - factories for the SASL mechanisms, one per mech_*.cpp file.
//
// Internal to authd: the session uses make_mechanism() (sasl_mechanism.hpp). The extra
// parameters exist so that tests can replay RFC vectors; production code passes none.
#pragma once

#include "authd/sasl_mechanism.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace postern::authd {

std::unique_ptr<SaslMechanism> make_plain_mechanism();
std::unique_ptr<SaslMechanism> make_login_mechanism();

// challenge: empty = a fresh Dovecot-style "<random digits.unix time@hostname>"; tests
// pass a fixed one (e.g. RFC 2195's) and hostname is then unused.
std::unique_ptr<SaslMechanism> make_cram_md5_mechanism(std::string_view hostname, std::string challenge = {});

// server_nonce: empty = 64 fresh random printable characters (no ','); tests pass the
// RFC 5802/7677 nonce suffix. REQUIRES: printable ASCII without ',' when given.
std::unique_ptr<SaslMechanism> make_scram_mechanism(ScramHash hash, std::string server_nonce = {});

}  // namespace postern::authd
