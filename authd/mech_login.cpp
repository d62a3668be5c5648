// mech_login.cpp - SASL LOGIN (draft-murchison-sasl-login) as Dovecot 2.3 runs it:
// "Username:" then "Password:"; a non-empty initial response is the username.
#include "authd/mechanisms.hpp"

namespace postern::authd {

namespace {

class LoginMechanism final : public SaslMechanism {
 public:
  MechStep start(const std::optional<std::string>& initial_response) override {
    // An empty initial response ("resp==") counts as none, as in Dovecot: ask for the name.
    if (!initial_response || initial_response->empty()) return MechStep::send("Username:");
    return step(*initial_response);
  }

  MechStep step(std::string_view response) override {
    switch (state_) {
      case State::want_user:
        if (response.empty()) return finish(MechStep::fail("LOGIN: empty username"));
        if (response.find('\0') != std::string_view::npos) return finish(MechStep::fail("LOGIN: NUL in username"));
        user_ = std::string(response);
        state_ = State::want_password;
        return MechStep::send("Password:");
      case State::want_password: {
        // Dovecot would cut the password at a NUL; a NUL can't be part of a password.
        if (response.find('\0') != std::string_view::npos) {
          MechStep f = MechStep::fail("LOGIN: NUL in password");
          f.user = user_;
          return finish(std::move(f));
        }
        MechStep s;
        s.kind = MechStep::Kind::verify_plain;
        s.user = user_;
        s.password = std::string(response);
        return finish(std::move(s));
      }
      case State::done:
        break;
    }
    return MechStep::fail("LOGIN: unexpected data after the password");
  }

 private:
  enum class State { want_user, want_password, done };

  MechStep finish(MechStep s) {
    state_ = State::done;
    return s;
  }

  State state_ = State::want_user;
  std::string user_;
};

}  // namespace

std::unique_ptr<SaslMechanism> make_login_mechanism() { return std::make_unique<LoginMechanism>(); }

}  // namespace postern::authd
