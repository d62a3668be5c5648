// maildir_writer.cpp - deliver_to_maildirs: tmp/ -> new/ delivery for a set of targets,
// writing each message once per (filesystem, owner) group and hard-linking it to the rest.
#include "lmtpd/maildir_writer.hpp"

#include "lmtpd/maildir_tmp_cleaner.hpp"

#include "lmtpd/maildir_name.hpp"
#include "lmtpd/maildir_quota.hpp"
#include "lmtpd/maildir_tmp_file.hpp"
#include "lmtpd/unique_fd.hpp"

#include <fcntl.h>
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
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
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
  UniqueFd tmp;
  UniqueFd fresh;  // new/
  dev_t dev = 0;
};

DeliveryOutcome prepare(const MaildirTarget& t, const MaildirOptions& opt, Box& box) {
  if (!maildir_path_is_safe(t.maildir)) return failure(Kind::failed, "unsafe path: " + t.maildir);
  if (!t.folder.empty() && !folder_name_is_safe(t.folder))
    return failure(Kind::failed, "unsafe folder name: " + t.folder);
  std::string mailbox = t.folder.empty() ? t.maildir : t.maildir + "/." + t.folder;
  std::string where;
  std::vector<std::string> dirs = {t.maildir + "/cur", t.maildir + "/new", t.maildir + "/tmp"};
  if (!t.folder.empty()) dirs.insert(dirs.end(), {mailbox + "/cur", mailbox + "/new", mailbox + "/tmp"});
  for (const std::string& dir : dirs)
    if (int err = make_dirs(dir, opt.dir_mode, t.uid, t.gid, where); err != 0) return failure(err, "mkdir " + where);
  if (!t.folder.empty()) {
    // Dovecot marks each Maildir++ subfolder with an empty "maildirfolder" file.
    std::string marker = mailbox + "/maildirfolder";
    UniqueFd fd(open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, opt.file_mode));
    if (fd.get() < 0 && errno != EEXIST) return failure(errno, "create " + marker);
    if (fd.get() >= 0 && running_as_root() && fchown(fd.get(), t.uid, t.gid) != 0) return failure(errno, "chown " + marker);
  }
  struct stat st {};
  if (stat(t.maildir.c_str(), &st) != 0) return failure(errno, "stat " + t.maildir);
  box.dev = st.st_dev;
  // O_NOFOLLOW: a tmp/ or new/ replaced by a symlink must not redirect the delivery.
  box.tmp = UniqueFd(open((mailbox + "/tmp").c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (box.tmp.get() < 0) return failure(errno, "open " + mailbox + "/tmp");
  clean_stale_tmp(box.tmp.get(), mailbox);
  box.fresh = UniqueFd(open((mailbox + "/new").c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (box.fresh.get() < 0) return failure(errno, "open " + mailbox + "/new");
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

// Writes headers + body into a new file in box's tmp/, fsynced. On failure nothing is left.
DeliveryOutcome write_message(const MaildirTarget& t, Box& box, std::string_view headers, const MessageSpool& body,
                              uint64_t size, const MaildirOptions& opt, const std::string& host,
                              MaildirTmpFile& file) {
  if (int err = file.create(box.tmp.get(), opt.file_mode, opt.unnamed_tmp_files, host); err != 0)
    return failure(err, "create " + file.describe());
  int err = 0;
  std::string what = "write " + file.describe();
  if (running_as_root() && fchown(file.fd(), t.uid, t.gid) != 0) err = errno, what = "chown " + file.describe();
  if (err == 0) err = write_all(file.fd(), headers);
  if (err == 0) err = body.write_to(file.fd());
  struct stat st {};
  if (err == 0 && fstat(file.fd(), &st) == 0 && static_cast<uint64_t>(st.st_size) != size) {
    std::string wrong = file.describe() + ": wrote " + std::to_string(st.st_size) + " bytes, expected " +
                        std::to_string(size);
    file.discard();
    return failure(Kind::failed, wrong);
  }
  if (err == 0 && fsync(file.fd()) != 0) err = errno, what = "fsync " + file.describe();
  if (int cerr = file.finish_writing(); err == 0 && cerr != 0) err = cerr, what = "close " + file.describe();
  if (err != 0) {
    file.discard();
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

// Gives the written file its entry new/<unique>,S=<size> in box, never replacing a file.
DeliveryOutcome move_into_new(MaildirTmpFile& file, Box& box, uint64_t size, const std::string& host) {
  int err = EEXIST;
  std::string final;
  for (int i = 0; i < kNameAttempts && err == EEXIST; ++i) {
    final = maildir::final_name(maildir::unique_base_name(host), size);
    err = file.move_into(box.fresh.get(), final);
  }
  if (err != 0) {
    std::string what = "move " + file.describe() + " to new/";
    file.discard();
    return failure(err, what);
  }
  return finish_in_new(box, final);
}

// Hard-links the leader's fsynced file into other's new/. Sets `fallback` when the
// link is impossible for reasons of this filesystem, not of the target (then write a copy).
DeliveryOutcome link_into_new(MaildirTmpFile& file, Box& other, uint64_t size, const std::string& host,
                              bool& fallback) {
  int err = EEXIST;
  std::string final;
  for (int i = 0; i < kNameAttempts && err == EEXIST; ++i) {
    final = maildir::final_name(maildir::unique_base_name(host), size);
    err = file.link_into(other.fresh.get(), final);
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

  // Per group: write once, link into every other member's new/ while the file is still
  // the leader's (unnamed, or in its tmp/ where no reader moves it), then move it into
  // the leader's new/.
  // A leader that cannot be written (its own directory's problem) passes the role on.
  for (size_t g = 0; g < groups.size(); ++g) {
    std::vector<size_t> members = groups[g];
    std::vector<size_t> singles;
    while (!members.empty()) {
      size_t lead = members.front();
      members.erase(members.begin());
      MaildirTmpFile file;
      outcomes[lead] = write_message(targets[lead], boxes[lead], headers, body, size, options, host, file);
      if (outcomes[lead].kind != Kind::saved) continue;
      for (size_t other : members) {
        bool fallback = false;
        outcomes[other] = link_into_new(file, boxes[other], size, host, fallback);
        if (fallback) singles.push_back(other);
      }
      members.clear();
      outcomes[lead] = move_into_new(file, boxes[lead], size, host);
    }
    for (size_t one : singles) {
      MaildirTmpFile file;
      outcomes[one] = write_message(targets[one], boxes[one], headers, body, size, options, host, file);
      if (outcomes[one].kind == Kind::saved) outcomes[one] = move_into_new(file, boxes[one], size, host);
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
