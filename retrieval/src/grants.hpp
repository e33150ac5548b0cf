// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The seam between deciding requests and building extracts: a build slot, then the grant.
#pragma once

#include "mimamori/policy/request.hpp"

#include <functional>
#include <optional>
#include <string>
#include <utility>

namespace mimamori::retrieval {

// One of the K build slots, held from the decision until the extract's hash pass ends.
// Move-only; gives the slot back when destroyed.
class BuildSlot {
public:
    explicit BuildSlot(std::function<void()> release) : release_(std::move(release)) {}
    BuildSlot(BuildSlot&& other) noexcept : release_(std::exchange(other.release_, {})) {}
    BuildSlot& operator=(BuildSlot&& other) noexcept {
        if (this != &other) {
            if (release_) release_();
            release_ = std::exchange(other.release_, {});
        }
        return *this;
    }
    BuildSlot(const BuildSlot&) = delete;
    BuildSlot& operator=(const BuildSlot&) = delete;
    ~BuildSlot() {
        if (release_) release_();
    }

private:
    std::function<void()> release_;
};

// What the request service needs from whoever builds extracts. Thread-safe.
class Grants {
public:
    virtual ~Grants() = default;
    // A free build slot, or nothing while K extracts are being built.
    [[nodiscard]] virtual std::optional<BuildSlot> reserveBuild() = 0;
    // Starts the extract of a granted, audited request in `slot`; returns its id (32 hex).
    // Throws (naming what failed) when the extract cannot even be planned.
    [[nodiscard]] virtual std::string grant(BuildSlot slot, const policy::SignedRequest& request,
                                            const std::string& requestSha256) = 0;
};

}  // namespace mimamori::retrieval
