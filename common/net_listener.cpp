// net_listener.cpp - Listener: binding unix and TCP sockets and accepting into Connections
// (contract in common/net.hpp).
//
// A unix socket is bound inside a fresh 0700 directory next to its final path, given its
// mode and owner there, and then hard-linked into place. So it is never reachable with the
// wrong permissions, the process umask is never touched (workers may be creating files),
// and link() refuses to replace anything that appeared at the path in the meantime. The
// socket is bound with plain syscalls and handed to libuv with uv_pipe_open, because a
// pipe bound by uv_pipe_bind unlinks its path on close, which could remove another
// process's socket; close() instead unlinks only the inode we created.

#include "common/daemon.hpp"
#include "common/log.hpp"
#include "common/net.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace postern {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

void close_and_free(uv_handle_t* handle) {
  uv_close(handle, [](uv_handle_t* h) { delete reinterpret_cast<uv_any_handle*>(h); });
}

bool fill_sockaddr(const std::string& path, sockaddr_un* sun) {
  std::memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  if (path.size() >= sizeof sun->sun_path) return false;
  std::memcpy(sun->sun_path, path.data(), path.size());
  return true;
}

// Removes the private directory the socket was bound in, whatever happens.
struct BindDir {
  std::string dir;
  std::string socket;
  ~BindDir() {
    if (!socket.empty()) ::unlink(socket.c_str());
    if (!dir.empty()) ::rmdir(dir.c_str());
  }
};

// Leaves the path free for us, or explains why it is not ours to take.
Status clear_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Error{"cannot stat " + path + ": " + errno_text(errno)};
  }
  if (!S_ISSOCK(st.st_mode)) return Error{path + " exists and is not a socket; not replacing it"};

  sockaddr_un sun;
  fill_sockaddr(path, &sun);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Error{"cannot create a socket to probe " + path + ": " + errno_text(errno)};
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun);
  int err = errno;
  ::close(fd);
  // EAGAIN: a full backlog, so someone is listening.
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS) return Error{path + " is in use by a running process"};
  if (err == ENOENT) return Status::Ok();
  if (err != ECONNREFUSED) return Error{"cannot check whether " + path + " is in use: " + errno_text(err)};

  // Only unlink the inode we probed, in case another daemon replaced it meanwhile.
  struct stat again {};
  if (::lstat(path.c_str(), &again) == 0 && again.st_dev == st.st_dev && again.st_ino == st.st_ino) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return Error{"cannot remove stale socket " + path + ": " + errno_text(errno)};
    log_info("removed stale socket {}", path);
  }
  return Status::Ok();
}

std::string tcp_peer_name(uv_tcp_t* tcp) {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "tcp";
  char ip[64] = {};
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    uv_ip4_name(sin, ip, sizeof ip);
    return std::string(ip) + ":" + std::to_string(ntohs(sin->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    uv_ip6_name(sin6, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(sin6->sin6_port));
  }
  return "tcp";
}

}  // namespace

Result<std::unique_ptr<Listener>> Listener::open(uv_loop_t* loop, const ListenAddress& address,
                                                 const UnixSocketOptions& unix_options, Framing framing,
                                                 ConnectionLimits limits, OnConnection on_connection) {
  std::unique_ptr<Listener> l(new Listener());
  l->loop_ = loop;
  l->address_ = address;
  l->framing_ = framing;
  l->limits_ = limits;
  l->on_connection_ = std::move(on_connection);
  Status s = address.kind == ListenAddress::Kind::tcp ? l->open_tcp() : l->open_unix(unix_options);
  if (!s) return s.error();  // ~Listener closes whatever was opened
  return l;
}

Status Listener::open_tcp() {
  sockaddr_storage ss{};
  bool v6 = address_.host.find(':') != std::string::npos;
  int rc = v6 ? uv_ip6_addr(address_.host.c_str(), static_cast<int>(address_.port), reinterpret_cast<sockaddr_in6*>(&ss))
              : uv_ip4_addr(address_.host.c_str(), static_cast<int>(address_.port), reinterpret_cast<sockaddr_in*>(&ss));
  if (rc != 0) return Error{"bad address " + address_.str() + ": " + uv_strerror(rc)};

  auto* h = new uv_any_handle;
  uv_tcp_init(loop_, &h->tcp);
  server_ = reinterpret_cast<uv_stream_t*>(&h->tcp);
  server_->data = this;
  rc = uv_tcp_bind(&h->tcp, reinterpret_cast<sockaddr*>(&ss), 0);
  if (rc != 0) return Error{"cannot bind " + address_.str() + ": " + uv_strerror(rc)};
  // libuv may report a bind conflict only here.
  rc = uv_listen(server_, SOMAXCONN, on_new_connection);
  if (rc != 0) return Error{"cannot listen on " + address_.str() + ": " + uv_strerror(rc)};
  return Status::Ok();
}

Status Listener::open_unix(const UnixSocketOptions& options) {
  const std::string& path = address_.path;
  sockaddr_un sun;
  if (!fill_sockaddr(path, &sun)) return Error{"socket path too long: " + path};

  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  if (!options.owner.empty()) {
    auto r = resolve_uid(options.owner);
    if (!r) return Error{address_.str() + ": " + r.error().message};
    uid = *r;
  }
  if (!options.group.empty()) {
    auto r = resolve_gid(options.group);
    if (!r) return Error{address_.str() + ": " + r.error().message};
    gid = *r;
  }

  Status cleared = clear_stale_socket(path);
  if (!cleared) return cleared;

  size_t slash = path.rfind('/');
  std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  BindDir tmp;
  std::string templ = parent + (parent.back() == '/' ? "" : "/") + ".postern-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) return Error{"cannot create a directory in " + parent + ": " + errno_text(errno)};
  tmp.dir = templ;
  std::string temp_socket = tmp.dir + "/s";
  if (!fill_sockaddr(temp_socket, &sun)) return Error{"socket path too long (with room to bind safely): " + path};

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{"cannot create socket for " + path + ": " + errno_text(errno)};
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    int err = errno;
    ::close(fd);
    return Error{"cannot bind " + path + ": " + errno_text(err)};
  }
  tmp.socket = temp_socket;

  auto* h = new uv_any_handle;
  uv_pipe_init(loop_, &h->pipe, 0);
  server_ = reinterpret_cast<uv_stream_t*>(&h->pipe);
  server_->data = this;
  int rc = uv_pipe_open(&h->pipe, fd);
  if (rc != 0) {
    ::close(fd);
    return Error{"cannot use socket for " + path + ": " + uv_strerror(rc)};
  }
  rc = uv_listen(server_, SOMAXCONN, on_new_connection);
  if (rc != 0) return Error{"cannot listen on " + path + ": " + uv_strerror(rc)};

  if (::chmod(temp_socket.c_str(), options.mode & 07777) != 0)
    return Error{"cannot chmod " + path + ": " + errno_text(errno)};
  if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) && ::lchown(temp_socket.c_str(), uid, gid) != 0)
    return Error{"cannot chown " + path + " to " + options.owner + ":" + options.group + ": " + errno_text(errno)};

  if (::link(temp_socket.c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) return Error{path + " appeared while binding; not replacing it"};
    return Error{"cannot create " + path + ": " + errno_text(errno)};
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    created_file_ = true;
    file_dev_ = st.st_dev;
    file_ino_ = st.st_ino;
  }
  return Status::Ok();
}

Listener::~Listener() { close(); }

void Listener::close() {
  if (server_ != nullptr) {
    close_and_free(reinterpret_cast<uv_handle_t*>(server_));
    server_ = nullptr;
  }
  if (created_file_) {
    created_file_ = false;
    struct stat st {};
    if (::lstat(address_.path.c_str(), &st) == 0 && st.st_dev == file_dev_ && st.st_ino == file_ino_) {
      if (::unlink(address_.path.c_str()) != 0)
        log_warning("cannot remove {}: {}", address_.path, errno_text(errno));
    }
  }
}

unsigned Listener::bound_port() const {
  if (server_ == nullptr || address_.kind != ListenAddress::Kind::tcp) return 0;
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getsockname(reinterpret_cast<uv_tcp_t*>(server_), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

void Listener::on_new_connection(uv_stream_t* server, int status) {
  auto* l = static_cast<Listener*>(server->data);
  if (status < 0) {
    log_warning("{}: accept failed: {}", l->address_.str(), uv_strerror(status));
    return;
  }
  auto* h = new uv_any_handle;
  bool tcp = l->address_.kind == ListenAddress::Kind::tcp;
  uv_stream_t* client;
  if (tcp) {
    uv_tcp_init(l->loop_, &h->tcp);
    client = reinterpret_cast<uv_stream_t*>(&h->tcp);
  } else {
    uv_pipe_init(l->loop_, &h->pipe, 0);
    client = reinterpret_cast<uv_stream_t*>(&h->pipe);
  }
  int rc = uv_accept(server, client);
  if (rc != 0) {
    log_warning("{}: accept failed: {}", l->address_.str(), uv_strerror(rc));
    close_and_free(reinterpret_cast<uv_handle_t*>(client));
    return;
  }
  std::string peer = "unix";
  if (tcp) {
    // Request/reply protocols: Nagle would hold back small replies.
    uv_tcp_nodelay(&h->tcp, 1);
    peer = tcp_peer_name(&h->tcp);
  }
  auto conn = Connection::adopt(client, l->framing_, l->limits_, std::move(peer));
  if (l->on_connection_)
    l->on_connection_(conn);
  else
    conn->close();
}

}  // namespace postern
