// result.hpp - errors as values at module boundaries.
//
// Result<T> holds either a T or an Error. Status is Result<void>: success or an Error.
// Exceptions never cross a module boundary or the event loop; functions that can fail
// return one of these.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace postern {

struct Error {
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // REQUIRES: ok()
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // REQUIRES: !ok()
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}
  static Status Ok() { return Status(); }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  // REQUIRES: !ok()
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

// The error of the first failed result, in argument order; nullopt when all are ok.
// Lets a reader fetch many values, then report the first bad one in a fixed order.
template <class... Results>
std::optional<Error> first_error(const Results&... results) {
  std::optional<Error> bad;
  ((bad || results ? void() : void(bad = results.error())), ...);
  return bad;
}

}  // namespace postern
