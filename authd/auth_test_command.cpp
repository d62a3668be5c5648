// auth_test_command.cpp - a blocking auth-protocol client for admins; see auth_test_command.hpp.
#include "authd/auth_test_command.hpp"

#include "authd/auth_protocol.hpp"
#include "common/encoding.hpp"
#include "common/net.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

namespace postern::authd {
namespace {

constexpr int kTempFail = 75;
constexpr int kAuthFail = 77;

int connect_to(const std::string& target, std::string* error) {
  auto address = ListenAddress::parse(target);
  if (!address) {
    *error = address.error().message;
    return -1;
  }
  int fd = -1;
  if (address->kind == ListenAddress::Kind::unix_path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (address->path.size() >= sizeof sa.sun_path) {
      *error = "socket path too long";
      return -1;
    }
    std::memcpy(sa.sun_path, address->path.c_str(), address->path.size() + 1);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      *error = fmt::format("connect({}): {}", address->path, std::strerror(errno));
      close(fd);
      return -1;
    }
  } else {
    sockaddr_storage ss{};
    socklen_t len = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, address->host.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(static_cast<uint16_t>(address->port));
      len = sizeof *v4;
    } else if (inet_pton(AF_INET6, address->host.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(static_cast<uint16_t>(address->port));
      len = sizeof *v6;
    }
    fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      *error = fmt::format("connect({}): {}", address->str(), std::strerror(errno));
      close(fd);
      return -1;
    }
  }
  if (fd < 0) *error = std::strerror(errno);
  timeval tv{15, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  bool next(std::string* line) {
    for (;;) {
      size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        *line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return true;
      }
      char chunk[4096];
      ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buffer_;
};

bool send_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab - start));
    if (tab == std::string::npos) return out;
    start = tab + 1;
  }
}

}  // namespace

int run_auth_test_command(int argc, char** argv) {
  std::string socket_path = "/var/spool/postfix/private/auth";
  std::string mechanism = "PLAIN";
  std::vector<std::string> positional;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-a" && i + 1 < argc) {
      socket_path = argv[++i];
    } else if (arg == "-m" && i + 1 < argc) {
      mechanism = argv[++i];
      for (char& c : mechanism) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 2 || (mechanism != "PLAIN" && mechanism != "LOGIN")) {
    fmt::print(stderr, "usage: authd test [-a SOCKET] [-m plain|login] USER PASSWORD\n");
    return 2;
  }
  const std::string& user = positional[0];
  const std::string& password = positional[1];

  std::string error;
  int fd = connect_to(socket_path, &error);
  if (fd < 0) {
    fmt::print(stderr, "authd test: {}\n", error);
    return kTempFail;
  }
  LineReader reader(fd);
  std::string line;
  bool offered = false;
  while (reader.next(&line) && line != "DONE") {
    auto fields = split_tabs(line);
    if (fields.size() >= 2 && fields[0] == "MECH" && fields[1] == mechanism) offered = true;
  }
  if (line != "DONE") {
    fmt::print(stderr, "authd test: no handshake from {}\n", socket_path);
    close(fd);
    return kTempFail;
  }
  if (!offered) fmt::print(stderr, "authd test: warning: the server does not offer {}\n", mechanism);

  std::string request = fmt::format("VERSION\t1\t2\nCPID\t{}\nAUTH\t1\t{}\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1",
                                    getpid(), mechanism);
  if (mechanism == "PLAIN") request += "\tresp=" + base64_encode(std::string(1, '\0') + user + '\0' + password);
  request += "\n";
  int result = kTempFail;
  if (send_all(fd, request)) {
    while (reader.next(&line)) {
      auto fields = split_tabs(line);
      if (fields.size() < 2 || fields[1] != "1") continue;
      if (fields[0] == "CONT") {
        auto challenge = base64_decode(fields.size() > 2 ? fields[2] : "");
        std::string answer = challenge && *challenge == "Username:" ? user : password;
        if (!send_all(fd, "CONT\t1\t" + base64_encode(answer) + "\n")) break;
        continue;
      }
      std::string extra;
      for (size_t i = 2; i < fields.size(); ++i) extra += " " + tab_unescape(fields[i]);
      if (fields[0] == "OK") {
        fmt::print("passdb: {} auth succeeded\nextra fields:{}\n", user, extra);
        result = 0;
      } else if (fields[0] == "FAIL") {
        fmt::print("passdb: {} auth failed\nextra fields:{}\n", user, extra);
        result = kAuthFail;
      }
      break;
    }
  }
  if (result == kTempFail) fmt::print(stderr, "passdb: {} auth temporarily failed: connection closed\n", user);
  close(fd);
  return result;
}

}  // namespace postern::authd
