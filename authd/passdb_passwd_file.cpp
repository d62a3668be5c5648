// passdb_passwd_file.cpp - the passwd-file passdb (contract: authd/passdb.hpp,
// make_passwd_file_passdb): a lookup in common/passwd_file's snapshot, plus the passdb
// extra fields (nopassword, user=) as Dovecot 2.3 passdb-passwd-file.c reads them.
#include "authd/passdb.hpp"

#include "authd/passdb_fields.hpp"
#include "common/dovecot_template.hpp"
#include "common/log.hpp"
#include "common/passwd_file.hpp"

#include <fmt/format.h>

namespace postern::authd {
namespace {

class PasswdFilePassdb final : public Passdb {
 public:
  explicit PasswdFilePassdb(PasswdFileArgs args)
      : file_(args.path), scheme_(std::move(args.scheme)), format_(std::move(args.username_format)) {}

  PassdbLookup lookup(const PassdbRequest& request, WorkerContext&) override {
    PassdbLookup out;
    out.user = request.user;
    out.default_scheme = scheme_;
    PasswdFile::Snapshot snap = file_.snapshot();
    if (!snap.users) {
      out.status = PassdbLookup::Status::temp_error;
      out.error = std::move(snap.error);
      return out;
    }
    DovecotVars vars = passdb_vars(request);
    auto key = expand_dovecot_template(format_, vars);
    if (!key) return temp_error(std::move(out), "username_format: " + key.error().message);
    // Exact, case-sensitive match, as Dovecot's hash of the file; %Lu in the format lowercases.
    auto it = snap.users->find(*key);
    if (it == snap.users->end()) {
      out.status = PassdbLookup::Status::not_found;
      return out;
    }
    out.status = PassdbLookup::Status::found;
    out.password = it->second.password;
    bool nopassword = false;
    for (const std::string& field : it->second.extra) {
      size_t eq = field.find('=');
      std::string name = field.substr(0, eq);
      std::string raw = eq == std::string::npos ? std::string() : field.substr(eq + 1);
      if (name == "nopassword") {
        nopassword = nopassword_value(raw);
      } else if (is_username_field(name)) {
        // Extra field values are expanded with the request's variables (passdb-passwd-file.c).
        auto value = expand_dovecot_template(raw, vars);
        if (!value) return temp_error(std::move(out), fmt::format("user {}: {}: {}", *key, name, value.error().message));
        std::string next = updated_username(out.user, name, *value);
        if (next.empty()) {
          // auth-request.c fails the request; without a password the caller rejects it.
          log_warning("{}: user {}: {} field makes the user name empty", describe(), *key, name);
          out.password.reset();
          return out;
        }
        out.user = std::move(next);
      }
    }
    if (nopassword && (!out.password || empty_password(*out.password))) {
      out.nopassword = true;
      out.password.reset();
    }
    return out;
  }

  // The looked-up name, as Dovecot's passwd-file keys its cache on %u and the path.
  std::string cache_key(const PassdbRequest& request) const override {
    auto key = dovecot_template_key(format_, passdb_vars(request));
    return key ? *key : std::string();
  }

  std::string describe() const override { return fmt::format("passwd-file({})", file_.path()); }

 private:
  PassdbLookup temp_error(PassdbLookup out, std::string why) const {
    out.status = PassdbLookup::Status::temp_error;
    out.password.reset();
    out.error = describe() + ": " + why;
    return out;
  }

  PasswdFile file_;
  const std::string scheme_;
  const std::string format_;
};

}  // namespace

Result<std::unique_ptr<Passdb>> make_passwd_file_passdb(const std::string& args) {
  // passdb-passwd-file.c's default scheme is CRYPT.
  auto parsed = parse_passwd_file_args(args, "CRYPT");
  if (!parsed) return parsed.error();
  return std::unique_ptr<Passdb>(std::make_unique<PasswdFilePassdb>(std::move(parsed).value()));
}

}  // namespace postern::authd
