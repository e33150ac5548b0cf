// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// `mimamori provision`: a camera unit's first boot. Makes the camera's keys on internal flash
// (through `keygen`), a whole-frame mask file until the real masks are drawn, and a starting
// config that passes `mimamorid --check-config`. Refuses to overwrite any of them.
#include "cli.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/retrieval/tls.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace mimamori::cli {
namespace {

namespace fs = std::filesystem;

constexpr auto kReadableByAll = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                fs::perms::others_read;

bool present(const fs::path& path) { return fs::exists(fs::symlink_status(path)); }

// The packaged example (packaging/config/mimamorid.json) with this camera's id and paths;
// tests/packaging compares the two, so they cannot drift apart.
std::string startingConfig(const std::string& cameraId, const fs::path& maskFile, const fs::path& keyDir,
                           const fs::path& stateDir, const fs::path& ring) {
    nlohmann::ordered_json config;
    config["camera_id"] = cameraId;
    config["source"] = {{"kind", "v4l2"}, {"location", "/dev/video0"}};
    config["encoder"] = {{"element", "x264enc"}};
    config["segment_seconds"] = 10;
    config["storage"] = {{"path", ring.string()},
                         {"byte_limit", "230G"},
                         {"free_space_floor", "2G"},
                         {"retention_days", 12},
                         {"sync_interval_ms", 800}};
    config["mask_file"] = maskFile.string();
    config["key_dir"] = keyDir.string();
    config["state_dir"] = stateDir.string();
    return config.dump(2) + "\n";
}

// Until the city has drawn this pole's masks, everything is hidden: the camera records black
// frames rather than a single unmasked one (docs/mask-file.md has no "no masks" state either).
std::string wholeFrameMasks(const std::string& cameraId) {
    nlohmann::ordered_json mask;
    mask["name"] = "whole frame (until the masks are drawn)";
    mask["polygon"] = {{0.0, 0.0}, {1.0, 0.0}, {1.0, 1.0}, {0.0, 1.0}};
    nlohmann::ordered_json file;
    file["version"] = 1;
    file["camera"] = cameraId;
    file["masks"] = nlohmann::ordered_json::array({mask});
    return file.dump(2) + "\n";
}

int runProvision(const Args& args) {
    args.expectPositionals(0, "");
    const std::string cameraId = args.required("--camera-id");
    const fs::path configPath = args.option("--config").value_or("/etc/mimamori/mimamorid.json");
    const fs::path keyDir = args.option("--key-dir").value_or("/var/lib/mimamori/keys");
    const fs::path stateDir = args.option("--state-dir").value_or("/var/lib/mimamori/state");
    const fs::path ring = args.option("--ring").value_or("/media/sdcard/mimamori/ring");
    for (const auto& [option, path] : {std::pair{"--config", configPath}, std::pair{"--key-dir", keyDir},
                                       std::pair{"--state-dir", stateDir}, std::pair{"--ring", ring}})
        if (!path.is_absolute()) throw UsageError(fmt::format("{} must be an absolute path", option));
    const fs::path maskFile = configPath.parent_path() / "masks.json";

    // Everything is checked before anything is written, so a refusal leaves no half-provisioned unit.
    std::vector<fs::path> taken;
    for (const auto& suffix : {".secret", ".pub", retrieval::kTlsKeySuffix, retrieval::kTlsCertSuffix})
        if (present(keyDir / (cameraId + suffix))) taken.push_back(keyDir / (cameraId + suffix));
    if (present(configPath)) taken.push_back(configPath);
    if (!taken.empty()) {
        std::string list;
        for (const auto& p : taken) list += (list.empty() ? "" : ", ") + p.string();
        throw std::runtime_error(fmt::format("already provisioned: {} exist(s); refusing to overwrite", list));
    }
    // The keys must not follow the footage onto the removable card.
    const fs::path keys = fs::weakly_canonical(keyDir);
    const fs::path card = fs::weakly_canonical(ring);
    if (const auto rel = keys.lexically_relative(card); !rel.empty() && *rel.begin() != "..")
        throw UsageError(fmt::format("--key-dir {} lies on the card, inside --ring {}", keys.string(), card.string()));

    if (const int status = runCommand("", "keygen", {"--role", "camera", "--name", cameraId, "--out", keyDir.string()});
        status != 0)
        return status;
    const policy::PublicKey key = policy::loadPublicKey(keyDir / (cameraId + ".pub"));

    fs::create_directories(configPath.parent_path());
    const bool keptMasks = present(maskFile);
    if (!keptMasks) common::writeFileAtomic(maskFile, wholeFrameMasks(cameraId), kReadableByAll);
    common::writeFileAtomic(configPath, startingConfig(cameraId, maskFile, keyDir, stateDir, ring), kReadableByAll);

    fmt::print("config: {}\n", configPath.string());
    fmt::print("masks: {} ({})\n", maskFile.string(),
               keptMasks ? "kept as it was" : "the whole frame, until the masks are drawn");
    fmt::print("\nfor the city's register: camera '{}', key id {}\n", key.name, key.keyId());
    fmt::print("  public key: {}\n", (keyDir / (cameraId + ".pub")).string());
    fmt::print("\nnext: draw the masks (mimamori mask edit), check the config "
               "(mimamorid --check-config {}), then systemctl start mimamorid\n",
               configPath.string());
    return 0;
}

const Registrar provisionCommand(Command{
    "", "provision", "first boot of a camera unit: its keys, a starting config and mask file",
    "usage: mimamori provision --camera-id ID [--config FILE] [--key-dir DIR] [--state-dir DIR]\n"
    "                          [--ring DIR]\n"
    "\n"
    "Makes the camera's keys in DIR as `mimamori keygen --role camera --name ID --out DIR`\n"
    "does (the signing key and the TLS key; internal flash, never the card), prints the key id\n"
    "to enter in the city's register, and writes a starting config FILE (the packaged example,\n"
    "docs/config.md, with this camera's id and these paths) that passes `mimamorid\n"
    "--check-config`. Beside FILE it writes masks.json hiding the whole frame until the real\n"
    "masks are drawn (`mimamori mask edit`); an existing masks.json is kept. Nothing is\n"
    "overwritten: an existing key file or FILE is refused before anything is written.\n"
    "\n"
    "  --camera-id ID   the camera's id and key name: 1-64 of A-Z a-z 0-9 . _ -\n"
    "  --config FILE    the config to write (default /etc/mimamori/mimamorid.json)\n"
    "  --key-dir DIR    the key store (default /var/lib/mimamori/keys); not inside --ring\n"
    "  --state-dir DIR  the daemon's state (default /var/lib/mimamori/state)\n"
    "  --ring DIR       the ring on the SD card (default /media/sdcard/mimamori/ring)\n"
    "\n"
    "exit status: 0 provisioned, 1 failed (e.g. already provisioned), 2 bad usage\n",
    {"--camera-id", "--config", "--key-dir", "--state-dir", "--ring"}, {}, runProvision});

}  // namespace
}  // namespace mimamori::cli
