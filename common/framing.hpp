// framing.hpp - splitting a byte stream into frames, with hard size limits.
//
// Pure (no I/O), so the codecs are unit-testable. Feed bytes with append(); pull complete
// frames with next(). A frame over the limit or a malformed netstring puts the framer in
// an error state for good: the caller replies with an error and closes the connection.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace postern {

enum class FrameStatus { frame, need_more, too_long, malformed };

// Lines ending in LF; a CR before the LF is removed. max_line excludes the line end.
class LineFramer {
 public:
  explicit LineFramer(size_t max_line) : max_line_(max_line) {}
  void append(std::string_view bytes);
  // On FrameStatus::frame, *out is the line without its end. The view stays valid until
  // the next append() or next().
  FrameStatus next(std::string_view* out);
  size_t buffered() const { return buffer_.size() - start_; }

 private:
  size_t max_line_;
  std::string buffer_;
  size_t start_ = 0;
  size_t scanned_ = 0;  // bytes after start_ already known to hold no LF
  bool failed_ = false;
  FrameStatus failure_ = FrameStatus::need_more;
};

// Netstrings: <decimal length>:<bytes>, (cr.yp.to/proto/netstrings.txt). Leading zeros
// and a missing ',' are malformed; a declared length over max_payload is too_long, found
// as soon as the length digits are read.
class NetstringFramer {
 public:
  explicit NetstringFramer(size_t max_payload) : max_payload_(max_payload) {}
  void append(std::string_view bytes);
  FrameStatus next(std::string_view* out);
  size_t buffered() const { return buffer_.size() - start_; }

 private:
  size_t max_payload_;
  std::string buffer_;
  size_t start_ = 0;
  bool failed_ = false;
  FrameStatus failure_ = FrameStatus::need_more;
};

std::string encode_netstring(std::string_view payload);

}  // namespace postern
