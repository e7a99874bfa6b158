// Result<T>: the value-or-error type used across Hato for expected failures.
//
// Expected failures (bad input, unknown user, storage temporarily failing)
// are values, not exceptions. Each Error has a Kind that the protocol layers
// map to their reply class (SMTP 4xx/5xx, POP3 -ERR [SYS/TEMP], ...).
// Exceptions are reserved for bugs and are caught once at the session boundary.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace hato {

enum class ErrorKind {
  kInvalid,    // bad input from the caller (syntax, bad argument)
  kNotFound,   // the named thing does not exist
  kExists,     // the named thing already exists
  kAuth,       // authentication failed
  kInUse,      // locked by someone else (POP3 maildrop)
  kTooLarge,   // a named limit was exceeded
  kTemporary,  // transient: storage, overload; the client should retry later
  kCorrupt,    // stored data failed its checksum
  kInternal,   // a bug or an unexpected condition
};

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;

  bool temporary() const { return kind == ErrorKind::kTemporary || kind == ErrorKind::kCorrupt; }
};

inline Error Err(ErrorKind kind, std::string message) { return Error{kind, std::move(message)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status Ok() { return Status(); }

}  // namespace hato
