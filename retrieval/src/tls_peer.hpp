// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Inside retrieval/: the SPKI hash of an OpenSSL certificate, for the client's handshake check.
#pragma once

#include "mimamori/retrieval/tls.hpp"

#include <openssl/x509.h>

#include <optional>

namespace mimamori::retrieval {

// SHA-256 of the DER SubjectPublicKeyInfo of `cert` (borrowed); nullopt when it cannot be encoded.
std::optional<SpkiHash> spkiSha256(X509* cert);

}  // namespace mimamori::retrieval
