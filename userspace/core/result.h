#pragma once
// Result<T>: a value or one human-readable error sentence.
#include <string>
#include <utility>
#include <variant>

namespace jg {

struct Error {
    std::string message;
};

template <typename T>
class Result {
public:
    Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
    Result(Error e) : v_(std::move(e)) {}      // NOLINT(google-explicit-constructor)

    bool ok() const { return std::holds_alternative<T>(v_); }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<T>(v_); }
    const T& value() const { return std::get<T>(v_); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const std::string& error() const { return std::get<Error>(v_).message; }

private:
    std::variant<T, Error> v_;
};

inline Error err(std::string message) { return Error{std::move(message)}; }

}  // namespace jg
