// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The endpoint's HTTP layer: routes to handlers, and the answers to what no route takes.
#include "router.hpp"

#include "answers.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace mimamori::retrieval {

HttpResponse jsonAnswer(int status, std::string body) {
    HttpResponse res;
    res.status = status;
    res.body = std::move(body);
    return res;
}

HttpResponse errorAnswer(int status, std::string_view code, std::string_view reason) {
    using Json = nlohmann::json;
    return jsonAnswer(status, Json{{"error", code}, {"reason", reason}}.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n");
}

std::function<std::optional<std::string>(std::string_view)> exactPath(std::string path) {
    return [path = std::move(path)](std::string_view p) -> std::optional<std::string> {
        if (p == path) return std::string();
        return std::nullopt;
    };
}

const Route* Router::find(const HttpRequest& request, std::string& parameter) const {
    const std::string_view path = request.path();
    for (const Route& route : routes_) {
        if (route.method != request.method) continue;
        if (auto p = route.match(path)) {
            parameter = std::move(*p);
            return &route;
        }
    }
    return nullptr;
}

HttpResponse Router::handle(const HttpRequest& request) {
    std::string parameter;
    if (const Route* route = find(request, parameter)) return route->handle(request, parameter);
    return refuseRoute(request, 404, "not_found", "no such route");
}

HttpResponse Router::refuse(const HttpRequest& request, HttpProblem problem) {
    const int status = problemStatus(problem);
    const std::string code(problemCode(problem));
    std::string text;
    switch (problem) {
        case HttpProblem::Malformed: text = "not a well-formed HTTP/1.1 request"; break;
        case HttpProblem::HeaderTooLarge: text = "request header over 8192 bytes"; break;
        case HttpProblem::TooManyHeaders: text = "more than 64 header fields"; break;
        case HttpProblem::TransferEncoding:
            text = "Transfer-Encoding is not accepted (send the body with Content-Length)";
            break;
        case HttpProblem::BodyNotAllowed: text = fmt::format("a {} request may not carry a body", request.method); break;
        case HttpProblem::LengthRequired: text = "request without Content-Length (chunked bodies are not accepted)"; break;
        case HttpProblem::TooLarge:
            text = fmt::format("request body of {} bytes exceeds the limit of {} bytes",
                               request.header("content-length").value_or("?"), maxRequestBytes_);
            break;
    }
    std::string parameter;
    if (const Route* route = find(request, parameter); route && route->refused)
        return route->refused(request, status, code, text);
    audit_.httpRefused(request, code, status);
    return errorAnswer(status, code, text);
}

void Router::dropped(const HttpRequest& request, std::string_view reason) { audit_.httpRefused(request, reason, 0); }

HttpResponse Router::refuseRoute(const HttpRequest& request, int status, std::string_view code, std::string_view reason) {
    audit_.httpRefused(request, code, status);
    return errorAnswer(status, code, reason);
}

}  // namespace mimamori::retrieval
