// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the audit log's lines and checkpoints (docs/audit-log.md), through the readers
// `audit show` and `audit verify` use, against the fixed camera key the seeds are signed with.
#include "../fuzz_support.hpp"

#include "mimamori/policy/audit_log.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace mimamori::policy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const SignPublicKey cameraKey = mimamori::fuzz::fixedKey(Role::Camera, "fuzz-camera", 3).publicKey().signKey;
    static mimamori::fuzz::MemFile file;
    file.set({data, size});
    const AuditVerifyResult verified = verifyAuditLog(file.path(), cameraKey);
    if (verified.ok != verified.reason.empty()) std::abort();
    try {
        const auto entries = readAuditLog(file.path());
        if (verified.ok && entries.size() != verified.entries) std::abort();
    } catch (const AuditError& e) {
        if (verified.ok) std::abort();  // what verifies must be readable
        (void)e.what();
    }
    (void)AuditCheckpoint::parse(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}
