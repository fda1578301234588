// proto/imap/parsed.h: Parsed<T>, what an argument interpreter returns: a value, or the reason
// the arguments are wrong, worded for the text of the tagged BAD (or NO) the session sends.
#pragma once
#include <string>
#include <utility>
#include <variant>

namespace millipost::imap {

struct ArgError {
    std::string text;  // e.g. "Invalid sequence set '1:x': expected a number or '*' at 'x'"
    std::string code;  // a response code the session should use (e.g. "BADCHARSET"), or empty;
                       // with a code the reply is NO [code], without one it is BAD
    bool operator==(const ArgError&) const = default;
};

inline ArgError bad(std::string text) {
    return ArgError{std::move(text), {}};
}

template <class T>
class Parsed {
  public:
    Parsed(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Parsed(ArgError e) : v_(std::in_place_index<1>, std::move(e)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    // Precondition for the accessors: ok() (error(): !ok()).
    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const ArgError& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, ArgError> v_;
};

}  // namespace millipost::imap
