// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The city's archive of each camera's audit log, checkpoints and health (docs/fleet.md).
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::city {

using common::UtcMicros;

// The archive itself is damaged or unusable (a file that is not what the archive writes, a
// camera id that cannot be a folder name). The message names the file.
class ArchiveError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// 1..64 characters of [A-Za-z0-9._-], not starting with '.': a camera id becomes a folder name.
[[nodiscard]] bool isValidCameraId(std::string_view id);

// "audit-FY2025.log": the file holding the entries of fiscal year 2025 (docs/fleet.md).
[[nodiscard]] std::string auditFileName(int fiscalYear);

// Where the archived chain ends: its last entry, and the fiscal year of the file holding it.
struct ArchiveEnd {
    std::uint64_t seq = 0;                     // 0: nothing archived yet
    std::string hash = std::string(64, '0');   // BLAKE2b-256 hex of the last line
    int fiscalYear = 0;                        // 0 when empty
};

// What one collection brought.
struct IngestResult {
    std::uint64_t stored = 0;          // entries verified and appended
    std::uint64_t unsignedTail = 0;    // entries after the camera's last checkpoint: verified, not stored
    std::optional<policy::AuditCheckpoint> checkpoint;  // the camera's checkpoint, once it checked out
    std::string problem;               // empty when the lines extend the archive; else one line
};

// One camera's folder in the archive. Appends only: lines already archived are never
// rewritten, and lines that do not extend the archived chain are never stored.
// Not thread-safe; use one object per camera and thread.
class CameraArchive {
public:
    // `root` is the archive folder; the camera's folder is created on the first write.
    // Throws ArchiveError for an id that cannot be a folder name.
    CameraArchive(std::filesystem::path root, std::string cameraId);

    [[nodiscard]] const std::string& cameraId() const { return id_; }
    [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

    // The camera key the archive verifies against: stored as camera.pub on first use. Returns
    // a problem (one line) when `key` is not the key archived before (the camera key was
    // replaced: the archived chain cannot continue with it), else empty.
    [[nodiscard]] std::string adoptKey(const policy::PublicKey& key);
    // The archived camera key; throws ArchiveError when there is none or it does not parse.
    [[nodiscard]] policy::PublicKey key() const;

    // Reads where the archived chain ends. A last line without '\n' (a power cut during an
    // earlier collection: never acknowledged) is cut off first. Throws ArchiveError.
    [[nodiscard]] ArchiveEnd end();

    // Verifies `lines` (the camera's entries after end().seq, each ending in '\n') against the
    // archived chain and the camera's last checkpoint `cameraCheckpoint`, then appends the
    // entries up to the last checkpoint among them and records that checkpoint. `complete`
    // false: the camera sent only the first part of what follows (docs/city-log-route.md), so
    // its checkpoint lies after these lines. On a problem nothing is stored and the problem is
    // appended to the camera's problems file.
    IngestResult ingest(std::string_view lines, const policy::AuditCheckpoint& cameraCheckpoint, UtcMicros now,
                        bool complete = true);

    // Keeps `health` (the camera's health record as collected) as the record of now's JST day,
    // replacing an earlier one of the same day. Throws common::FileError.
    void storeHealth(std::string_view health, UtcMicros now);
    // Appends "TIME reason" to the camera's problems file (a collection that found its log no
    // longer extending the archive). The report names every camera with such a line.
    void recordProblem(std::string_view problem, UtcMicros now);

private:
    std::filesystem::path root_;
    std::string id_;
    std::filesystem::path dir_;
};

// The camera folders in an archive, sorted by id. Throws ArchiveError on a name that is not
// a camera id.
[[nodiscard]] std::vector<std::string> listCameras(const std::filesystem::path& root);

// The fiscal years an archived camera has files for, ascending.
[[nodiscard]] std::vector<int> archivedYears(const std::filesystem::path& cameraDir);

// The last line (without '\n') of an archive file, read from its end; empty when the file is
// empty or missing. Throws ArchiveError when that line is longer than an audit line may be.
[[nodiscard]] std::string lastLineOf(const std::filesystem::path& file);

}  // namespace mimamori::city
