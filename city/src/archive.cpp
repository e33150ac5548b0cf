// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The camera archive: verified appends of audit lines split into fiscal-year files.
#include "mimamori/city/archive.hpp"

#include "mimamori/city/fiscal_year.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace mimamori::city {
namespace {

constexpr std::string_view kAuditDir = "audit";
constexpr std::string_view kHealthDir = "health";
constexpr std::string_view kKeyFile = "camera.pub";
constexpr std::string_view kCheckpointsFile = "checkpoints";
constexpr std::string_view kProblemsFile = "problems";

// Appends bytes to a file (created 0644) and syncs them; a new file's directory entry is synced too.
void appendDurably(const std::filesystem::path& file, std::string_view bytes) {
    std::error_code ec;
    const bool existed = std::filesystem::exists(file, ec);
    common::UniqueFd fd(::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd.valid()) throw common::FileError(fmt::format("{}: {}", file.string(), std::strerror(errno)));
    common::writeAll(fd.get(), {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, file.string());
    if (::fdatasync(fd.get()) != 0)
        throw common::FileError(fmt::format("{}: fdatasync failed: {}", file.string(), std::strerror(errno)));
    if (!existed) common::fsyncDirectory(file.parent_path());
}

void makeDir(const std::filesystem::path& dir) {
    std::error_code ec;
    if (std::filesystem::create_directories(dir, ec)) common::fsyncDirectory(dir.parent_path());
    if (ec) throw common::FileError(fmt::format("{}: {}", dir.string(), ec.message()));
}

// "audit-FY2025.log" -> 2025; nullopt for any other name.
std::optional<int> yearOfFileName(std::string_view name) {
    constexpr std::string_view prefix = "audit-FY";
    constexpr std::string_view suffix = ".log";
    if (name.size() != prefix.size() + 4 + suffix.size() || !name.starts_with(prefix) || !name.ends_with(suffix))
        return std::nullopt;
    int year = 0;
    const char* first = name.data() + prefix.size();
    const auto [ptr, ec] = std::from_chars(first, first + 4, year);
    if (ec != std::errc{} || ptr != first + 4) return std::nullopt;
    return year;
}

}  // namespace

bool isValidCameraId(std::string_view id) {
    return !id.empty() && id.size() <= 64 && id.front() != '.' && std::all_of(id.begin(), id.end(), [](char c) {
               return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-';
           });
}

std::string auditFileName(int fiscalYear) { return fmt::format("audit-FY{:04}.log", fiscalYear); }

std::vector<std::string> listCameras(const std::filesystem::path& root) {
    std::vector<std::string> ids;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(root, ec), endIt; !ec && it != endIt; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!it->is_directory()) continue;
        if (!isValidCameraId(name))
            throw ArchiveError(fmt::format("{}: not a camera id", common::escapeControls(it->path().string())));
        ids.push_back(name);
    }
    if (ec) throw ArchiveError(fmt::format("{}: {}", root.string(), ec.message()));
    std::sort(ids.begin(), ids.end());
    return ids;
}

std::vector<int> archivedYears(const std::filesystem::path& cameraDir) {
    std::vector<int> years;
    std::error_code ec;
    const auto dir = cameraDir / kAuditDir;
    for (std::filesystem::directory_iterator it(dir, ec), endIt; !ec && it != endIt; it.increment(ec)) {
        const auto year = yearOfFileName(it->path().filename().string());
        if (!year || !it->is_regular_file())
            throw ArchiveError(fmt::format("{}: not an archive file", common::escapeControls(it->path().string())));
        years.push_back(*year);
    }
    std::sort(years.begin(), years.end());
    return years;
}

std::string lastLineOf(const std::filesystem::path& file) {
    common::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        if (errno == ENOENT) return {};
        throw common::FileError(fmt::format("{}: {}", file.string(), std::strerror(errno)));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw common::FileError(fmt::format("{}: {}", file.string(), std::strerror(errno)));
    const auto size = static_cast<std::uint64_t>(st.st_size);
    // The last line plus its '\n' and the '\n' before it: never more than an audit line allows.
    const std::uint64_t want = std::min<std::uint64_t>(size, policy::kMaxAuditLineBytes + 2);
    std::string buffer(static_cast<std::size_t>(want), '\0');
    std::size_t got = 0;
    while (got < buffer.size()) {
        const ssize_t n = ::pread(fd.get(), buffer.data() + got, buffer.size() - got,
                                  static_cast<off_t>(size - want + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw common::FileError(fmt::format("{}: short read", file.string()));
        got += static_cast<std::size_t>(n);
    }
    if (buffer.empty()) return {};
    if (buffer.back() != '\n') throw ArchiveError(fmt::format("{}: the last line has no newline", file.string()));
    buffer.pop_back();
    const std::size_t nl = buffer.rfind('\n');
    if (nl == std::string::npos && want < size)
        throw ArchiveError(fmt::format("{}: a line longer than {} bytes", file.string(), policy::kMaxAuditLineBytes));
    return nl == std::string::npos ? buffer : buffer.substr(nl + 1);
}

CameraArchive::CameraArchive(std::filesystem::path root, std::string cameraId)
    : root_(std::move(root)), id_(std::move(cameraId)) {
    if (!isValidCameraId(id_))
        throw ArchiveError(fmt::format("camera id '{}' cannot be a folder name (1-64 of A-Z a-z 0-9 . _ -)",
                                       common::escapeControls(id_)));
    dir_ = root_ / id_;
}

std::string CameraArchive::adoptKey(const policy::PublicKey& key) {
    if (key.role != policy::Role::Camera)
        return fmt::format("{}: the key '{}' is not a camera key", id_, common::escapeControls(key.name));
    const auto path = dir_ / kKeyFile;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        makeDir(dir_);
        common::writeFileAtomic(path, policy::formatPublicKey(key));
        return {};
    }
    const auto archived = this->key();
    if (archived.signKey != key.signKey)
        return fmt::format("the camera key was replaced (archived {}, now {}): the archived log cannot continue "
                           "with it",
                           archived.keyId(), key.keyId());
    return {};
}

policy::PublicKey CameraArchive::key() const {
    try {
        return policy::loadPublicKey(dir_ / kKeyFile);
    } catch (const std::exception& e) {
        throw ArchiveError(e.what());
    }
}

ArchiveEnd CameraArchive::end() {
    ArchiveEnd end;
    const auto years = archivedYears(dir_);
    for (auto it = years.rbegin(); it != years.rend(); ++it) {
        const auto file = dir_ / kAuditDir / auditFileName(*it);
        std::string line;
        try {
            line = lastLineOf(file);
        } catch (const ArchiveError&) {
            // A torn last line: an append of ours that a power cut interrupted. It was never
            // recorded as collected; cut it back to the last complete line and read again.
            const std::string text = common::readFile(file);
            const std::size_t keep = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
            if (keep == text.size()) throw;  // not torn: a line that is too long
            if (::truncate(file.c_str(), static_cast<off_t>(keep)) != 0)
                throw common::FileError(fmt::format("{}: {}", file.string(), std::strerror(errno)));
            line = lastLineOf(file);
        }
        if (line.empty()) continue;
        // Only the seq is taken from the line; it was verified when it was stored.
        const auto seqAt = line.find("\"seq\":");
        std::uint64_t seq = 0;
        if (seqAt == std::string::npos ||
            std::from_chars(line.data() + seqAt + 6, line.data() + line.size(), seq).ec != std::errc{})
            throw ArchiveError(fmt::format("{}: the last line is not an audit entry", file.string()));
        end.seq = seq;
        end.hash = policy::blake2b256Hex(line);
        end.fiscalYear = *it;
        return end;
    }
    return end;
}

IngestResult CameraArchive::ingest(std::string_view lines, const policy::AuditCheckpoint& cameraCheckpoint,
                                   UtcMicros now, bool complete) {
    IngestResult result;
    const ArchiveEnd start = end();
    const policy::PublicKey cameraKey = key();
    policy::AuditChainVerifier chain(cameraKey.signKey, start.seq, start.hash);
    auto problem = [&](std::string text) {
        result.problem = std::move(text);
        result.stored = 0;
        recordProblem(result.problem, now);
        return result;
    };

    struct Accepted {
        std::size_t begin, size;
        int fiscalYear;
    };
    std::vector<Accepted> accepted;
    std::size_t signedCount = 0;  // accepted entries up to the last checkpoint among them
    bool checkpointSeen = cameraCheckpoint.seq == start.seq && cameraCheckpoint.lineHash == start.hash;
    int year = start.fiscalYear;
    std::size_t pos = 0;
    while (pos < lines.size()) {
        const std::size_t nl = lines.find('\n', pos);
        if (nl == std::string_view::npos) return problem("the camera's answer ends in the middle of a line");
        const std::string_view line = lines.substr(pos, nl - pos);
        if (auto error = chain.next(line); !error.empty()) {
            if (accepted.empty() && (error.starts_with("seq ") || error.starts_with("prev ")))
                return problem(fmt::format("the camera's log no longer extends the archive (cut back, rewritten or "
                                           "replaced) after entry {}: {}",
                                           start.seq, error));
            return problem(fmt::format("entry {}: {}", chain.lastSeq() + 1, error));
        }
        year = std::max(year, fiscalYearOf(chain.lastTime()));
        accepted.push_back({pos, line.size() + 1, year});
        if (chain.lastType() == policy::audit::kCheckpoint) {
            signedCount = accepted.size();
            if (chain.lastSeq() == cameraCheckpoint.seq && chain.lastHash() == cameraCheckpoint.lineHash)
                checkpointSeen = true;
        }
        pos = nl + 1;
    }
    if (cameraCheckpoint.seq < start.seq)
        return problem(fmt::format("the camera's last checkpoint {} is behind the archive's entry {}: its log was "
                                   "cut back",
                                   cameraCheckpoint.toString(), start.seq));
    if (!complete && cameraCheckpoint.seq <= chain.lastSeq())
        return problem(fmt::format("the camera said more lines follow entry {}, but its checkpoint {} is not after "
                                   "them",
                                   chain.lastSeq(), cameraCheckpoint.toString()));
    if (complete && !checkpointSeen)
        return problem(fmt::format("the camera's last checkpoint {} is not in its log as the archive holds it and "
                                   "as the camera sent it (rewritten)",
                                   cameraCheckpoint.toString()));

    // Store the signed entries, each run of one fiscal year with one write.
    makeDir(dir_ / kAuditDir);
    for (std::size_t i = 0; i < signedCount;) {
        std::size_t j = i;
        while (j < signedCount && accepted[j].fiscalYear == accepted[i].fiscalYear) ++j;
        const std::size_t from = accepted[i].begin;
        const std::size_t to = accepted[j - 1].begin + accepted[j - 1].size;
        appendDurably(dir_ / kAuditDir / auditFileName(accepted[i].fiscalYear), lines.substr(from, to - from));
        i = j;
    }
    result.stored = signedCount;
    result.unsignedTail = accepted.size() - signedCount;
    result.checkpoint = cameraCheckpoint;
    appendDurably(dir_ / kCheckpointsFile, fmt::format("{} {}\n", cameraCheckpoint.toString(), common::formatUtc(now)));
    return result;
}

void CameraArchive::storeHealth(std::string_view health, UtcMicros now) {
    makeDir(dir_ / kHealthDir);
    common::writeFileAtomic(dir_ / kHealthDir / (jstDay(now) + ".json"), health);
}

void CameraArchive::recordProblem(std::string_view problem, UtcMicros now) {
    makeDir(dir_);
    appendDurably(dir_ / kProblemsFile,
                  fmt::format("{} {}\n", common::formatUtc(now), common::escapeControls(problem)));
}

}  // namespace mimamori::city
