// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The endpoint's HTTP layer: maps a method and a path to the service that owns the route, and
// answers what no route takes. No decision about requests or extracts is made here.
#pragma once

#include "mimamori/retrieval/http_server.hpp"
#include "unauthenticated_audit.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::retrieval {

// One route, registered by the service that answers it.
struct Route {
    std::string method;  // "GET", "POST"
    // The route's parameter taken from the path ("" when it has none), or nothing when the
    // path is not this route's.
    std::function<std::optional<std::string>(std::string_view path)> match;
    // Answers an admitted request (on a server thread, several at once).
    std::function<HttpResponse(const HttpRequest& request, const std::string& parameter)> handle;
    // Answers a request for this route that the server refused before its body (`code` and
    // `text` say why). Unset: audited as http_refused like any other refusal.
    std::function<HttpResponse(const HttpRequest& request, int status, const std::string& code,
                               const std::string& text)>
        refused;
};

// A path that is exactly `path`.
std::function<std::optional<std::string>(std::string_view)> exactPath(std::string path);

// Routes are added before the server starts and never after; lookups are then read-only, so
// the server's threads call in concurrently.
class Router final : public HttpHandler {
public:
    Router(UnauthenticatedAudit& audit, std::size_t maxRequestBytes) : audit_(audit), maxRequestBytes_(maxRequestBytes) {}
    void add(Route route) { routes_.push_back(std::move(route)); }

    HttpResponse handle(const HttpRequest& request) override;
    HttpResponse refuse(const HttpRequest& request, HttpProblem problem) override;
    void dropped(const HttpRequest& request, std::string_view reason) override;

    // 404 not_found (or another refusal by a route), audited as http_refused within the budget.
    HttpResponse refuseRoute(const HttpRequest& request, int status, std::string_view code, std::string_view reason);

private:
    const Route* find(const HttpRequest& request, std::string& parameter) const;

    UnauthenticatedAudit& audit_;
    std::size_t maxRequestBytes_;
    std::vector<Route> routes_;
};

}  // namespace mimamori::retrieval
