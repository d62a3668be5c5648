// message_spool.hpp - the DATA section, received once for all recipients.
//
// add_line() takes each line as received (the framer has removed LF and a CR before
// it): "." ends the message, a leading dot is unstuffed, lines are stored with LF
// endings (as Dovecot stores them: mail_save_crlf = no). Up to memory_limit bytes stay
// in memory; beyond that the content moves to an unlinked temp file in temp_dir
// (O_TMPFILE), so a crash leaves nothing behind. Past max_size the rest is discarded and
// the status is too_large (the session still reads to the final dot, then replies 552).
//
// add_line() returns `more` until it receives the final "."; only then does it return
// the final status: done, too_large or io_error (so the session always consumes the
// whole DATA section). overflowed()/failed() tell early that the outcome is decided.
// max_size counts the stored (LF) size; 0 means no limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace postern::lmtpd {

class MessageSpool {
 public:
  enum class Status { more, done, too_large, io_error };

  MessageSpool(std::string temp_dir, size_t memory_limit, uint64_t max_size);
  ~MessageSpool();
  MessageSpool(const MessageSpool&) = delete;
  MessageSpool& operator=(const MessageSpool&) = delete;

  Status add_line(std::string_view line);
  Status status() const { return status_; }
  // True once the content passed max_size (add_line will end with too_large).
  bool overflowed() const { return overflow_; }
  // True once a temp-file write failed (add_line will end with io_error).
  bool failed() const { return !error_.empty(); }
  // Stored size (LF endings), and the size with every LF counted as CRLF (RFC822.SIZE).
  uint64_t size() const { return size_; }
  uint64_t size_crlf() const { return size_ + lines_; }
  // True once the content lives in the temp file rather than in memory.
  bool spilled() const { return fd_ >= 0; }
  // Why io_error happened.
  const std::string& error() const { return error_; }

  // REQUIRES: status() == done. Writes the whole content to fd at its current offset.
  // Returns 0 or an errno value (ENOSPC, EDQUOT, EIO...). Thread-safe for concurrent
  // readers (uses pread on the temp file).
  int write_to(int fd) const;

 private:
  Status spill_to_file();
  bool flush_pending();

  bool overflow_ = false;

  std::string temp_dir_;
  size_t memory_limit_;
  uint64_t max_size_;
  Status status_ = Status::more;
  std::string memory_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t lines_ = 0;
  std::string error_;
};

}  // namespace postern::lmtpd
