// maildir_writer.cpp - deliver_to_maildirs: tmp/ -> new/ delivery for a set of targets,
// writing each message once per (filesystem, owner) group and hard-linking it to the rest.
#include "lmtpd/maildir_writer.hpp"

#include "lmtpd/maildir_tmp_cleaner.hpp"

#include "lmtpd/maildir_name.hpp"
#include "lmtpd/maildir_quota.hpp"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <tuple>

namespace postern::lmtpd {

namespace {

using Kind = DeliveryOutcome::Kind;

// EEXIST retries: names are unique by construction, so repeated collisions mean trouble.
constexpr int kNameAttempts = 16;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  int get() const { return fd_; }
  // Closes and reports close()'s errno (0 on success): a delayed write error shows up here.
  int close_checked() {
    int fd = fd_;
    fd_ = -1;
    return fd >= 0 && ::close(fd) != 0 ? errno : 0;
  }

 private:
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_;
};

bool running_as_root() { return geteuid() == 0; }

Kind kind_for(int err) {
  if (err == EDQUOT) return Kind::over_quota;  // filesystem quota of the owner
  if (err == ENOSPC) return Kind::disk_full;
  return Kind::failed;
}

DeliveryOutcome failure(int err, const std::string& what) {
  DeliveryOutcome out;
  out.kind = kind_for(err);
  out.error = what + ": " + std::strerror(err);
  return out;
}

DeliveryOutcome failure(Kind kind, std::string error) {
  DeliveryOutcome out;
  out.kind = kind;
  out.error = std::move(error);
  return out;
}

bool folder_name_is_safe(const std::string& folder) {
  return !folder.empty() && folder[0] != '.' && folder.find('/') == std::string::npos &&
         folder.find('\0') == std::string::npos;
}

int fsync_dir_path(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return errno;
  return fsync(fd.get()) != 0 ? errno : 0;
}

// mkdir -p below the first existing ancestor: each new directory gets exactly `mode`,
// the target's owner when we are root, and a fsynced parent so the entry survives a crash.
int make_dirs(const std::string& path, unsigned mode, uid_t uid, gid_t gid, std::string& where) {
  std::vector<std::string> missing;
  std::string cur = path;
  for (;;) {
    struct stat st {};
    if (stat(cur.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        where = cur;
        return ENOTDIR;
      }
      break;
    }
    if (errno != ENOENT) {
      where = cur;
      return errno;
    }
    missing.push_back(cur);
    size_t slash = cur.find_last_of('/');
    if (slash == 0 || slash == std::string::npos) break;  // "/" always exists
    cur.resize(slash);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    where = *it;
    if (mkdir(it->c_str(), mode) != 0) {
      struct stat st {};
      if (errno == EEXIST && stat(it->c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;  // lost a race
      return errno;
    }
    if (chmod(it->c_str(), mode) != 0) return errno;  // mkdir's mode is filtered by the umask
    if (running_as_root() && lchown(it->c_str(), uid, gid) != 0) return errno;
    std::string parent = it->substr(0, std::max<size_t>(it->find_last_of('/'), 1));
    if (int err = fsync_dir_path(parent); err != 0) return err;
  }
  return 0;
}

// One target ready to receive: its mailbox's tmp/ and new/ opened, its filesystem known.
struct Box {
  size_t index = 0;
  Fd tmp;
  Fd fresh;  // new/
  dev_t dev = 0;
};

// Opens <dir>tmp and <dir>new (dir: "" or a path ending in '/') relative to dir_fd into box.
// O_NOFOLLOW: a tmp/ or new/ replaced by a symlink must not redirect the delivery. Returns
// 0, or the errno with `which` set to the one that failed.
int open_tmp_and_new(int dir_fd, const std::string& dir, Box& box, std::string& which) {
  constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  which = dir + "tmp";
  box.tmp = Fd(openat(dir_fd, which.c_str(), kFlags));
  if (box.tmp.get() < 0) return errno;
  which = dir + "new";
  box.fresh = Fd(openat(dir_fd, which.c_str(), kFlags));
  return box.fresh.get() < 0 ? errno : 0;
}

// The common case, an INBOX whose cur/, new/ and tmp/ all exist, with one path lookup of
// the maildir instead of one per directory. False if anything is missing or odd: then
// prepare() takes the long way, which creates what is missing and names what failed.
bool open_existing_inbox(const MaildirTarget& t, Box& box) {
  Fd root(open(t.maildir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct stat st {};
  if (root.get() < 0 || fstat(root.get(), &st) != 0) return false;
  struct stat cur {};
  if (fstatat(root.get(), "cur", &cur, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(cur.st_mode)) return false;
  std::string which;
  if (open_tmp_and_new(root.get(), "", box, which) != 0) return false;
  box.dev = st.st_dev;
  return true;
}

// The long way: creates whatever of the maildir (and the folder) is missing, then opens
// the mailbox's tmp/ and new/ by path.
DeliveryOutcome create_and_open(const MaildirTarget& t, const MaildirOptions& opt, const std::string& mailbox,
                                Box& box) {
  std::string where;
  std::vector<std::string> dirs = {t.maildir + "/cur", t.maildir + "/new", t.maildir + "/tmp"};
  if (!t.folder.empty()) dirs.insert(dirs.end(), {mailbox + "/cur", mailbox + "/new", mailbox + "/tmp"});
  for (const std::string& dir : dirs)
    if (int err = make_dirs(dir, opt.dir_mode, t.uid, t.gid, where); err != 0) return failure(err, "mkdir " + where);
  if (!t.folder.empty()) {
    // Dovecot marks each Maildir++ subfolder with an empty "maildirfolder" file.
    std::string marker = mailbox + "/maildirfolder";
    Fd fd(open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, opt.file_mode));
    if (fd.get() < 0 && errno != EEXIST) return failure(errno, "create " + marker);
    if (fd.get() >= 0 && running_as_root() && fchown(fd.get(), t.uid, t.gid) != 0) return failure(errno, "chown " + marker);
  }
  struct stat st {};
  if (stat(t.maildir.c_str(), &st) != 0) return failure(errno, "stat " + t.maildir);
  box.dev = st.st_dev;
  if (int err = open_tmp_and_new(AT_FDCWD, mailbox + "/", box, where); err != 0) return failure(err, "open " + where);
  DeliveryOutcome ok;
  ok.kind = Kind::saved;
  return ok;
}

DeliveryOutcome prepare(const MaildirTarget& t, const MaildirOptions& opt, Box& box) {
  if (!maildir_path_is_safe(t.maildir)) return failure(Kind::failed, "unsafe path: " + t.maildir);
  if (!t.folder.empty() && !folder_name_is_safe(t.folder))
    return failure(Kind::failed, "unsafe folder name: " + t.folder);
  std::string mailbox = t.folder.empty() ? t.maildir : t.maildir + "/." + t.folder;
  if (!t.folder.empty() || !open_existing_inbox(t, box)) {
    DeliveryOutcome made = create_and_open(t, opt, mailbox, box);
    if (made.kind != Kind::saved) return made;
  }
  clean_stale_tmp(box.tmp.get(), mailbox);
  DeliveryOutcome ok;
  ok.kind = Kind::saved;
  return ok;
}

int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

// Writes headers + body into box's tmp/<name>, fsynced and closed. On failure nothing is left.
DeliveryOutcome write_tmp(const MaildirTarget& t, Box& box, std::string_view headers, const MessageSpool& body,
                          uint64_t size, const MaildirOptions& opt, const std::string& host, std::string& name) {
  int fd_or_err = -EEXIST;
  for (int i = 0; i < kNameAttempts && fd_or_err == -EEXIST; ++i) {
    name = maildir::unique_base_name(host);
    fd_or_err = maildir::create_exclusive_at(box.tmp.get(), name, opt.file_mode);
  }
  if (fd_or_err < 0) return failure(-fd_or_err, "create tmp/" + name);
  Fd fd(fd_or_err);
  int err = 0;
  std::string what = "write tmp/" + name;
  if (running_as_root() && fchown(fd.get(), t.uid, t.gid) != 0) err = errno, what = "chown tmp/" + name;
  if (err == 0) err = write_all(fd.get(), headers);
  if (err == 0) err = body.write_to(fd.get());
  struct stat st {};
  if (err == 0 && fstat(fd.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) != size) {
    unlinkat(box.tmp.get(), name.c_str(), 0);
    return failure(Kind::failed, "tmp/" + name + ": wrote " + std::to_string(st.st_size) + " bytes, expected " +
                                     std::to_string(size));
  }
  if (err == 0 && fsync(fd.get()) != 0) err = errno, what = "fsync tmp/" + name;
  if (int cerr = fd.close_checked(); err == 0 && cerr != 0) err = cerr, what = "close tmp/" + name;
  if (err != 0) {
    unlinkat(box.tmp.get(), name.c_str(), 0);
    return failure(err, what);
  }
  DeliveryOutcome ok;
  ok.kind = Kind::saved;
  return ok;
}

// After the entry is in new/, it is durable only once new/ itself is fsynced. If that
// fails, withdraw the entry so the deferred retry does not produce a duplicate.
DeliveryOutcome finish_in_new(Box& box, const std::string& final) {
  if (fsync(box.fresh.get()) != 0) {
    int err = errno;
    unlinkat(box.fresh.get(), final.c_str(), 0);
    return failure(err, "fsync new/");
  }
  DeliveryOutcome ok;
  ok.kind = Kind::saved;
  ok.filename = final;
  return ok;
}

int rename_noreplace(int from_dir, const std::string& from, int to_dir, const std::string& to) {
  if (renameat2(from_dir, from.c_str(), to_dir, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return errno;
  // Filesystems without RENAME_NOREPLACE: link() refuses to replace as well.
  if (linkat(from_dir, from.c_str(), to_dir, to.c_str(), 0) != 0) return errno;
  unlinkat(from_dir, from.c_str(), 0);
  return 0;
}

// Moves box's tmp/<name> to new/<name>,S=<size>, never replacing an existing file.
DeliveryOutcome move_into_new(Box& box, const std::string& name, uint64_t size, const std::string& host) {
  int err = EEXIST;
  std::string final;
  for (int i = 0; i < kNameAttempts && err == EEXIST; ++i) {
    // The tmp/ name is unique already; like Dovecot, new/ keeps it (another on a clash).
    final = maildir::final_name(i == 0 ? name : maildir::unique_base_name(host), size);
    err = rename_noreplace(box.tmp.get(), name, box.fresh.get(), final);
  }
  if (err != 0) {
    unlinkat(box.tmp.get(), name.c_str(), 0);
    return failure(err, "rename tmp/" + name + " to new/");
  }
  return finish_in_new(box, final);
}

// Hard-links the leader's fsynced tmp file into other's new/. Sets `fallback` when the
// link is impossible for reasons of this filesystem, not of the target (then write a copy).
DeliveryOutcome link_into_new(Box& leader, const std::string& name, Box& other, uint64_t size,
                              const std::string& host, bool& fallback) {
  int err = EEXIST;
  std::string final;
  for (int i = 0; i < kNameAttempts && err == EEXIST; ++i) {
    final = maildir::final_name(maildir::unique_base_name(host), size);
    err = linkat(leader.tmp.get(), name.c_str(), other.fresh.get(), final.c_str(), 0) == 0 ? 0 : errno;
  }
  fallback = err == EXDEV || err == EMLINK || err == EPERM;
  if (err != 0) return failure(err, "link into new/");
  return finish_in_new(other, final);
}

}  // namespace

bool maildir_path_is_safe(const std::string& path) {
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos) return false;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part(path.data() + start, end - start);
    if (part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

bool maildir_folder_exists(const std::string& maildir, const std::string& folder) {
  if (!maildir_path_is_safe(maildir) || !folder_name_is_safe(folder)) return false;
  struct stat st {};
  return stat((maildir + "/." + folder).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<DeliveryOutcome> deliver_to_maildirs(const std::vector<MaildirTarget>& targets, std::string_view headers,
                                                 const MessageSpool& body, const MaildirOptions& options) {
  std::vector<DeliveryOutcome> outcomes(targets.size());
  if (body.status() != MessageSpool::Status::done) {
    for (auto& o : outcomes) o = failure(Kind::failed, "message incomplete");
    return outcomes;
  }
  const uint64_t size = headers.size() + body.size();
  const std::string host = maildir::local_hostname(options.hostname);

  // Prepare every target; group the ready ones by (filesystem, owner), in target order.
  std::vector<Box> boxes(targets.size());
  std::vector<std::vector<size_t>> groups;
  std::vector<std::tuple<dev_t, uid_t, gid_t>> group_keys;
  for (size_t i = 0; i < targets.size(); ++i) {
    const MaildirTarget& t = targets[i];
    boxes[i].index = i;
    outcomes[i] = prepare(t, options, boxes[i]);
    if (outcomes[i].kind != Kind::saved) continue;
    if (t.quota_bytes && *t.quota_bytes > 0) {
      maildir::QuotaState q = maildir::load_quota(t.maildir, *t.quota_bytes, t.uid, t.gid);
      if (q.usage.bytes + size > *t.quota_bytes) {
        outcomes[i] = failure(Kind::over_quota, "Quota exceeded (mailbox for user is full)");
        continue;
      }
    }
    auto key = std::make_tuple(boxes[i].dev, t.uid, t.gid);
    size_t g = 0;
    while (g < group_keys.size() && group_keys[g] != key) ++g;
    if (g == group_keys.size()) {
      group_keys.push_back(key);
      groups.emplace_back();
    }
    groups[g].push_back(i);
  }

  // Per group: write once, link into every other member's new/ while the file is still in
  // the leader's tmp/ (where no reader moves it), then rename it into the leader's new/.
  // A leader that cannot be written (its own directory's problem) passes the role on.
  for (size_t g = 0; g < groups.size(); ++g) {
    std::vector<size_t> members = groups[g];
    std::vector<size_t> singles;
    while (!members.empty()) {
      size_t lead = members.front();
      members.erase(members.begin());
      std::string name;
      outcomes[lead] = write_tmp(targets[lead], boxes[lead], headers, body, size, options, host, name);
      if (outcomes[lead].kind != Kind::saved) continue;
      for (size_t other : members) {
        bool fallback = false;
        outcomes[other] = link_into_new(boxes[lead], name, boxes[other], size, host, fallback);
        if (fallback) singles.push_back(other);
      }
      members.clear();
      outcomes[lead] = move_into_new(boxes[lead], name, size, host);
    }
    for (size_t one : singles) {
      std::string name;
      outcomes[one] = write_tmp(targets[one], boxes[one], headers, body, size, options, host, name);
      if (outcomes[one].kind == Kind::saved) outcomes[one] = move_into_new(boxes[one], name, size, host);
    }
  }

  // The message is saved: a failed delta append only makes maildirsize stale, and the next
  // rewrite (limit change, corruption) corrects it; it must not turn into a failure reply.
  for (size_t i = 0; i < targets.size(); ++i) {
    const MaildirTarget& t = targets[i];
    if (outcomes[i].kind == Kind::saved && t.quota_bytes && *t.quota_bytes > 0)
      maildir::append_quota_delta(t.maildir, static_cast<int64_t>(size), 1);
  }
  return outcomes;
}

}  // namespace postern::lmtpd
