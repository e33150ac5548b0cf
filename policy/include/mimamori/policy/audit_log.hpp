// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The camera's append-only, hash-chained audit log with camera-signed checkpoints, one file per
// fiscal year in a directory (docs/audit-log.md).
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/policy/keys.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace mimamori::policy {

using common::UtcMicros;

// Entry types. Other snake_case words are allowed too; these are the ones the camera writes.
namespace audit {
constexpr std::string_view kDaemonStart = "daemon_start";
constexpr std::string_view kDaemonStop = "daemon_stop";
constexpr std::string_view kRequestReceived = "request_received";
constexpr std::string_view kRequestGranted = "request_granted";
constexpr std::string_view kRequestRefused = "request_refused";   // fields: reason (reasonCode), text
constexpr std::string_view kExtractDelivered = "extract_delivered";  // fields: bytes, sha256
constexpr std::string_view kMaskReviewStill = "mask_review_still";  // a review still given (docs/review-still.md)
constexpr std::string_view kMaskChanged = "mask_changed";          // fields: old_hash, new_hash
constexpr std::string_view kRetentionDeleted = "retention_deleted";  // before day_shredded; still read
constexpr std::string_view kDayShredded = "day_shredded";          // fields: day, segments, bytes, reasons
constexpr std::string_view kRecordingGap = "recording_gap";
constexpr std::string_view kKeyAdvanced = "key_advanced";            // before day_shredded; still read
constexpr std::string_view kAuditLogMigrated = "audit_log_migrated";  // written by the log itself
constexpr std::string_view kLogsCollected = "logs_collected";    // the city collected the log (docs/city-log-route.md)
constexpr std::string_view kCityLogRefused = "city_log_refused";  // fields: reason, text, key_id, ...
constexpr std::string_view kCheckpoint = "checkpoint";          // written by the log itself
constexpr std::string_view kTornTailRecovered = "torn_tail_recovered";  // written by the log itself
}  // namespace audit

// The longest line (without its '\n') a reader accepts and append() writes.
constexpr std::size_t kMaxAuditLineBytes = std::size_t{1} << 20;

// A field value: text, a whole number, or a flag.
using AuditValue = std::variant<std::string, std::int64_t, bool>;
// Fields in the order given; keys are snake_case words. E.g. {{"request_id", id}, {"bytes", n}}.
using AuditFields = std::vector<std::pair<std::string, AuditValue>>;

// Thrown when an existing log does not verify on open, or its state file disagrees with it.
class AuditError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A checkpoint as an auditor records it: "SEQ:HASH", HASH = BLAKE2b-256 hex of the checkpoint's line.
struct AuditCheckpoint {
    std::uint64_t seq = 0;
    std::string lineHash;
    [[nodiscard]] std::string toString() const;
    [[nodiscard]] static std::optional<AuditCheckpoint> parse(std::string_view text);
};

// The fiscal year (JST, April to March, named by the year it starts in) of a UTC instant:
// 2026-03-31T14:59:59Z is in FY2025, 2026-03-31T15:00:00Z in FY2026.
[[nodiscard]] int fiscalYearOf(UtcMicros t);
// "audit-FY2026.log".
[[nodiscard]] std::string auditFileName(int fiscalYear);
// The camera's record of its last checkpoint inside the log's directory.
inline constexpr std::string_view kAuditStateFile = "audit.checkpoint";

// The files of a log in chain order (by fiscal year): the audit-FY*.log files of a directory,
// or a single file as it is. Throws common::FileError when `fileOrDir` is unreadable.
[[nodiscard]] std::vector<std::filesystem::path> auditLogFiles(const std::filesystem::path& fileOrDir);

struct AuditOptions {
    std::uint64_t checkpointEvery = 64;  // at most this many entries between signed checkpoints
    // Where the last checkpoint is remembered (atomic file) so that open() notices a log cut
    // back behind it, and starts verifying there. Empty: "<directory>/audit.checkpoint".
    std::filesystem::path statePath;
    // A log of the single-file layout (with "<file>.checkpoint" beside it) that is moved into
    // the directory on open when the directory holds no log yet (docs/audit-log.md,
    // "Migration"). Empty: none.
    std::filesystem::path legacyFile;
};

// What open() found at the end of an existing file.
struct AuditRecovery {
    std::uint64_t entries = 0;      // valid entries found
    std::uint64_t tornBytes = 0;    // bytes of a torn last line set aside (0: none)
    std::filesystem::path tornCopy; // where those bytes were saved, when tornBytes > 0
    std::uint64_t linesVerified = 0;  // lines read and checked by open(): constant in steady state
    std::filesystem::path migratedFrom;  // the single-file log moved in, when open() did that
};

// Lines of the log, exact bytes without their '\n', as linesAfter() reads them.
struct AuditLines {
    std::vector<std::string> lines;
    std::uint64_t through = 0;  // seq of the last line given (the asked-for afterSeq when none)
    bool complete = false;      // every line up to throughSeq is given
};

// What a writer of entries needs of the log: the log itself in the process that owns it, or a
// client of that process over a socket (policy/audit_channel.hpp). Implementations are
// thread-safe and throw on failure; an append that returned is on disk (fsync'd by the owner).
class AuditTrail {
public:
    virtual ~AuditTrail() = default;
    // Appends one entry; returns its seq.
    virtual std::uint64_t append(std::string_view type, const AuditFields& fields) = 0;
    // A signed checkpoint now (unless the last entry already is one).
    [[nodiscard]] virtual AuditCheckpoint checkpoint() = 0;
    // The lines with seq in (afterSeq, throughSeq], as many as fit in maxBytes.
    [[nodiscard]] virtual AuditLines linesAfter(std::uint64_t afterSeq, std::uint64_t throughSeq,
                                                std::size_t maxBytes) const = 0;
};

// Thread-safe: any thread may append; each append is written with one write(2) and fsync'd
// before it returns, so the caller may answer the network only afterwards.
class AuditLog final : public AuditTrail {
public:
    // Opens or creates the log in `directory` (created 0700 when missing). An existing log is
    // verified from the checkpoint the state file records (its line, then every line after
    // it), so opening takes the same time however old the log is; without a state file it is
    // verified in full. A torn last line (no final '\n', from a power cut mid-write) is
    // copied to "<file>.torn-<seq>", cut off, and recorded as a torn_tail_recovered entry.
    // `cameraKey` (role camera) and `clock` are borrowed and must outlive the log.
    // Throws AuditError (does not verify) or common::FileError.
    AuditLog(std::filesystem::path directory, const SecretKey& cameraKey, const common::Clock& clock,
             AuditOptions options = {});
    // Calls close(); errors are logged, never thrown.
    ~AuditLog() override;
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;

    // Appends one entry (and a checkpoint after it when due). Returns the entry's seq.
    // Throws common::FileError when the disk refuses, std::invalid_argument for a bad type/key
    // or a line over kMaxAuditLineBytes, AuditError after close().
    std::uint64_t append(std::string_view type, const AuditFields& fields) override;
    // Writes a signed checkpoint now (unless the last entry already is one). Returns it.
    [[nodiscard]] AuditCheckpoint checkpoint() override;
    // Writes a final checkpoint and closes the file. Idempotent.
    void close();

    [[nodiscard]] std::uint64_t lastSeq() const;
    // The lines with seq in (afterSeq, throughSeq], in order, as many as fit in `maxBytes`
    // (each counted with its '\n'). Reads the file while others append; throughSeq must not be
    // beyond lastSeq(). Throws common::FileError, or AuditError when a line is not the next seq.
    [[nodiscard]] AuditLines linesAfter(std::uint64_t afterSeq, std::uint64_t throughSeq, std::size_t maxBytes) const override;
    [[nodiscard]] const AuditRecovery& recovery() const { return recovery_; }
    [[nodiscard]] const std::filesystem::path& path() const { return dir_; }  // the directory
    [[nodiscard]] std::filesystem::path currentFile() const;

private:
    void appendLocked(std::string_view type, const std::string& fieldsJson);
    void checkpointLocked();
    // Writes one line to the current file; returns the offset where it starts.
    std::uint64_t writeLine(const std::string& line);
    void writeState(const AuditCheckpoint& checkpoint, const std::string& file, std::uint64_t offset);
    void startFileFor(UtcMicros now);

    std::filesystem::path dir_;
    std::filesystem::path file_;  // the newest file, where entries go
    int fileYear_ = 0;
    std::filesystem::path statePath_;
    const SecretKey& key_;
    const common::Clock& clock_;
    AuditOptions options_;
    mutable std::mutex mutex_;
    common::UniqueFd fd_;
    std::uint64_t lastSeq_ = 0;
    std::string lastHash_;        // BLAKE2b-256 hex of the last line's bytes (without '\n')
    std::string lastType_;
    std::uint64_t sinceCheckpoint_ = 0;
    AuditRecovery recovery_;
};

// One parsed line of a log (for `audit show`); fieldsJson is the "fields" object as compact JSON.
struct AuditEntry {
    std::filesystem::path file;  // the file it is in
    std::size_t lineNumber = 0;  // 1-based, in that file
    std::uint64_t seq = 0;
    UtcMicros time = 0;
    std::string type;
    std::string fieldsJson;
    std::string line;            // the exact line, without '\n'
};

// Parses every line of a file, or of every file of a directory in chain order; throws
// AuditError naming the first line ("FILE:LINE: reason") that is not an entry.
[[nodiscard]] std::vector<AuditEntry> readAuditLog(const std::filesystem::path& fileOrDir);

struct AuditVerifyResult {
    bool ok = false;
    std::filesystem::path badFile;  // the file of badLine (empty when ok or log-level)
    std::size_t badLine = 0;   // 1-based line of the first bad entry in badFile (0 when ok or file-level)
    std::string reason;        // one line; empty when ok
    std::uint64_t entries = 0;
    std::optional<AuditCheckpoint> lastCheckpoint;  // the last valid signed checkpoint
    bool endsWithCheckpoint = false;  // false: entries after the last checkpoint are unsigned
};

// Verifies the chain (seq, prev hashes), every checkpoint signature (camera key), and, when
// `expected` is given (a checkpoint recorded earlier by an auditor or the camera's state file),
// that the log still contains exactly that checkpoint. Without `expected`, a log cut back to an
// earlier checkpoint cannot be told from a log that ended there (docs/audit-log.md).
// A directory is verified as one chain over its files from seq 1; a single file from its
// first line on (a later year's file continues the chain of the one before).
// Never throws for bad content; throws common::FileError when unreadable.
[[nodiscard]] AuditVerifyResult verifyAuditLog(const std::filesystem::path& fileOrDir, const SignPublicKey& cameraKey,
                                 const std::optional<AuditCheckpoint>& expected = std::nullopt);

// Walks a chain one line at a time with the checks of verifyAuditLog (each line an entry, seq
// and prev continuing the chain, every checkpoint signed by the camera key). `mimamori fleet
// collect` starts one at the end of an archived chain to check the lines a camera sends.
// Not thread-safe; the key is borrowed and must outlive the verifier.
class AuditChainVerifier {
public:
    // Continues after entry `lastSeq` whose line hashes to `lastHash` (0 and 64 zeros: a new log).
    explicit AuditChainVerifier(const SignPublicKey& cameraKey, std::uint64_t lastSeq = 0,
                                std::string lastHash = std::string(64, '0'));
    // Empty when `line` (without '\n') extends the chain, which then ends with it; otherwise the
    // one-line reason, and the chain stays where it was. `lineNo` (1-based, 0: not in a file)
    // only words the reason.
    [[nodiscard]] std::string next(std::string_view line, std::size_t lineNo = 0);

    [[nodiscard]] std::uint64_t lastSeq() const { return lastSeq_; }
    [[nodiscard]] const std::string& lastHash() const { return lastHash_; }
    [[nodiscard]] const std::string& lastType() const { return lastType_; }
    [[nodiscard]] UtcMicros lastTime() const { return lastTime_; }
    [[nodiscard]] const std::optional<AuditCheckpoint>& lastCheckpoint() const { return lastCheckpoint_; }
    [[nodiscard]] std::uint64_t sinceCheckpoint() const { return sinceCheckpoint_; }

private:
    const SignPublicKey& key_;
    std::string keyId_;
    std::uint64_t lastSeq_ = 0;
    std::string lastHash_;
    std::string lastType_;
    UtcMicros lastTime_ = 0;
    std::optional<AuditCheckpoint> lastCheckpoint_;
    std::uint64_t sinceCheckpoint_ = 0;
};

// The bytes a checkpoint signature covers: "mimamori-audit-checkpoint-v1\n" SEQ "\n" TIME "\n" PREV.
[[nodiscard]] std::string checkpointMessage(std::uint64_t seq, std::string_view time, std::string_view prevHash);

}  // namespace mimamori::policy
