// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// JSON answers shared by the endpoint's routes (docs/retrieval-http.md, "Error codes").
#pragma once

#include "mimamori/retrieval/http_server.hpp"

#include <string>
#include <string_view>

namespace mimamori::retrieval {

HttpResponse jsonAnswer(int status, std::string body);
// {"error":CODE,"reason":REASON} with that status.
HttpResponse errorAnswer(int status, std::string_view code, std::string_view reason);

}  // namespace mimamori::retrieval
