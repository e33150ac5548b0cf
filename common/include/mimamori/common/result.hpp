// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Result<T>: a value or the one-line error text of an expected runtime failure (tl::expected-style).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace mimamori::common {

// Why an expected runtime failure happened, as one line fit for the log (callers escape nothing:
// logLine does). Plain value.
struct Error {
    std::string message;
};

// Either a T or an Error. Setup problems stay exceptions (STYLE.md); a Result is for failures
// the caller handles and logs while the daemon keeps running, so ignoring one is a compile
// error under -Werror ([[nodiscard]] on the class). Plain value; not thread-safe.
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return state_.index() == 0; }
    explicit operator bool() const { return ok(); }

    // The value; asking for it on an error is a bug in the caller, so it throws std::logic_error
    // (never undefined behaviour in a Release build).
    T& value() & { return std::get<0>(checked(state_)); }
    const T& value() const& { return std::get<0>(checked(state_)); }
    T&& value() && { return std::get<0>(std::move(checked(state_))); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    // The error's message; throws std::logic_error on a value.
    const std::string& error() const {
        if (ok()) throw std::logic_error("Result::error() called on a value");
        return std::get<1>(state_).message;
    }

private:
    template <typename State>
    static State& checked(State& state) {
        if (state.index() != 0)
            throw std::logic_error("Result::value() called on an error: " + std::get<1>(state).message);
        return state;
    }

    std::variant<T, Error> state_;
};

// Success without a value, or an Error.
template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)) {}

    bool ok() const { return !error_; }
    explicit operator bool() const { return ok(); }

    // The error's message; throws std::logic_error on success.
    const std::string& error() const {
        if (!error_) throw std::logic_error("Result::error() called on a success");
        return error_->message;
    }

private:
    std::optional<Error> error_;
};

// Spelled `return common::success();` where a bare `return {};` would hide what is returned.
inline Result<void> success() { return {}; }

}  // namespace mimamori::common
