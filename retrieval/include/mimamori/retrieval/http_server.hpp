// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// A bounded HTTP/1.1 server for the camera's endpoint (docs/retrieval-http.md, "Budgets").
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mimamori::retrieval {

// Every resource one peer or all of them together can take. Defaults are the daemon's.
struct HttpLimits {
    int maxConnections = 64;         // open connections, all peers together
    int maxConnectionsPerPeer = 8;   // open connections from one IP address
    std::chrono::milliseconds requestDeadline{10'000};  // accept to last request byte, whole
    std::chrono::milliseconds writeStall{30'000};       // longest wait for the peer to take a response chunk
    std::chrono::milliseconds linger{1'000};            // reading and discarding after a refusal, then close
    std::size_t maxHeaderBytes = 8192;                  // request line and header fields together
    int maxHeaderFields = 64;
    std::size_t maxBodyBytes = 32 * 1024;               // only POST may carry a body
    int threads = 8;
};

// One request as the server read it. Header names are lower case; the body is empty for all
// but an admitted POST.
struct HttpRequest {
    std::string method;   // as sent ("GET", "PUT", …)
    std::string target;   // as sent, query included
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string peer;     // the client's IP address
    // The first header of that (lower-case) name.
    std::optional<std::string_view> header(std::string_view lowerName) const;
    // The target without its query ("/v1/requests?x" -> "/v1/requests").
    std::string_view path() const;
};

// Why the server refused a request before its body was read (or without one). The handler
// answers each through refuse().
enum class HttpProblem {
    Malformed,         // 400 bad_request: not parseable HTTP/1.x
    HeaderTooLarge,    // 431 header_too_large: over maxHeaderBytes
    TooManyHeaders,    // 431 too_many_headers: over maxHeaderFields
    TransferEncoding,  // 411 length_required: any Transfer-Encoding (the body is never read)
    BodyNotAllowed,    // 400 body_not_allowed: a method other than POST declaring a body
    LengthRequired,    // 411 length_required: a POST without Content-Length
    TooLarge,          // 413 oversized: Content-Length over maxBodyBytes
};
// The error code word of a problem ("header_too_large") and its HTTP status.
std::string_view problemCode(HttpProblem problem);
int problemStatus(HttpProblem problem);

// What to send. `body` is sent as is; or, when `stream` is set, bytes [streamBegin, streamEnd)
// are read through it in chunks and `onSent` is told of each chunk the socket took.
struct HttpResponse {
    int status = 200;
    std::string contentType = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    // Fills `buffer` with the bytes at `offset`, called with consecutive offsets; returns how
    // many (0: end of data, error). It may wait for bytes being produced: it holds one server
    // thread meanwhile. Destroyed with the response when the connection ends.
    std::function<std::size_t(std::uint64_t offset, std::span<char> buffer)> stream;
    std::uint64_t streamBegin = 0;
    std::uint64_t streamEnd = 0;
    std::function<void(std::uint64_t begin, std::uint64_t end, const std::string& peer)> onSent;
};

// The routes and refusals. Called on the server's threads, several at once; the arguments live
// for the call.
class HttpHandler {
public:
    virtual ~HttpHandler() = default;
    // A complete, admitted request.
    virtual HttpResponse handle(const HttpRequest& request) = 0;
    // A request refused for `problem`; `request` holds what was read of it (maybe nothing).
    virtual HttpResponse refuse(const HttpRequest& request, HttpProblem problem) = 0;
    // A connection closed by the server without an answer: over budget (`reason`
    // "connections_total" / "connections_per_peer", refused at accept) or "deadline" (the
    // request was not complete in time; `request` holds what was read of it).
    virtual void dropped(const HttpRequest& request, std::string_view reason) = 0;
};

// The outcome of parsing one request head with the server's own parser (for tests and fuzzing).
struct ParsedHead {
    bool complete = false;                  // a whole head was found in the bytes
    std::optional<HttpProblem> problem;     // refused (also set when incomplete but already over a limit)
    HttpRequest request;                    // what was read (method, target, headers)
    std::optional<std::uint64_t> contentLength;
    std::size_t headBytes = 0;              // bytes the head took, when complete
};
ParsedHead parseRequestHead(std::string_view bytes, const HttpLimits& limits);

// HTTPS: the certificate (PEM, the first one is the server's) and its private key (PEM).
// TLS 1.3 only; the handshake runs under the request deadline (docs/keys.md).
struct HttpTls {
    std::filesystem::path certFile;
    std::filesystem::path keyFile;
};

// The running server: an accept loop that counts connections and refuses beyond the budget, a
// whole-request deadline per connection, one request per connection (every answer closes it).
class HttpServer {
public:
    // Binds `address`:`port` (0: any free port) and serves on `limits.threads` threads, over
    // TLS when `tls` is given. `handler` is borrowed and must outlive the server. Throws
    // std::runtime_error naming the address when it cannot listen, or the file when the TLS
    // certificate or key cannot be loaded. A failed handshake is reported through
    // handler.dropped() with reason "tls_handshake".
    static std::unique_ptr<HttpServer> start(const std::string& address, int port, const HttpLimits& limits,
                                             HttpHandler& handler, const std::optional<HttpTls>& tls = std::nullopt);
    virtual ~HttpServer() = default;
    virtual int port() const = 0;
    // Open connections now (for tests and health).
    virtual int connections() const = 0;
    // Stops accepting, closes every connection, joins the threads. Idempotent.
    virtual void stop() = 0;
};

}  // namespace mimamori::retrieval
