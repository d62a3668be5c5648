// pw_command.cpp - `authd pw`, the `doveadm pw` work-alike (see pw_command.hpp): option
// parsing, password prompting, and the messages and exit codes doveadm 2.3 gives.
#include "authd/pw_command.hpp"

#include "authd/password_scheme.hpp"

#include <termios.h>
#include <unistd.h>

#include <cctype>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

namespace postern::authd {

namespace {

constexpr int kExitOk = 0, kExitMismatchTyped = 1, kExitUsage = 64, kExitFailure = 75;  // sysexits, as doveadm
constexpr const char* kUsage = "usage: authd pw [-l] [-p plaintext] [-r rounds] [-s scheme] [-t hash] [-u user] [-V]";

struct Options {
  bool list = false;
  bool reverse_verify = false;
  std::optional<std::string> plaintext;
  std::optional<std::string> test_hash;
  std::string scheme = "CRYPT";
  std::string user;
  int rounds = 0;
};

int usage(const std::string& why) {
  if (!why.empty()) std::cerr << "Error: " << why << "\n";
  std::cerr << kUsage << "\n";
  return kExitUsage;
}

int fatal(const std::string& message) {
  std::cerr << "Fatal: " << message << "\n";
  return kExitFailure;
}

bool parse_rounds(std::string_view text, int& rounds) {
  if (text.empty() || text.size() > 9) return false;  // up to 999999999 fits an int
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  rounds = value;
  return true;
}

// getopt-style: clustered flags ("-lV"), and values either attached ("-sSHA1") or next.
// Returns the exit status on error, nullopt when parsing succeeded.
std::optional<int> parse_options(int argc, char** argv, Options& opt) {
  int i = 0;
  for (; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') break;
    for (size_t k = 1; k < arg.size(); ++k) {
      char c = arg[k];
      if (c == 'l') {
        opt.list = true;
        continue;
      }
      if (c == 'V') {
        opt.reverse_verify = true;
        continue;
      }
      if (std::string_view("prstu").find(c) == std::string_view::npos)
        return usage(std::string("unknown option -") + c);
      std::string value;
      if (k + 1 < arg.size()) {
        value = std::string(arg.substr(k + 1));
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return usage(std::string("option -") + c + " needs a value");
      }
      switch (c) {
        case 'p': opt.plaintext = value; break;
        case 's': opt.scheme = value; break;
        case 't': opt.test_hash = value; break;
        case 'u': opt.user = value; break;
        case 'r':
          if (!parse_rounds(value, opt.rounds)) return usage("Invalid number of rounds: " + value);
          break;
      }
      break;  // the value used up the rest of this argument
    }
  }
  if (i < argc) return usage(std::string("Extraneous arguments found: ") + argv[i]);
  return std::nullopt;
}

// One line from the terminal with echo off (the prompt goes to stderr).
std::optional<std::string> ask_tty(const char* prompt) {
  std::cerr << prompt << std::flush;
  termios saved{};
  bool restore = tcgetattr(STDIN_FILENO, &saved) == 0;
  if (restore) {
    termios quiet = saved;
    quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  bool got = static_cast<bool>(std::getline(std::cin, line));
  if (restore) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
  std::cerr << "\n";
  if (!got) return std::nullopt;
  return line;
}

// The password when -p was not given; on failure, nullopt with the exit status in `status`.
std::optional<std::string> read_password(bool for_test, std::optional<int>& status) {
  if (!isatty(STDIN_FILENO)) {
    // Scripts: one line, without its line ending.
    std::string line;
    if (!std::getline(std::cin, line)) {
      status = fatal("no password on standard input");
      return std::nullopt;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  if (for_test) {
    auto pw = ask_tty("Enter password to verify: ");
    if (!pw) status = fatal("no password given");
    return pw;
  }
  for (int lives = 3; lives > 0; --lives) {
    auto first = ask_tty("Enter new password: ");
    auto second = first ? ask_tty("Retype new password: ") : std::nullopt;
    if (!first || !second) {
      status = fatal("no password given");
      return std::nullopt;
    }
    if (*first == *second) return first;
    std::cerr << "Error: Passwords don't match!\n";
  }
  status = kExitMismatchTyped;
  return std::nullopt;
}

// Verifies `hash` (with its prefix) and prints "<shown> (verified)".
int verify_and_print(std::string_view plaintext, const std::string& hash, const std::string& user) {
  auto stored = parse_stored_password(hash, "");
  if (!stored) return fatal("reverse decode check failed: " + stored.error().message);
  auto ok = verify_password(plaintext, *stored, user);
  if (!ok) return fatal("reverse password verification check failed: " + ok.error().message);
  if (!*ok) return fatal("reverse password verification check failed: Password mismatch");
  // A bare "$1$..." is shown with the scheme it was taken as, like doveadm does.
  std::string shown = hash.starts_with('{') ? hash : "{" + stored->scheme + "}" + stored->data;
  std::cout << shown << " (verified)\n";
  return kExitOk;
}

}  // namespace

int run_pw_command(int argc, char** argv) {
  Options opt;
  if (auto status = parse_options(argc, argv, opt)) return *status;

  if (opt.list) {
    for (const std::string& name : supported_schemes()) std::cout << name << ' ';
    std::cout << "\n";
    return kExitOk;
  }

  if (opt.test_hash) {
    const std::string& h = *opt.test_hash;
    if (!(h.starts_with('{') && h.find('}') != std::string::npos) && !h.starts_with("$1$"))
      return fatal("Missing {scheme} prefix from hash");
  }

  std::optional<int> status;
  std::string plaintext;
  if (opt.plaintext) {
    plaintext = *opt.plaintext;
  } else if (auto typed = read_password(opt.test_hash.has_value(), status)) {
    plaintext = std::move(*typed);
  } else {
    return status.value_or(kExitFailure);
  }

  if (opt.test_hash) return verify_and_print(plaintext, *opt.test_hash, opt.user);

  auto hash = generate_password(plaintext, opt.scheme, opt.user, GenerateOptions{opt.rounds});
  if (!hash) {
    const std::string& why = hash.error().message;
    if (why.starts_with("unknown password")) {
      std::string upper = opt.scheme;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return fatal("Unknown scheme: " + upper);
    }
    return fatal(why);
  }
  if (opt.reverse_verify) return verify_and_print(plaintext, *hash, opt.user);
  std::cout << *hash << "\n";
  return kExitOk;
}

}  // namespace postern::authd
