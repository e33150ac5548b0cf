// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The bounded HTTP server: Boost.Beast's parser under our limits, our own accept loop and budget.
#include "mimamori/retrieval/http_server.hpp"

#include "mimamori/common/log.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>

namespace mimamori::retrieval {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

std::optional<std::string_view> HttpRequest::header(std::string_view lowerName) const {
    for (const auto& [name, value] : headers)
        if (name == lowerName) return std::string_view(value);
    return std::nullopt;
}

std::string_view HttpRequest::path() const {
    const std::string_view t = target;
    return t.substr(0, t.find('?'));
}

std::string_view problemCode(HttpProblem problem) {
    switch (problem) {
        case HttpProblem::Malformed: return "bad_request";
        case HttpProblem::HeaderTooLarge: return "header_too_large";
        case HttpProblem::TooManyHeaders: return "too_many_headers";
        case HttpProblem::TransferEncoding: return "length_required";
        case HttpProblem::BodyNotAllowed: return "body_not_allowed";
        case HttpProblem::LengthRequired: return "length_required";
        case HttpProblem::TooLarge: return "oversized";
    }
    return "bad_request";
}

int problemStatus(HttpProblem problem) {
    switch (problem) {
        case HttpProblem::Malformed: return 400;
        case HttpProblem::HeaderTooLarge: return 431;
        case HttpProblem::TooManyHeaders: return 431;
        case HttpProblem::TransferEncoding: return 411;
        case HttpProblem::BodyNotAllowed: return 400;
        case HttpProblem::LengthRequired: return 411;
        case HttpProblem::TooLarge: return 413;
    }
    return 400;
}

namespace {

constexpr std::string_view kComponent = "retrieval";
constexpr std::size_t kChunkBytes = 64 * 1024;

// Beast's request parser with our hooks: it keeps the head in an HttpRequest, counts header
// fields, notes any Transfer-Encoding, and keeps the body in a string that the server has
// already bounded (Content-Length checked against the limit before the body is read).
class RequestParser final : public http::basic_parser<true> {
public:
    explicit RequestParser(const HttpLimits& limits) : maxFields_(limits.maxHeaderFields) {
        header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(limits.maxHeaderBytes, UINT32_MAX)));
        body_limit(limits.maxBodyBytes);
    }

    HttpRequest& request() { return request_; }
    bool sawTransferEncoding() const { return transferEncoding_; }
    bool tooManyFields() const { return tooManyFields_; }
    bool sawRequestLine() const { return sawRequestLine_; }

    // What a failed parse means for the peer.
    HttpProblem problemFor(const beast::error_code& ec) const {
        if (tooManyFields_) return HttpProblem::TooManyHeaders;
        if (transferEncoding_ || ec == http::error::bad_transfer_encoding) return HttpProblem::TransferEncoding;
        if (ec == http::error::header_limit) return HttpProblem::HeaderTooLarge;
        if (ec == http::error::body_limit) return HttpProblem::TooLarge;
        return HttpProblem::Malformed;
    }

    // The server's own screening once the head is complete, before any body byte is read.
    std::optional<HttpProblem> screenHead() const {
        if (transferEncoding_) return HttpProblem::TransferEncoding;
        const auto length = content_length();
        if (request_.method != "POST") {
            if (length && *length > 0) return HttpProblem::BodyNotAllowed;
            return std::nullopt;
        }
        if (!length) return HttpProblem::LengthRequired;
        if (*length > body_limit_) return HttpProblem::TooLarge;
        return std::nullopt;
    }

    // Beast's own check would refuse a large Content-Length while still parsing the head, as
    // "too large" even for a GET; ours runs once the head is complete (screenHead) and again
    // for every body byte.
    void body_limit(std::uint64_t v) {
        body_limit_ = v;
        http::basic_parser<true>::body_limit(std::numeric_limits<std::uint64_t>::max());
    }

private:
    void on_request_impl(http::verb, beast::string_view method, beast::string_view target, int,
                         beast::error_code&) override {
        request_.method.assign(method.data(), method.size());
        request_.target.assign(target.data(), target.size());
        sawRequestLine_ = true;
    }
    void on_response_impl(int, beast::string_view, int, beast::error_code& ec) override {
        ec = http::error::bad_method;
    }
    void on_field_impl(http::field name, beast::string_view nameText, beast::string_view value,
                       beast::error_code& ec) override {
        if (++fields_ > maxFields_) {
            tooManyFields_ = true;
            ec = http::error::header_limit;
            return;
        }
        if (name == http::field::transfer_encoding) transferEncoding_ = true;
        std::string lower(nameText.data(), nameText.size());
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        request_.headers.emplace_back(std::move(lower), std::string(value.data(), value.size()));
    }
    void on_header_impl(beast::error_code& ec) override {
        // A Transfer-Encoding that is not chunked makes Beast read a request body "until the
        // connection closes"; refuse it here instead, before any body is looked at.
        if (transferEncoding_) ec = http::error::bad_transfer_encoding;
    }
    // Called as the head completes: the length is judged by screenHead() after it, so that a
    // GET declaring a body is refused as that, not as too large.
    void on_body_init_impl(const boost::optional<std::uint64_t>& length, beast::error_code&) override {
        if (length && *length <= body_limit_) request_.body.reserve(static_cast<std::size_t>(*length));
    }
    std::size_t on_body_impl(beast::string_view body, beast::error_code& ec) override {
        if (request_.body.size() + body.size() > body_limit_) {
            ec = http::error::body_limit;
            return 0;
        }
        request_.body.append(body.data(), body.size());
        return body.size();
    }
    void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code& ec) override {
        ec = http::error::bad_transfer_encoding;  // never reached: any Transfer-Encoding is refused first
    }
    std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view, beast::error_code& ec) override {
        ec = http::error::bad_transfer_encoding;
        return 0;
    }
    void on_finish_impl(beast::error_code&) override {}

    HttpRequest request_;
    int maxFields_;
    int fields_ = 0;
    std::uint64_t body_limit_ = 0;
    bool transferEncoding_ = false;
    bool tooManyFields_ = false;
    bool sawRequestLine_ = false;
};

std::string statusText(int status) {
    const auto text = http::obsolete_reason(static_cast<http::status>(status));
    return text.empty() ? std::string("Status") : std::string(text.data(), text.size());
}

// The status line and header block of a response; every response closes its connection.
std::string responseHead(const HttpResponse& res, std::uint64_t contentLength) {
    std::string head = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                                   res.status, statusText(res.status), res.contentType, contentLength);
    for (const auto& [name, value] : res.headers) head += fmt::format("{}: {}\r\n", name, value);
    head += "\r\n";
    return head;
}

class ServerImpl;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection: read one request within the deadline, answer it, close. `Stream` is the
// plain TCP stream or TLS over it; with TLS the handshake runs first, under the same deadline.
template <class Stream>
class Connection : public std::enable_shared_from_this<Connection<Stream>> {
public:
    static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
    Connection(tcp::socket socket, asio::ssl::context* tls, std::string peer, ServerImpl& server,
               const HttpLimits& limits, HttpHandler& handler);
    ~Connection();
    void start();

private:
    static Stream makeStream(tcp::socket socket, asio::ssl::context* tls) {
        if constexpr (kTls) return Stream(std::move(socket), *tls);
        else return Stream(std::move(socket));
    }
    // The TCP layer under the stream: deadlines, shutdown and close act on it.
    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
    void readHead();

    void onHead(beast::error_code ec);
    void onBody(beast::error_code ec);
    void dispatch();
    void onReadFailed(beast::error_code ec);
    void refuse(HttpProblem problem);
    void answer(HttpResponse response, bool linger);
    void writeNextChunk();
    void finish();
    void lingerRead();

    Stream stream_;
    std::string peer_;
    ServerImpl& server_;
    const HttpLimits& limits_;
    HttpHandler& handler_;
    beast::flat_buffer buffer_;
    RequestParser parser_;
    HttpResponse response_;
    std::string out_;
    std::uint64_t offset_ = 0;
    std::vector<char> chunk_;
    bool linger_ = false;
    std::array<char, 4096> scratch_{};
};

class ServerImpl final : public HttpServer {
public:
    ServerImpl(const std::string& address, int port, const HttpLimits& limits, HttpHandler& handler,
               const std::optional<HttpTls>& tls)
        : limits_(limits), handler_(handler), acceptor_(io_), retryTimer_(io_) {
        if (tls) loadTls(*tls);
        beast::error_code ec;
        const auto ip = asio::ip::make_address(address, ec);
        if (ec) throw std::runtime_error(fmt::format("retrieval: cannot listen on {}: not an IP address", address));
        const tcp::endpoint where(ip, static_cast<unsigned short>(port));
        acceptor_.open(where.protocol(), ec);
        if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) acceptor_.bind(where, ec);
        if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) throw std::runtime_error(fmt::format("retrieval: cannot listen on {}:{}: {}", address, port, ec.message()));
        port_ = acceptor_.local_endpoint().port();
        accept();
        for (int i = 0; i < std::max(1, limits_.threads); ++i) threads_.emplace_back([this] { io_.run(); });
    }

    ~ServerImpl() override { stop(); }

    int port() const override { return port_; }

    int connections() const override {
        std::lock_guard lock(mutex_);
        return total_;
    }

    void stop() override {
        if (stopped_.exchange(true)) return;
        io_.stop();
        for (auto& t : threads_) t.join();
        threads_.clear();
        // No thread runs handlers any more: stop listening now, not only at destruction.
        beast::error_code ignored;
        acceptor_.close(ignored);
    }

    void release(const std::string& peer) {
        std::lock_guard lock(mutex_);
        --total_;
        if (const auto it = perPeer_.find(peer); it != perPeer_.end() && --it->second == 0) perPeer_.erase(it);
    }

private:
    void loadTls(const HttpTls& tls) {
        tls_.emplace(asio::ssl::context::tls_server);
        SSL_CTX* ctx = tls_->native_handle();
        if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1)
            throw std::runtime_error("retrieval: OpenSSL cannot serve TLS 1.3");
        // One request per connection: no session to resume, so no tickets (a resumed session
        // would skip the certificate the client pins).
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        beast::error_code ec;
        tls_->use_certificate_chain_file(tls.certFile.string(), ec);
        if (ec)
            throw std::runtime_error(fmt::format("retrieval: {}: cannot load the TLS certificate: {}", tls.certFile.string(),
                                                 ec.message()));
        tls_->use_private_key_file(tls.keyFile.string(), asio::ssl::context::pem, ec);
        if (ec || SSL_CTX_check_private_key(ctx) != 1)
            throw std::runtime_error(fmt::format("retrieval: {}: not the private key of {}", tls.keyFile.string(),
                                                 tls.certFile.string()));
    }

    void accept() {
        acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
            if (stopped_) return;
            if (ec) {
                // Out of descriptors (EMFILE/ENFILE) or a transient error: wait a little rather
                // than spin, and let the deadlines free descriptors meanwhile.
                common::logWarning(kComponent, "accept failed: {}", ec.message());
                retryTimer_.expires_after(std::chrono::milliseconds(100));
                retryTimer_.async_wait([this](beast::error_code) {
                    if (!stopped_) accept();
                });
                return;
            }
            admit(std::move(socket));
            accept();
        });
    }

    void admit(tcp::socket socket) {
        beast::error_code ec;
        const auto remote = socket.remote_endpoint(ec);
        if (ec) return;  // already gone
        std::string peer = remote.address().to_string();
        std::string_view refusal;
        {
            std::lock_guard lock(mutex_);
            int& fromPeer = perPeer_[peer];
            if (total_ >= limits_.maxConnections) refusal = "connections_total";
            else if (fromPeer >= limits_.maxConnectionsPerPeer) refusal = "connections_per_peer";
            if (refusal.empty()) {
                ++total_;
                ++fromPeer;
            } else if (fromPeer == 0) {
                perPeer_.erase(peer);
            }
        }
        if (!refusal.empty()) {
            // Best effort, never blocking: a 503 if the socket takes it at once, then close.
            static const std::string kBusy = [] {
                HttpResponse busy;
                busy.status = 503;
                busy.headers = {{"Retry-After", "10"}};
                busy.body = "{\"error\":\"busy\",\"reason\":\"too many connections; retry after 10 s\"}\n";
                return responseHead(busy, busy.body.size()) + busy.body;
            }();
            (void)::send(socket.native_handle(), kBusy.data(), kBusy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            socket.close(ec);
            HttpRequest nothing;
            nothing.peer = std::move(peer);
            try {
                handler_.dropped(nothing, refusal);
            } catch (const std::exception& e) {
                common::logError(kComponent, "refused connection not recorded: {}", e.what());
            }
            return;
        }
        if (tls_)
            std::make_shared<Connection<TlsStream>>(std::move(socket), &*tls_, std::move(peer), *this, limits_, handler_)
                ->start();
        else
            std::make_shared<Connection<PlainStream>>(std::move(socket), nullptr, std::move(peer), *this, limits_, handler_)
                ->start();
    }

    HttpLimits limits_;
    HttpHandler& handler_;
    std::optional<asio::ssl::context> tls_;  // set for HTTPS; read-only once serving
    mutable std::mutex mutex_;
    int total_ = 0;
    std::map<std::string, int> perPeer_;
    std::atomic<bool> stopped_{false};
    // Declared after the counters: pending connections are destroyed with the io_context and
    // give their counts back to the members above.
    asio::io_context io_;
    tcp::acceptor acceptor_;
    asio::steady_timer retryTimer_;
    std::vector<std::thread> threads_;
    int port_ = 0;
};

template <class Stream>
Connection<Stream>::Connection(tcp::socket socket, asio::ssl::context* tls, std::string peer, ServerImpl& server,
                               const HttpLimits& limits, HttpHandler& handler)
    : stream_(makeStream(std::move(socket), tls)),
      peer_(std::move(peer)),
      server_(server),
      limits_(limits),
      handler_(handler),
      buffer_(limits.maxHeaderBytes + limits.maxBodyBytes + 1024),
      parser_(limits) {
    parser_.request().peer = peer_;
}

template <class Stream>
Connection<Stream>::~Connection() { server_.release(peer_); }

template <class Stream>
void Connection<Stream>::start() {
    // One deadline for the whole request, set once: a byte every few seconds does not extend it.
    // With TLS it covers the handshake too.
    lowest().expires_after(limits_.requestDeadline);
    if constexpr (kTls) {
        stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
            if (!ec) return self->readHead();
            if (ec == beast::error::timeout) return self->onReadFailed(ec);
            // Not TLS 1.3, a plain HTTP request, a scanner: recorded within the budget, no answer.
            try {
                self->handler_.dropped(self->parser_.request(), "tls_handshake");
            } catch (const std::exception& e) {
                common::logError(kComponent, "failed TLS handshake not recorded: {}", e.what());
            }
            self->lowest().close();
        });
    } else {
        readHead();
    }
}

template <class Stream>
void Connection<Stream>::readHead() {
    http::async_read_header(stream_, buffer_, parser_,
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->onHead(ec); });
}

template <class Stream>
void Connection<Stream>::onHead(beast::error_code ec) {
    if (ec) return onReadFailed(ec);
    if (const auto problem = parser_.screenHead()) return refuse(*problem);
    if (parser_.is_done()) return dispatch();
    http::async_read(stream_, buffer_, parser_,
                     [self = this->shared_from_this()](beast::error_code e, std::size_t) { self->onBody(e); });
}

template <class Stream>
void Connection<Stream>::onBody(beast::error_code ec) {
    if (ec) return onReadFailed(ec);
    dispatch();
}

template <class Stream>
void Connection<Stream>::dispatch() {
    HttpResponse response;
    try {
        response = handler_.handle(parser_.request());
    } catch (const std::exception& e) {
        common::logError(kComponent, "{} {}: {}", parser_.request().method, parser_.request().path(), e.what());
        response.status = 500;
        response.body = "{\"error\":\"internal\",\"reason\":\"the camera could not handle this request\"}\n";
    }
    answer(std::move(response), false);
}

template <class Stream>
void Connection<Stream>::onReadFailed(beast::error_code ec) {
    if (ec == beast::error::timeout) {
        try {
            handler_.dropped(parser_.request(), "deadline");
        } catch (const std::exception& e) {
            common::logError(kComponent, "deadline cut not recorded: {}", e.what());
        }
        beast::error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
        lowest().close();
        return;
    }
    // The peer went away before sending anything: nothing to answer or record.
    if ((ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset) &&
        !parser_.sawRequestLine() && buffer_.size() == 0)
        return lowest().close();
    if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
        // Cut short mid-request: recorded like a request that ran out of time, nothing to answer.
        try {
            handler_.dropped(parser_.request(), "incomplete");
        } catch (const std::exception& e) {
            common::logError(kComponent, "incomplete request not recorded: {}", e.what());
        }
        return lowest().close();
    }
    refuse(parser_.problemFor(ec));
}

template <class Stream>
void Connection<Stream>::refuse(HttpProblem problem) {
    HttpResponse response;
    try {
        response = handler_.refuse(parser_.request(), problem);
    } catch (const std::exception& e) {
        common::logError(kComponent, "refusal not recorded: {}", e.what());
        response.status = problemStatus(problem);
        response.body = fmt::format("{{\"error\":\"{}\",\"reason\":\"refused\"}}\n", problemCode(problem));
    }
    // Whatever the peer still sends is read and dropped for a moment, so it sees the answer
    // instead of a reset.
    answer(std::move(response), true);
}

template <class Stream>
void Connection<Stream>::answer(HttpResponse response, bool linger) {
    response_ = std::move(response);
    linger_ = linger;
    const bool streamed = static_cast<bool>(response_.stream);
    const std::uint64_t length = streamed ? response_.streamEnd - response_.streamBegin : response_.body.size();
    out_ = responseHead(response_, length);
    if (!streamed) out_ += response_.body;
    offset_ = response_.streamBegin;
    lowest().expires_after(limits_.writeStall);
    asio::async_write(stream_, asio::buffer(out_), [self = this->shared_from_this(), streamed](beast::error_code ec, std::size_t) {
        if (ec) return self->lowest().close();
        if (streamed) return self->writeNextChunk();
        self->finish();
    });
}

template <class Stream>
void Connection<Stream>::writeNextChunk() {
    if (offset_ >= response_.streamEnd) return finish();
    chunk_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(kChunkBytes, response_.streamEnd - offset_)));
    const std::size_t n = response_.stream(offset_, chunk_);
    if (n == 0) return lowest().close();  // the file shrank or failed: the peer sees a short body
    lowest().expires_after(limits_.writeStall);
    asio::async_write(stream_, asio::buffer(chunk_.data(), n), [self = this->shared_from_this()](beast::error_code ec, std::size_t sent) {
        if (ec) return self->lowest().close();
        const std::uint64_t begin = self->offset_;
        self->offset_ += sent;
        if (self->response_.onSent) self->response_.onSent(begin, self->offset_, self->peer_);
        self->writeNextChunk();
    });
}

template <class Stream>
void Connection<Stream>::finish() {
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (!linger_) return lowest().close();
    lowest().expires_after(limits_.linger);
    lingerRead();
}

template <class Stream>
void Connection<Stream>::lingerRead() {
    stream_.async_read_some(asio::buffer(scratch_), [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec) return self->lowest().close();
        self->lingerRead();
    });
}

}  // namespace

ParsedHead parseRequestHead(std::string_view bytes, const HttpLimits& limits) {
    ParsedHead out;
    RequestParser parser(limits);
    beast::error_code ec;
    const std::size_t used = parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
    out.request = parser.request();
    if (ec == http::error::need_more) return out;
    if (ec) {
        out.problem = parser.problemFor(ec);
        return out;
    }
    if (!parser.is_header_done()) return out;
    out.complete = true;
    out.headBytes = used;
    if (const auto length = parser.content_length()) out.contentLength = *length;
    out.problem = parser.screenHead();
    return out;
}

std::unique_ptr<HttpServer> HttpServer::start(const std::string& address, int port, const HttpLimits& limits,
                                              HttpHandler& handler, const std::optional<HttpTls>& tls) {
    return std::make_unique<ServerImpl>(address, port, limits, handler, tls);
}

}  // namespace mimamori::retrieval
