// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// FLEET.json: strict parsing with every finding named.
#include "mimamori/city/fleet.hpp"

#include "mimamori/city/archive.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/text.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <set>
#include <stdexcept>

namespace mimamori::city {

std::vector<FleetCamera> parseFleet(std::string_view text, const std::filesystem::path& base) {
    const nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw std::invalid_argument("not a JSON object");
    std::vector<std::string> findings;
    if (!j.contains("format") || j["format"] != "mimamori-fleet-1") findings.push_back("format: not mimamori-fleet-1");
    for (const auto& [name, value] : j.items())
        if (name != "format" && name != "cameras")
            findings.push_back(fmt::format("{}: unknown member", common::escapeControls(name)));
    std::vector<FleetCamera> cameras;
    if (!j.contains("cameras") || !j["cameras"].is_array() || j["cameras"].empty() ||
        j["cameras"].size() > kMaxFleetCameras) {
        findings.push_back(fmt::format("cameras: not a list of 1 to {} cameras", kMaxFleetCameras));
    } else {
        std::set<std::string> ids;
        for (std::size_t i = 0; i < j["cameras"].size(); ++i) {
            const auto& c = j["cameras"][i];
            const std::string at = fmt::format("cameras[{}]", i);
            if (!c.is_object()) {
                findings.push_back(at + ": not an object");
                continue;
            }
            for (const auto& [name, value] : c.items())
                if (name != "id" && name != "url" && name != "key")
                    findings.push_back(fmt::format("{}.{}: unknown member", at, common::escapeControls(name)));
            FleetCamera camera;
            if (!c.contains("id") || !c["id"].is_string() || !isValidCameraId(c["id"].get<std::string>()))
                findings.push_back(at + ".id: not a camera id (1-64 of A-Z a-z 0-9 . _ -, not starting with '.')");
            else if (!ids.insert(camera.id = c["id"].get<std::string>()).second)
                findings.push_back(fmt::format("{}.id: '{}' is listed twice", at, camera.id));
            const std::string url = c.contains("url") && c["url"].is_string() ? c["url"].get<std::string>() : "";
            if (!(url.starts_with("https://") || url.starts_with("http://")) || url.size() > 2048)
                findings.push_back(at + ".url: not an http:// or https:// URL");
            camera.url = url;
            if (!c.contains("key") || !c["key"].is_string() || c["key"].get<std::string>().empty())
                findings.push_back(at + ".key: not a key file path");
            else
                camera.keyFile = base / c["key"].get<std::string>();
            cameras.push_back(std::move(camera));
        }
    }
    if (!findings.empty()) {
        std::string message;
        for (const auto& f : findings) message += (message.empty() ? "" : "\n") + f;
        throw std::invalid_argument(message);
    }
    return cameras;
}

std::vector<FleetCamera> loadFleet(const std::filesystem::path& file) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(file, ec);
    if (ec) throw common::FileError(fmt::format("{}: {}", file.string(), ec.message()));
    if (size > kMaxFleetFileBytes)
        throw std::invalid_argument(fmt::format("{}: larger than {} bytes", file.string(), kMaxFleetFileBytes));
    try {
        return parseFleet(common::readFile(file), file.parent_path());
    } catch (const std::invalid_argument& e) {
        // Each finding on its own line, each naming the file.
        std::string message;
        std::string_view rest = e.what();
        while (!rest.empty()) {
            const auto nl = rest.find('\n');
            message += fmt::format("{}{}: {}", message.empty() ? "" : "\n", file.string(), rest.substr(0, nl));
            rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        }
        throw std::invalid_argument(message);
    }
}

}  // namespace mimamori::city
