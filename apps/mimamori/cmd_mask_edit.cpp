// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// `mimamori mask edit`: a polygon editor in the browser, over a still of the camera, for city
// staff. Serves only 127.0.0.1, on a random port, under a random token in the path; the page,
// its script and style are files of the package, and every check is the library's own
// (validateMaskJson, RasterMask), so the editor and `mask validate` can never disagree.
#include "cli.hpp"

#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/text.hpp"
#include "mimamori/masking/mask.hpp"
#include "mimamori/masking/preview.hpp"
#include "mimamori/retrieval/http_server.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <signal.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>

namespace mimamori::cli {
namespace {

namespace fs = std::filesystem;
using namespace mimamori::masking;
using retrieval::HttpRequest;
using retrieval::HttpResponse;
using Json = nlohmann::json;

// A mask file is a few kilobytes; 1 MiB leaves room for thousands of points.
constexpr std::size_t kMaxMaskBytes = 1 << 20;

// Where the page's files are: <prefix>/share/mimamori/editor beside <prefix>/bin/mimamori (the
// package) or beside build/apps/mimamori (the build tree, where CMake copies them).
fs::path editorAssets() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const fs::path dir = exe.parent_path().parent_path() / "share" / "mimamori" / "editor";
        if (fs::is_regular_file(dir / "index.html", ec)) return dir;
    }
    throw std::runtime_error("the editor's files are missing (share/mimamori/editor beside the mimamori binary): "
                             "reinstall mimamori-tools");
}

HttpResponse answer(int status, std::string contentType, std::string body) {
    HttpResponse r;
    r.status = status;
    r.contentType = std::move(contentType);
    r.body = std::move(body);
    // Only this page's own files run; nothing is cached; the token never leaves in a Referer.
    r.headers = {{"Content-Security-Policy",
                  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"},
                 {"X-Content-Type-Options", "nosniff"},
                 {"Cache-Control", "no-store"},
                 {"Referrer-Policy", "no-referrer"}};
    return r;
}

HttpResponse jsonAnswer(int status, const Json& body) { return answer(status, "application/json", body.dump()); }

// What the page shows beside the polygons: every finding, exactly as `mask validate` words
// it, and each mask's share of the frame as the recorder would mask it.
Json analyse(std::string_view text, int width, int height) {
    Json findings = Json::array();
    for (const Finding& f : validateMaskJson(text))
        findings.push_back({{"mask_index", f.maskIndex}, {"point", f.pointIndex}, {"text", f.toString()}});
    Json shares = Json::array();
    const Json doc = Json::parse(text.begin(), text.end(), nullptr, false);
    MaskSet drawable;  // every polygon that can be rasterised, valid or not
    if (doc.is_object() && doc.contains("masks") && doc["masks"].is_array()) {
        for (const Json& m : doc["masks"]) {
            Mask mask;
            bool ok = m.is_object() && m.contains("polygon") && m["polygon"].is_array() && m["polygon"].size() >= 3;
            if (ok) {
                for (const Json& p : m["polygon"]) {
                    ok = ok && p.is_array() && p.size() == 2 && p[0].is_number() && p[1].is_number() &&
                         std::isfinite(p[0].get<double>()) && std::isfinite(p[1].get<double>());
                    if (ok) mask.polygon.push_back({p[0].get<double>(), p[1].get<double>()});
                }
            }
            if (!ok) {
                shares.push_back(nullptr);
                continue;
            }
            shares.push_back(RasterMask(MaskSet{"", {mask}, ""}, width, height, PixelFormat::I420).coverage());
            drawable.masks.push_back(std::move(mask));
        }
    }
    const double total = RasterMask(drawable, width, height, PixelFormat::I420).coverage();
    return {{"valid", findings.empty()}, {"findings", findings}, {"shares", shares}, {"total", total}};
}

class EditorHandler : public retrieval::HttpHandler {
public:
    EditorHandler(fs::path masksFile, std::string initialText, std::string stillPng, int width, int height,
                  std::string token, fs::path assets)
        : masksFile_(std::move(masksFile)),
          text_(std::move(initialText)),
          stillPng_(std::move(stillPng)),
          width_(width),
          height_(height),
          prefix_("/" + token + "/"),
          assets_(std::move(assets)) {}

    void setPort(int port) { host_ = fmt::format("127.0.0.1:{}", port); }

    HttpResponse handle(const HttpRequest& request) override {
        // The page is for this machine's browser only: another Host (DNS rebinding) or another
        // origin (a page of some web site POSTing here) is refused before the path is looked at.
        if (request.header("host").value_or("") != host_) return answer(403, "text/plain", "wrong host\n");
        if (auto origin = request.header("origin"); origin && *origin != "http://" + host_)
            return answer(403, "text/plain", "wrong origin\n");
        const std::string_view path = request.path();
        if (!path.starts_with(prefix_)) return answer(404, "text/plain", "not found\n");
        const std::string_view route = path.substr(prefix_.size());
        if (request.method == "GET") {
            if (route == "" || route == "index.html") return file("index.html", "text/html; charset=utf-8");
            if (route == "editor.js") return file("editor.js", "text/javascript; charset=utf-8");
            if (route == "editor.css") return file("editor.css", "text/css; charset=utf-8");
            if (route == "still.png") return answer(200, "image/png", stillPng_);
            if (route == "state") {
                std::lock_guard lock(mutex_);
                return jsonAnswer(200, {{"text", text_},
                                        {"file", masksFile_.filename().string()},
                                        {"width", width_},
                                        {"height", height_}});
            }
        } else if (request.method == "POST" && (route == "check" || route == "save")) {
            if (request.body.size() > kMaxMaskBytes) return answer(413, "text/plain", "too large\n");
            Json analysis = analyse(request.body, width_, height_);
            if (route == "check") return jsonAnswer(200, analysis);
            if (!analysis["valid"].get<bool>()) {
                analysis["saved"] = false;
                return jsonAnswer(422, analysis);
            }
            return save(request.body, std::move(analysis));
        }
        return answer(404, "text/plain", "not found\n");
    }

    HttpResponse refuse(const HttpRequest&, retrieval::HttpProblem problem) override {
        return answer(retrieval::problemStatus(problem), "text/plain", std::string(retrieval::problemCode(problem)) + "\n");
    }
    void dropped(const HttpRequest&, std::string_view) override {}

private:
    HttpResponse file(const char* name, const char* type) const {
        return answer(200, type, common::readFile(assets_ / name));
    }

    // Keeps the file as it was before as FILE.bak, then replaces FILE atomically.
    HttpResponse save(const std::string& text, Json analysis) {
        std::lock_guard lock(mutex_);
        using fs::perms;
        const auto mode = perms::owner_read | perms::owner_write | perms::group_read | perms::others_read;
        std::error_code ec;
        const bool existed = fs::exists(masksFile_, ec);
        if (existed) common::writeFileAtomic(fs::path(masksFile_.string() + ".bak"), common::readFile(masksFile_), mode);
        common::writeFileAtomic(masksFile_, text, mode);
        text_ = text;
        const MaskSet set = parseMaskJson(text, masksFile_.string());
        fmt::print("saved {}: {} mask{}, sha256 {}{}\n", masksFile_.string(), set.masks.size(),
                   set.masks.size() == 1 ? "" : "s", set.sha256Hex,
                   existed ? fmt::format(" (the previous file is {}.bak)", masksFile_.filename().string()) : "");
        std::fflush(stdout);
        analysis["saved"] = true;
        analysis["sha256"] = set.sha256Hex;
        return jsonAnswer(200, analysis);
    }

    const fs::path masksFile_;
    std::string text_;
    const std::string stillPng_;
    const int width_;
    const int height_;
    const std::string prefix_;
    const fs::path assets_;
    std::string host_;
    std::mutex mutex_;
};

// The mask file to start from: the file as it is (findings and all, the page shows them), or
// a new one for --camera. Only text the page cannot read at all is refused.
std::string initialMasks(const fs::path& file, const std::optional<std::string>& camera) {
    std::error_code ec;
    if (!fs::exists(file, ec)) {
        if (!camera)
            throw UsageError(fmt::format("{} does not exist: give --camera ID to start a new mask file",
                                         common::escapeControls(file.string())));
        return Json{{"version", 1}, {"camera", *camera}, {"masks", Json::array()}}.dump();
    }
    std::string text = common::readFile(file);
    const Json doc = Json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || (doc.contains("masks") && !doc["masks"].is_array()))
        throw std::runtime_error(fmt::format("{} is not a mask file the editor can open (run mimamori mask validate)",
                                             common::escapeControls(file.string())));
    return text;
}

int runEdit(const Args& args) {
    args.expectPositionals(0, "");
    const fs::path still = args.required("--still");
    const fs::path masksFile = args.required("--masks");
    if (still.extension() != ".png")
        throw UsageError(fmt::format("--still must name a .png file, not '{}'", common::escapeControls(still.string())));
    const BgrImage frame = readFrame(still, 0);  // decodes it: a broken PNG is refused here
    const std::string text = initialMasks(masksFile, args.option("--camera"));
    common::ensureSodium();
    std::array<std::uint8_t, 16> secret{};
    randombytes_buf(secret.data(), secret.size());
    const std::string token = common::toHex(secret);

    // SIGINT/SIGTERM are taken by sigwait below; blocked before the server's threads start, so
    // that none of them receives one.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);

    EditorHandler handler(masksFile, text, common::readFile(still), frame.width, frame.height, token, editorAssets());
    retrieval::HttpLimits limits;
    limits.maxBodyBytes = kMaxMaskBytes;
    limits.maxConnections = 16;
    limits.maxConnectionsPerPeer = 16;
    limits.threads = 2;
    auto server = retrieval::HttpServer::start("127.0.0.1", 0, limits, handler);
    handler.setPort(server->port());
    fmt::print("mask editor for {} over {} ({}x{}): open\n  http://127.0.0.1:{}/{}/\n"
               "in a browser on this machine; Ctrl-C ends the editor.\n",
               masksFile.string(), still.string(), frame.width, frame.height, server->port(), token);
    std::fflush(stdout);
    int signal = 0;
    sigwait(&stop, &signal);
    server->stop();
    fmt::print("mask editor stopped\n");
    return 0;
}

const Registrar editCommand(Command{
    "mask", "edit", "edit a mask file in the browser, over a still of the camera",
    "usage: mimamori mask edit --still STILL.png --masks FILE [--camera ID]\n"
    "\n"
    "Serves a polygon editor on 127.0.0.1 only, at a random port, and prints its address,\n"
    "which carries a one-time token: open it in a browser on this machine. The page shows\n"
    "STILL.png (e.g. a review still of the camera) with the masks of FILE over it. Add,\n"
    "move and delete points and masks, and name each mask (Japanese names included); each\n"
    "mask's share of the frame and every finding of `mimamori mask validate` are shown as\n"
    "you edit. Save replaces FILE atomically, keeping the previous file as FILE.bak, and\n"
    "only when the masks are valid. Nothing is loaded from outside this machine.\n"
    "\n"
    "  --still STILL.png  the frame to draw on (PNG)\n"
    "  --masks FILE       the mask file to edit; created on the first save if missing\n"
    "  --camera ID        the camera id of a new mask file (required when FILE is missing)\n"
    "\n"
    "Ctrl-C (SIGINT) or SIGTERM ends the editor.\n"
    "\n"
    "exit status: 0 ended, 1 unreadable still or mask file, 2 bad usage\n",
    {"--still", "--masks", "--camera"}, {}, runEdit});

}  // namespace
}  // namespace mimamori::cli
