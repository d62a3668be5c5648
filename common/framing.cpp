// framing.cpp - LineFramer, NetstringFramer and encode_netstring, with hard size limits.
// Contract: common/framing.hpp.
#include "common/framing.hpp"

#include <cstdint>

namespace postern {

namespace {

// Consumed bytes are dropped from the front only once they are both numerous and at
// least half the buffer, so each byte is moved O(1) times on average.
constexpr size_t kCompactMin = 4096;

void compact(std::string& buffer, size_t& start) {
  if (start == 0) return;
  if (start == buffer.size()) {
    buffer.clear();
    start = 0;
  } else if (start >= kCompactMin && start * 2 >= buffer.size()) {
    buffer.erase(0, start);
    start = 0;
  }
}

// Ten digits already exceed any payload limit worth having; more is not a length.
constexpr size_t kMaxLengthDigits = 10;

}  // namespace

void LineFramer::append(std::string_view bytes) {
  // A failed framer is about to be closed; keeping its input would only cost memory.
  if (failed_) return;
  // Compaction happens here, not in next(): views handed out by next() stay valid until
  // the next append(), and a read loop calls next() many times per append().
  compact(buffer_, start_);
  buffer_.append(bytes);
}

FrameStatus LineFramer::next(std::string_view* out) {
  if (failed_) return failure_;
  auto fail = [this](FrameStatus s) {
    failed_ = true;
    failure_ = s;
    buffer_.clear();
    start_ = scanned_ = 0;
    return s;
  };
  size_t lf = buffer_.find('\n', start_ + scanned_);
  if (lf == std::string::npos) {
    size_t pending = buffer_.size() - start_;
    scanned_ = pending;
    // A line of exactly max_line bytes may still be followed by "\r\n", so one trailing
    // CR beyond the limit is allowed to wait for its LF.
    if (pending > max_line_ && !(pending == max_line_ + 1 && buffer_.back() == '\r')) return fail(FrameStatus::too_long);
    return FrameStatus::need_more;
  }
  size_t len = lf - start_;
  if (len > 0 && buffer_[lf - 1] == '\r') --len;
  if (len > max_line_) return fail(FrameStatus::too_long);
  *out = std::string_view(buffer_).substr(start_, len);
  start_ = lf + 1;
  scanned_ = 0;
  return FrameStatus::frame;
}

void NetstringFramer::append(std::string_view bytes) {
  if (failed_) return;
  compact(buffer_, start_);
  buffer_.append(bytes);
}

// The length prefix is at most kMaxLengthDigits long, so re-reading it on each call is
// O(1); the payload itself is never scanned.
FrameStatus NetstringFramer::next(std::string_view* out) {
  if (failed_) return failure_;
  auto fail = [this](FrameStatus s) {
    failed_ = true;
    failure_ = s;
    buffer_.clear();
    start_ = 0;
    return s;
  };
  std::uint64_t length = 0;
  size_t digits = 0;
  size_t i = start_;
  for (; i < buffer_.size(); ++i) {
    char c = buffer_[i];
    if (c == ':') break;
    if (c < '0' || c > '9') return fail(FrameStatus::malformed);
    if (digits == 1 && length == 0) return fail(FrameStatus::malformed);  // leading zero
    if (++digits > kMaxLengthDigits) return fail(FrameStatus::malformed);
    length = length * 10 + static_cast<std::uint64_t>(c - '0');
    if (length > max_payload_) return fail(FrameStatus::too_long);
  }
  if (i == buffer_.size()) return FrameStatus::need_more;
  if (digits == 0) return fail(FrameStatus::malformed);
  size_t payload = i + 1;
  size_t comma = payload + static_cast<size_t>(length);
  if (buffer_.size() <= comma) return FrameStatus::need_more;
  if (buffer_[comma] != ',') return fail(FrameStatus::malformed);
  *out = std::string_view(buffer_).substr(payload, static_cast<size_t>(length));
  start_ = comma + 1;
  return FrameStatus::frame;
}

std::string encode_netstring(std::string_view payload) {
  std::string out = std::to_string(payload.size());
  out.reserve(out.size() + payload.size() + 2);
  out += ':';
  out += payload;
  out += ',';
  return out;
}

}  // namespace postern
