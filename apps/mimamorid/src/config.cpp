// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The whole config: one JSON parse, then each module's section to its own parser.
#include "mimamori/daemon/config.hpp"

#include "mimamori/common/config_error.hpp"
#include "mimamori/common/file.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace mimamori::daemon {
namespace {

using nlohmann::json;

// Takes the member `key` out of `root` as JSON text: "" when absent, and a problem when it is
// not an object (the section's parser would only see garbage).
std::string takeSection(json& root, const char* key, std::vector<std::string>& problems) {
    auto it = root.find(key);
    if (it == root.end()) return {};
    std::string text;
    if (it->is_object()) text = it->dump();
    else problems.push_back(std::string(key) + ": must be an object (got " + common::shownValue(it->dump()) + ")");
    root.erase(it);
    return text;
}

template <typename Parse>
void collect(std::vector<std::string>& problems, Parse&& parse) {
    try {
        parse();
    } catch (const common::ConfigError& e) {
        problems.insert(problems.end(), e.problems().begin(), e.problems().end());
    }
}

}  // namespace

DaemonConfig parseDaemonConfig(std::string_view text, const std::filesystem::path& source) {
    const std::string name = source.empty() ? "config" : source.string();
    json root;
    try {
        root = json::parse(text);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond a double
        // nlohmann's message carries the byte offset ("at line 3, column 7").
        throw common::ConfigError(name, {std::string("not valid JSON: ") + e.what()});
    }
    if (!root.is_object()) throw common::ConfigError(name, {"the top level must be a JSON object"});

    std::vector<std::string> problems;
    const std::string retrievalText = takeSection(root, "retrieval", problems);
    const std::string bleText = takeSection(root, "ble", problems);

    DaemonConfig out;
    out.path = source;
    collect(problems, [&] { out.recorder = recorder::parseConfig(root, source); });
    if (!retrievalText.empty())
        collect(problems, [&] {
            out.retrieval = retrieval::parseEndpointConfig(retrievalText, source.parent_path(), out.recorder.stateDir);
        });
    collect(problems, [&] { out.ble = ble::parseServiceConfig(bleText); });

    if (out.retrieval && !out.recorder.store.storageDir.empty()) {
        std::vector<std::pair<const char*, std::filesystem::path>> offCard = {
            {"retrieval.trust_file", out.retrieval->trustFile}, {"retrieval.camera_key", out.retrieval->cameraKeyFile}};
        if (!out.retrieval->insecureHttp) offCard.emplace_back("retrieval.tls_key", out.retrieval->tlsKeyFile);
        for (const auto& [key, file] : offCard) {
            if (file.empty() || !recorder::liesInside(file, out.recorder.store.storageDir)) continue;
            const auto resolved = recorder::resolvedPath(file);
            problems.push_back(std::string(key) + ": must not be inside storage.path" +
                               (resolved == file ? std::string() : " (it resolves to " + resolved.string() + ")"));
        }
    }
    // The endpoint process may write beneath extract_dir (docs/endpoint-process.md): never where
    // the ring, the keys, the audit log or the masks are.
    if (out.retrieval && !out.recorder.store.storageDir.empty()) {
        const std::filesystem::path& extracts = out.retrieval->extractDir;
        const std::vector<std::pair<const char*, std::filesystem::path>> theirs = {
            {"storage.path", out.recorder.store.storageDir}, {"key_dir", out.recorder.store.keyDir},
            {"state_dir", out.recorder.stateDir}, {"mask_file", out.recorder.maskFile}};
        for (const auto& [key, path] : theirs) {
            if (path.empty()) continue;
            if (recorder::liesInside(path, extracts))
                problems.push_back(fmt::format("retrieval.extract_dir: must not hold {} (the endpoint process writes there)", key));
            else if (std::string_view(key) != "state_dir" && recorder::liesInside(extracts, path))
                problems.push_back(fmt::format("retrieval.extract_dir: must not be inside {}", key));
        }
        if (recorder::liesInside(extracts, out.recorder.stateDir / "audit"))
            problems.push_back("retrieval.extract_dir: must not be inside the audit log's directory (state_dir/audit)");
    }
    if (!problems.empty()) throw common::ConfigError(name, std::move(problems));
    return out;
}

DaemonConfig loadDaemonConfig(const std::filesystem::path& path) {
    return parseDaemonConfig(common::readFile(path), path);
}

}  // namespace mimamori::daemon
