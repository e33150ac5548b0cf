// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The audit log: JSON lines chained by BLAKE2b-256, camera-signed checkpoints, fsync per entry.
#include "mimamori/policy/audit_log.hpp"

#include "mimamori/common/log.hpp"
#include "mimamori/common/text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

namespace mimamori::policy {
namespace {

const std::string kGenesisHash(64, '0');
constexpr std::string_view kCheckpointDomain = "mimamori-audit-checkpoint-v1\n";

bool isWord(std::string_view s) {
    return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
           });
}

bool isHash(std::string_view s) {
    return s.size() == 64 &&
           std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Reads a log line by line in 64 KiB chunks, so a years-long log is never held in memory.
// The bytes after the last '\n' (a torn line) are kept apart in tail().
class LineReader {
public:
    static constexpr std::size_t kMaxLine = kMaxAuditLineBytes;

    // Reads from byte `offset` on (the start of a line).
    explicit LineReader(const std::filesystem::path& path, std::uint64_t offset = 0)
        : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), offset_(offset) {
        if (!fd_.valid()) throw common::FileError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
        if (offset > 0 && ::lseek(fd_.get(), static_cast<off_t>(offset), SEEK_SET) < 0)
            throw common::FileError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
    }

    // The next complete line without its '\n'; false at the end of the file.
    bool next(std::string& line) {
        for (;;) {
            const std::size_t nl = buffer_.find('\n', start_);
            if (nl != std::string::npos) {
                line.assign(buffer_, start_, nl - start_);
                start_ = nl + 1;
                lineStart_ = offset_;
                offset_ += line.size() + 1;
                return true;
            }
            buffer_.erase(0, start_);
            start_ = 0;
            if (buffer_.size() > kMaxLine) {
                tooLong_ = true;  // no entry is this long: not an audit log, or garbage appended
                return false;
            }
            char chunk[65536];
            const ssize_t n = ::read(fd_.get(), chunk, sizeof chunk);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw common::FileError(fmt::format("{}: {}", path_.string(), std::strerror(errno)));
            if (n == 0) return false;
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }

    // After next() returned false: the bytes after the last '\n', and where the complete lines end.
    const std::string& tail() const { return buffer_; }
    std::uint64_t completeBytes() const { return offset_; }
    // Where the line next() returned last starts in the file.
    std::uint64_t lineStart() const { return lineStart_; }
    const std::filesystem::path& path() const { return path_; }
    // next() stopped at a line longer than kMaxLine.
    bool tooLong() const { return tooLong_; }

private:
    std::filesystem::path path_;
    common::UniqueFd fd_;
    std::string buffer_;
    std::size_t start_ = 0;
    std::uint64_t offset_ = 0;
    std::uint64_t lineStart_ = 0;
    bool tooLong_ = false;
};

// The one serialisation the camera writes. Invalid UTF-8 in a field is replaced, never thrown.
std::string dumpCompact(const nlohmann::ordered_json& j) {
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string entryLine(std::uint64_t seq, const std::string& time, std::string_view type, const nlohmann::ordered_json& fields,
                      const std::string& prev) {
    nlohmann::ordered_json j;
    j["seq"] = seq;
    j["time"] = time;
    j["type"] = std::string(type);
    j["fields"] = fields;
    j["prev"] = prev;
    return dumpCompact(j);
}

// The state of a chain after some lines, as verification walks it.
struct ChainState {
    std::uint64_t lastSeq = 0;
    std::string lastHash = kGenesisHash;
    std::string lastType;
    std::uint64_t sinceCheckpoint = 0;
    std::optional<AuditCheckpoint> lastCheckpoint;
    std::filesystem::path lastCheckpointFile;  // where lastCheckpoint's line is
    std::uint64_t lastCheckpointOffset = 0;    // and the byte it starts at
    std::uint64_t linesRead = 0;
    std::size_t fileLines = 0;  // complete lines of the file walked last
    bool expectedSeen = false;
    // The chain may start anywhere: the first line read sets seq and prev (a single later-year file).
    bool adoptFirst = false;
    // Lines are counted from a checkpoint in the middle of a file, not from its start (open()).
    bool relativeLines = false;
};

// Parses one line into its parts; returns an error text or empty.
struct ParsedLine {
    std::uint64_t seq = 0;
    std::string time;
    UtcMicros timeMicros = 0;
    std::string type;
    nlohmann::ordered_json fields;  // in the order written, for `audit show`
    std::string prev;
};

std::string parseLine(std::string_view line, ParsedLine& out) {
    const nlohmann::ordered_json j = nlohmann::ordered_json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return "not a JSON object";
    if (j.size() != 5 || !j.contains("seq") || !j.contains("time") || !j.contains("type") || !j.contains("fields") ||
        !j.contains("prev"))
        return "expected exactly the members seq, time, type, fields, prev";
    if (!j["seq"].is_number_unsigned()) return "seq is not a whole number";
    out.seq = j["seq"].get<std::uint64_t>();
    if (!j["time"].is_string()) return "time is not a string";
    out.time = j["time"].get<std::string>();
    const auto t = common::parseUtc(out.time);
    if (!t || common::formatUtc(*t) != out.time) return "time is not a canonical UTC time";
    out.timeMicros = *t;
    if (!j["type"].is_string() || !isWord(j["type"].get<std::string>())) return "type is not a snake_case word";
    out.type = j["type"].get<std::string>();
    if (!j["fields"].is_object()) return "fields is not an object";
    for (const auto& [name, value] : j["fields"].items()) {
        // The name is not quoted back: it may be anything a forger put there.
        if (!isWord(name)) return "a field name is not a snake_case word";
        if (!value.is_string() && !value.is_number_integer() && !value.is_boolean())
            return fmt::format("field {} is not a string, a whole number or a boolean", name);
    }
    const auto& f = j["fields"];
    // The entries the log writes itself have exactly the fields it writes.
    if (out.type == audit::kCheckpoint &&
        (f.size() != 2 || !f.contains("key_id") || !f["key_id"].is_string() || !f.contains("signature") ||
         !f["signature"].is_string()))
        return "checkpoint fields must be exactly key_id and signature";
    if (out.type == audit::kTornTailRecovered &&
        (f.size() != 3 || !f.contains("bytes") || !f["bytes"].is_number_unsigned() ||
         f["bytes"].get<std::uint64_t>() == 0 || !f.contains("blake2b") || !f["blake2b"].is_string() ||
         !isHash(f["blake2b"].get<std::string>()) || !f.contains("saved_as") || !f["saved_as"].is_string() ||
         f["saved_as"].get<std::string>().empty()))
        return "torn_tail_recovered fields must be exactly bytes (a whole number above 0), blake2b (64 hex "
               "digits) and saved_as (a file name)";
    out.fields = f;
    if (!j["prev"].is_string() || !isHash(j["prev"].get<std::string>())) return "prev is not 64 hex digits";
    out.prev = j["prev"].get<std::string>();
    return {};
}

// Checks one line against the chain so far and advances it; returns an error text or empty.
// `lineNo` is only for the first line's message.
std::string checkLine(const std::string& line, std::size_t lineNo, const SignPublicKey& cameraKey,
                      const std::optional<AuditCheckpoint>& expected, ChainState& state, const LineReader& reader) {
    if (state.adoptFirst) {
        state.adoptFirst = false;
        ParsedLine e;
        if (auto error = parseLine(line, e); !error.empty()) return error;
        // A log's first line still starts from the genesis value; a later one continues a chain.
        if (e.seq > 1) {
            state.lastSeq = e.seq - 1;
            state.lastHash = e.prev;
        }
    }
    AuditChainVerifier chain(cameraKey, state.lastSeq, state.lastHash);
    // Line numbers word the reason only where they mean something: not for the first line of a
    // later file, nor for lines counted from a checkpoint inside a file.
    const bool numbered = !state.relativeLines && !(lineNo == 1 && state.lastSeq > 0);
    if (auto error = chain.next(line, numbered ? lineNo : 0); !error.empty()) return error;
    if (chain.lastType() == audit::kCheckpoint) {
        state.sinceCheckpoint = 0;
        state.lastCheckpoint = chain.lastCheckpoint();
        state.lastCheckpointFile = reader.path();
        state.lastCheckpointOffset = reader.lineStart();
    } else {
        ++state.sinceCheckpoint;
    }
    if (expected && chain.lastSeq() == expected->seq) {
        if (chain.lastType() != audit::kCheckpoint || chain.lastHash() != expected->lineHash)
            return fmt::format("entry {} is not the expected checkpoint {} (the log was rewritten)", chain.lastSeq(),
                               expected->toString());
        state.expectedSeen = true;
    }
    state.lastSeq = chain.lastSeq();
    state.lastHash = chain.lastHash();
    state.lastType = chain.lastType();
    ++state.linesRead;
    return {};
}

// Walks one file line by line from the reader's position, continuing `state`. The torn tail,
// if any, is left in reader.tail() unverified (callers decide what a torn tail means).
AuditVerifyResult verifyLines(LineReader& reader, const SignPublicKey& cameraKey,
                              const std::optional<AuditCheckpoint>& expected, ChainState& state,
                              std::size_t firstLineNo = 1) {
    AuditVerifyResult result;
    std::size_t lineNo = firstLineNo - 1;
    std::string line;
    while (reader.next(line)) {
        ++lineNo;
        state.fileLines = lineNo;
        if (auto error = checkLine(line, lineNo, cameraKey, expected, state, reader); !error.empty()) {
            result.badFile = reader.path();
            result.badLine = lineNo;
            result.reason = std::move(error);
            return result;
        }
    }
    if (reader.tooLong()) {
        result.badFile = reader.path();
        result.badLine = lineNo + 1;
        result.reason = fmt::format("a line longer than {} bytes", LineReader::kMaxLine);
        return result;
    }
    result.ok = true;
    return result;
}

// What the walk found, once every file is read.
void finishResult(AuditVerifyResult& result, const ChainState& state, const std::optional<AuditCheckpoint>& expected) {
    result.entries = state.lastSeq;
    result.lastCheckpoint = state.lastCheckpoint;
    result.endsWithCheckpoint = state.lastSeq > 0 && state.lastType == audit::kCheckpoint;
    if (result.ok && expected && !state.expectedSeen) {
        result.ok = false;
        result.badFile.clear();
        result.badLine = 0;
        result.reason = fmt::format("the log ends at entry {}, before the expected checkpoint {}: it was truncated",
                                    state.lastSeq, expected->toString());
    }
}

// Walks files in chain order. A torn tail is allowed only in the last file; it is returned in
// `tail` (with the file's complete length) for the caller.
AuditVerifyResult verifyFiles(const std::vector<std::filesystem::path>& files, const SignPublicKey& cameraKey,
                              const std::optional<AuditCheckpoint>& expected, ChainState& state, std::string& tail,
                              std::uint64_t& completeBytes) {
    AuditVerifyResult result;
    result.ok = true;
    for (std::size_t i = 0; i < files.size(); ++i) {
        LineReader reader(files[i]);
        state.fileLines = 0;
        result = verifyLines(reader, cameraKey, expected, state);
        if (!result.ok) return result;
        if (!reader.tail().empty() && i + 1 < files.size()) {
            result.ok = false;
            result.badFile = files[i];
            result.badLine = 0;
            result.reason = "a torn line (no newline) at the end of a file that is not the last";
            return result;
        }
        tail = reader.tail();
        completeBytes = reader.completeBytes();
    }
    return result;
}

bool isAuditFileName(const std::string& name) {
    // "audit-FY" + 4 digits + ".log"
    return name.size() == 16 && name.starts_with("audit-FY") && name.ends_with(".log") &&
           std::all_of(name.begin() + 8, name.begin() + 12, [](char c) { return c >= '0' && c <= '9'; });
}

int yearOfFile(const std::filesystem::path& file) { return std::stoi(file.filename().string().substr(8, 4)); }

// The state file: "SEQ:HASH\n", then "FILE OFFSET\n" (the checkpoint's file name and where its
// line starts). The second line is missing in a state written before fiscal-year files.
struct AuditState {
    AuditCheckpoint checkpoint;
    std::string file;
    std::uint64_t offset = 0;
    bool located = false;
};

std::optional<AuditState> readStateFile(const std::filesystem::path& statePath) {
    std::error_code ec;
    if (!std::filesystem::exists(statePath, ec)) return std::nullopt;
    const std::string text = common::readFile(statePath);
    const auto nl = text.find('\n');
    auto cp = AuditCheckpoint::parse(std::string_view(text).substr(0, nl));
    if (!cp) throw AuditError(fmt::format("{}: not 'SEQ:HASH'", statePath.string()));
    AuditState state{*cp, {}, 0, false};
    if (nl == std::string::npos || nl + 1 >= text.size()) return state;
    const std::string_view second = std::string_view(text).substr(nl + 1);
    const auto space = second.find(' ');
    if (space == std::string_view::npos || !second.ends_with('\n'))
        throw AuditError(fmt::format("{}: line 2 is not 'FILE OFFSET'", statePath.string()));
    state.file = std::string(second.substr(0, space));
    const std::string_view number = second.substr(space + 1, second.size() - space - 2);
    if (!isAuditFileName(state.file) ||
        std::from_chars(number.data(), number.data() + number.size(), state.offset).ptr != number.data() + number.size())
        throw AuditError(fmt::format("{}: line 2 is not 'FILE OFFSET'", statePath.string()));
    state.located = true;
    return state;
}

nlohmann::ordered_json toJson(const AuditFields& fields) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& [key, value] : fields) {
        if (!isWord(key)) throw std::invalid_argument(fmt::format("audit field name '{}' is not a snake_case word", key));
        if (j.contains(key)) throw std::invalid_argument(fmt::format("audit field '{}' given twice", key));
        std::visit([&j, &name = key](const auto& v) { j[name] = v; }, value);  // clang 14: no capture of a binding
    }
    return j;
}

}  // namespace

std::string AuditCheckpoint::toString() const { return fmt::format("{}:{}", seq, lineHash); }

std::optional<AuditCheckpoint> AuditCheckpoint::parse(std::string_view text) {
    const auto colon = text.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    AuditCheckpoint cp;
    const char* end = text.data() + colon;
    if (std::from_chars(text.data(), end, cp.seq).ptr != end || cp.seq == 0) return std::nullopt;
    cp.lineHash = std::string(text.substr(colon + 1));
    if (!isHash(cp.lineHash)) return std::nullopt;
    return cp;
}

std::string checkpointMessage(std::uint64_t seq, std::string_view time, std::string_view prevHash) {
    return fmt::format("{}{}\n{}\n{}", kCheckpointDomain, seq, time, prevHash);
}

int fiscalYearOf(UtcMicros t) {
    // Japan Standard Time is UTC+9 all year; the fiscal year starts on April 1 there. Date
    // arithmetic, not text: this runs on every append.
    using namespace std::chrono;
    const auto jstDays = floor<days>(sys_time<microseconds>(microseconds(t + 9 * 3600 * common::kMicrosPerSecond)));
    const year_month_day d{jstDays};
    const int year = static_cast<int>(d.year());
    return static_cast<unsigned>(d.month()) >= 4 ? year : year - 1;
}

std::string auditFileName(int fiscalYear) { return fmt::format("audit-FY{:04d}.log", fiscalYear); }

std::vector<std::filesystem::path> auditLogFiles(const std::filesystem::path& fileOrDir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(fileOrDir, ec)) return {fileOrDir};
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(fileOrDir, ec))
        if (isAuditFileName(entry.path().filename().string())) files.push_back(entry.path());
    if (ec) throw common::FileError(fmt::format("{}: {}", fileOrDir.string(), ec.message()));
    std::sort(files.begin(), files.end());  // the names sort by year
    return files;
}

AuditLog::AuditLog(std::filesystem::path directory, const SecretKey& cameraKey, const common::Clock& clock,
                   AuditOptions options)
    : dir_(std::move(directory)), key_(cameraKey), clock_(clock), options_(std::move(options)) {
    namespace fs = std::filesystem;
    if (key_.role() != Role::Camera)
        throw AuditError(fmt::format("{}: the audit log is signed with the camera key, not a {} key", dir_.string(),
                                     roleName(key_.role())));
    if (options_.checkpointEvery == 0) throw AuditError("audit log: checkpointEvery must be at least 1");
    statePath_ = options_.statePath.empty() ? dir_ / kAuditStateFile : options_.statePath;
    std::error_code ec;
    if (!fs::exists(dir_, ec)) {
        fs::create_directories(dir_);
        fs::permissions(dir_, fs::perms::owner_all);
        common::fsyncDirectory(dir_.parent_path());
    } else if (!fs::is_directory(dir_, ec)) {
        throw AuditError(fmt::format("{}: not a directory; a log of the single-file layout is moved into one at "
                                     "start (docs/audit-log.md, \"Migration\")",
                                     dir_.string()));
    }
    std::vector<fs::path> files = auditLogFiles(dir_);
    std::optional<AuditState> state = readStateFile(statePath_);
    const SignPublicKey& signKey = key_.publicKey().signKey;

    std::uint64_t migratedEntries = 0;
    fs::path legacyState;
    if (files.empty() && !options_.legacyFile.empty() && fs::exists(options_.legacyFile, ec)) {
        // The single-file log of earlier versions: verified in full against its own state file,
        // then moved whole (its bytes unchanged) to the file of its first entry's fiscal year.
        const fs::path& legacy = options_.legacyFile;
        legacyState = legacy.string() + ".checkpoint";
        const auto old = readStateFile(legacyState);
        ChainState cs;
        std::string tail;
        std::uint64_t complete = 0;
        const std::optional<AuditCheckpoint> oldExpected =
            old ? std::optional<AuditCheckpoint>(old->checkpoint) : std::nullopt;
        AuditVerifyResult r = verifyFiles({legacy}, signKey, oldExpected, cs, tail, complete);
        finishResult(r, cs, oldExpected);
        if (!r.ok)
            throw AuditError(fmt::format("{}{}: {}; not moved into {}", legacy.string(),
                                         r.badLine ? fmt::format(":{}", r.badLine) : std::string(), r.reason,
                                         dir_.string()));
        int year = fiscalYearOf(clock_.nowUtc());
        if (cs.lastSeq > 0) {
            LineReader first(legacy);
            std::string line;
            ParsedLine e;
            if (first.next(line) && parseLine(line, e).empty()) year = fiscalYearOf(e.timeMicros);
        }
        const fs::path target = dir_ / auditFileName(year);
        fs::rename(legacy, target);
        common::fsyncDirectory(dir_);
        common::fsyncDirectory(legacy.parent_path());
        // Until the new state file is written, the old one still guards against a cut.
        if (old && !state) state = AuditState{old->checkpoint, {}, 0, false};
        recovery_.migratedFrom = legacy;
        migratedEntries = cs.lastSeq;
        files = {target};
        common::logInfo("audit", "{}: moved into {} as {} ({} entries)", legacy.string(), dir_.string(),
                        target.filename().string(), migratedEntries);
    } else if (files.empty() && !options_.legacyFile.empty()) {
        // A crash after the move and before the new state: the old state file still counts.
        legacyState = options_.legacyFile.string() + ".checkpoint";
        if (auto old = readStateFile(legacyState); old && !state) state = AuditState{old->checkpoint, {}, 0, false};
    }
    if (files.empty() && state)
        throw AuditError(fmt::format("{}: no log file, but {} records checkpoint {}: the log was removed", dir_.string(),
                                     statePath_.string(), state->checkpoint.toString()));

    const std::optional<AuditCheckpoint> expected =
        state ? std::optional<AuditCheckpoint>(state->checkpoint) : std::nullopt;
    ChainState cs;
    AuditVerifyResult result;
    result.ok = true;
    std::string tornCopy;
    std::uint64_t completeBytes = 0;
    if (!files.empty() && state && state->located) {
        // Constant time: from the recorded checkpoint's line on, not from the first line.
        const auto at = std::find_if(files.begin(), files.end(),
                                     [&](const fs::path& f) { return f.filename() == state->file; });
        if (at == files.end())
            throw AuditError(fmt::format("{}: missing, but {} records checkpoint {} in it: the log was removed",
                                         (dir_ / state->file).string(), statePath_.string(),
                                         state->checkpoint.toString()));
        LineReader reader(*at, state->offset);
        std::string line;
        if (!reader.next(line) || blake2b256Hex(line) != state->checkpoint.lineHash)
            throw AuditError(fmt::format("{}: the checkpoint {} recorded in {} is not at byte {}: the log was cut back "
                                         "or rewritten",
                                         at->string(), state->checkpoint.toString(), statePath_.string(),
                                         state->offset));
        cs.adoptFirst = true;
        cs.relativeLines = true;
        if (auto error = checkLine(line, 1, signKey, expected, cs, reader); !error.empty())
            throw AuditError(fmt::format("{}: the recorded checkpoint at byte {}: {}", at->string(), state->offset, error));
        result = verifyLines(reader, signKey, expected, cs, 2);
        if (!result.ok) {
            // Line numbers here count from the checkpoint, not from the file's start.
            result.reason = fmt::format("{} line(s) after the recorded checkpoint {} (at byte {}): {}",
                                        result.badLine - 1, state->checkpoint.toString(), state->offset, result.reason);
            result.badLine = 0;
        }
        cs.relativeLines = false;
        tornCopy = reader.tail();
        completeBytes = reader.completeBytes();
        if (result.ok && at + 1 != files.end()) {
            if (!tornCopy.empty()) {
                result.ok = false;
                result.badFile = *at;
                result.reason = "a torn line (no newline) at the end of a file that is not the last";
            } else {
                result = verifyFiles(std::vector<fs::path>(at + 1, files.end()), signKey, expected, cs, tornCopy,
                                     completeBytes);
            }
        }
    } else if (!files.empty()) {
        result = verifyFiles(files, signKey, expected, cs, tornCopy, completeBytes);
    }
    finishResult(result, cs, expected);
    if (!result.ok) {
        const std::string where = result.badFile.empty() ? dir_.string() : result.badFile.string();
        throw AuditError(fmt::format("{}{}: {}", where, result.badLine ? fmt::format(":{}", result.badLine) : std::string(),
                                     result.reason));
    }
    lastSeq_ = cs.lastSeq;
    lastHash_ = cs.lastHash;
    lastType_ = cs.lastType;
    sinceCheckpoint_ = cs.sinceCheckpoint;
    recovery_.entries = cs.lastSeq;
    recovery_.linesVerified = cs.linesRead;
    file_ = files.empty() ? dir_ / auditFileName(fiscalYearOf(clock_.nowUtc())) : files.back();
    fileYear_ = yearOfFile(file_);

    if (!tornCopy.empty()) {
        // A power cut mid-append leaves a line without its '\n'. That append never returned,
        // so nobody was answered on it; keep its bytes as evidence, cut it, and say so in the log.
        recovery_.tornBytes = tornCopy.size();
        recovery_.tornCopy = file_.string() + fmt::format(".torn-{}", lastSeq_ + 1);
        // A second power cut at the same place must not overwrite the first one's evidence.
        for (int n = 2; fs::exists(recovery_.tornCopy, ec); ++n)
            recovery_.tornCopy = file_.string() + fmt::format(".torn-{}.{}", lastSeq_ + 1, n);
        common::writeFileAtomic(recovery_.tornCopy, tornCopy);
        if (::truncate(file_.c_str(), static_cast<off_t>(completeBytes)) != 0)
            throw common::FileError(fmt::format("{}: cannot cut the torn last line: {}", file_.string(), std::strerror(errno)));
    }

    fd_.reset(::open(file_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!fd_.valid()) throw common::FileError(fmt::format("{}: {}", file_.string(), std::strerror(errno)));
    if (::fsync(fd_.get()) != 0)
        throw common::FileError(fmt::format("{}: fsync failed: {}", file_.string(), std::strerror(errno)));
    if (files.empty()) common::fsyncDirectory(dir_);

    std::lock_guard lock(mutex_);
    if (!tornCopy.empty()) {
        nlohmann::ordered_json fields;
        fields["bytes"] = tornCopy.size();
        fields["blake2b"] = blake2b256Hex(tornCopy);
        fields["saved_as"] = recovery_.tornCopy.filename().string();
        appendLocked(audit::kTornTailRecovered, dumpCompact(fields));
        common::logWarning("audit", "{}: a torn last line ({} bytes) was set aside as {}", file_.string(),
                           tornCopy.size(), recovery_.tornCopy.string());
    }
    if (!recovery_.migratedFrom.empty()) {
        nlohmann::ordered_json fields;
        fields["from"] = recovery_.migratedFrom.filename().string();
        fields["file"] = file_.filename().string();
        fields["entries"] = migratedEntries;
        appendLocked(audit::kAuditLogMigrated, dumpCompact(fields));
    }
    if (!recovery_.migratedFrom.empty() || (state && !state->located) || (!state && cs.lastCheckpoint)) {
        // A state file that says where its checkpoint is, so that the next open starts there.
        if (lastType_ == audit::kCheckpoint && cs.lastCheckpoint)
            writeState(*cs.lastCheckpoint, cs.lastCheckpointFile.filename().string(), cs.lastCheckpointOffset);
        else
            checkpointLocked();
    }
    if (!legacyState.empty() && fs::exists(statePath_, ec)) fs::remove(legacyState, ec);
}

std::filesystem::path AuditLog::currentFile() const {
    std::lock_guard lock(mutex_);
    return file_;
}

AuditLog::~AuditLog() {
    try {
        close();
    } catch (const std::exception& e) {
        common::logError("audit", "{}: closing failed: {}", dir_.string(), e.what());
    }
}

std::uint64_t AuditLog::append(std::string_view type, const AuditFields& fields) {
    if (!isWord(type)) throw std::invalid_argument(fmt::format("audit entry type '{}' is not a snake_case word", type));
    if (type == audit::kCheckpoint || type == audit::kTornTailRecovered)
        throw std::invalid_argument(fmt::format("audit entry type '{}' is written by the log itself", type));
    const std::string fieldsJson = dumpCompact(toJson(fields));
    std::lock_guard lock(mutex_);
    if (!fd_.valid()) throw AuditError(fmt::format("{}: the audit log is closed", dir_.string()));
    appendLocked(type, fieldsJson);
    const std::uint64_t seq = lastSeq_;
    if (sinceCheckpoint_ >= options_.checkpointEvery) checkpointLocked();
    return seq;
}

AuditCheckpoint AuditLog::checkpoint() {
    std::lock_guard lock(mutex_);
    if (!fd_.valid()) throw AuditError(fmt::format("{}: the audit log is closed", dir_.string()));
    if (lastType_ != audit::kCheckpoint) checkpointLocked();
    return AuditCheckpoint{lastSeq_, lastHash_};
}

void AuditLog::close() {
    std::lock_guard lock(mutex_);
    if (!fd_.valid()) return;
    if (lastType_ != audit::kCheckpoint) checkpointLocked();
    fd_.reset();
}

std::uint64_t AuditLog::lastSeq() const {
    std::lock_guard lock(mutex_);
    return lastSeq_;
}

AuditLines AuditLog::linesAfter(std::uint64_t afterSeq, std::uint64_t throughSeq, std::size_t maxBytes) const {
    AuditLines out;
    out.through = afterSeq;
    out.complete = afterSeq >= throughSeq;
    if (out.complete) return out;
    // The camera writes "seq" first; the log was verified when it was opened.
    const auto seqOf = [](const std::string& line) -> std::optional<std::uint64_t> {
        constexpr std::string_view kPrefix = R"({"seq":)";
        std::uint64_t seq = 0;
        if (!line.starts_with(kPrefix) ||
            std::from_chars(line.data() + kPrefix.size(), line.data() + line.size(), seq).ec != std::errc())
            return std::nullopt;
        return seq;
    };
    // Start with the newest file whose first line is at or before the first line wanted.
    const std::vector<std::filesystem::path> files = auditLogFiles(dir_);
    std::size_t first = 0;
    for (std::size_t i = 1; i < files.size(); ++i) {
        LineReader reader(files[i]);
        std::string line;
        const auto seq = reader.next(line) ? seqOf(line) : std::nullopt;
        if (seq && *seq <= afterSeq + 1) first = i;
    }
    // Lines are only ever appended whole, so reading while another thread appends sees a
    // prefix of complete lines up to at least throughSeq.
    std::size_t used = 0;
    std::string line;
    for (std::size_t i = first; i < files.size(); ++i) {
        LineReader reader(files[i]);
        while (reader.next(line)) {
            const auto seq = seqOf(line);
            if (!seq) throw AuditError(fmt::format("{}: a line without its seq after entry {}", files[i].string(), out.through));
            if (*seq <= afterSeq) continue;
            if (*seq != out.through + 1)
                throw AuditError(fmt::format("{}: entry {} where {} was expected", files[i].string(), *seq, out.through + 1));
            if (used + line.size() + 1 > maxBytes) {
                out.complete = false;
                return out;
            }
            used += line.size() + 1;
            out.lines.push_back(line);
            out.through = *seq;
            if (*seq == throughSeq) {
                out.complete = true;
                return out;
            }
        }
    }
    out.complete = out.through == throughSeq;
    return out;
}

void AuditLog::appendLocked(std::string_view type, const std::string& fieldsJson) {
    const UtcMicros now = clock_.nowUtc();
    if (fiscalYearOf(now) > fileYear_) startFileFor(now);
    const std::uint64_t seq = lastSeq_ + 1;
    const std::string line = entryLine(seq, common::formatUtc(now), type, nlohmann::ordered_json::parse(fieldsJson), lastHash_);
    // A longer line would make the log unreadable to every reader (docs/audit-log.md).
    if (line.size() > kMaxAuditLineBytes)
        throw std::invalid_argument(fmt::format("audit entry '{}' would be a line of {} bytes, more than {}", type,
                                                line.size(), kMaxAuditLineBytes));
    writeLine(line);
    lastSeq_ = seq;
    lastHash_ = blake2b256Hex(line);
    lastType_ = std::string(type);
    if (type != audit::kCheckpoint) ++sinceCheckpoint_;
}

// A new fiscal year: the old file ends with a checkpoint, so each finished year is signed to
// its last line; the new file's first line carries the old file's last hash in "prev".
void AuditLog::startFileFor(UtcMicros now) {
    if (lastSeq_ > 0 && lastType_ != audit::kCheckpoint) checkpointLocked();
    const int year = fiscalYearOf(now);
    const std::filesystem::path next = dir_ / auditFileName(year);
    common::UniqueFd fd(::open(next.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) throw common::FileError(fmt::format("{}: {}", next.string(), std::strerror(errno)));
    common::fsyncDirectory(dir_);
    fd_ = std::move(fd);
    file_ = next;
    fileYear_ = year;
    common::logInfo("audit", "fiscal year {}: the audit log continues in {}", year, next.string());
}

void AuditLog::checkpointLocked() {
    const std::uint64_t seq = lastSeq_ + 1;
    const std::string time = common::formatUtc(clock_.nowUtc());
    nlohmann::ordered_json fields;
    fields["key_id"] = key_.keyId();
    fields["signature"] = toBase64(sign(key_, checkpointMessage(seq, time, lastHash_)));
    const std::string line = entryLine(seq, time, audit::kCheckpoint, fields, lastHash_);
    const std::uint64_t offset = writeLine(line);
    lastSeq_ = seq;
    lastHash_ = blake2b256Hex(line);
    lastType_ = std::string(audit::kCheckpoint);
    sinceCheckpoint_ = 0;
    writeState(AuditCheckpoint{lastSeq_, lastHash_}, file_.filename().string(), offset);
}

// Remembered outside the log so that cutting the log back behind it is noticed on open, and
// where it is, so that open starts there.
void AuditLog::writeState(const AuditCheckpoint& checkpoint, const std::string& file, std::uint64_t offset) {
    common::writeFileAtomic(statePath_, fmt::format("{}\n{} {}\n", checkpoint.toString(), file, offset));
}

std::uint64_t AuditLog::writeLine(const std::string& line) {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0)
        throw common::FileError(fmt::format("{}: {}", file_.string(), std::strerror(errno)));
    std::string bytes = line;
    bytes += '\n';
    try {
        // One write(2): with O_APPEND the line lands whole or, after a power cut, as a prefix.
        common::writeAll(fd_.get(), {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()},
                         file_.string());
        if (::fdatasync(fd_.get()) != 0)
            throw common::FileError(fmt::format("{}: fdatasync failed: {}", file_.string(), std::strerror(errno)));
    } catch (...) {
        // A partly written line (disk full) would break the chain for every later entry: undo it.
        if (::ftruncate(fd_.get(), st.st_size) != 0)
            common::logError("audit", "{}: cannot undo a partial write: {}", file_.string(), std::strerror(errno));
        throw;
    }
    return static_cast<std::uint64_t>(st.st_size);
}

AuditChainVerifier::AuditChainVerifier(const SignPublicKey& cameraKey, std::uint64_t lastSeq, std::string lastHash)
    : key_(cameraKey), keyId_(keyIdOf(cameraKey)), lastSeq_(lastSeq), lastHash_(std::move(lastHash)) {}

std::string AuditChainVerifier::next(std::string_view line, std::size_t lineNo) {
    if (line.size() > kMaxAuditLineBytes) return fmt::format("a line longer than {} bytes", kMaxAuditLineBytes);
    ParsedLine e;
    if (auto error = parseLine(line, e); !error.empty()) return error;
    if (e.seq != lastSeq_ + 1)
        return fmt::format("seq {} where {} was expected (a line was removed, inserted or moved)", e.seq, lastSeq_ + 1);
    if (e.prev != lastHash_) {
        if (lineNo == 1) return "prev of the first entry is not the genesis value";
        if (lineNo == 0) return fmt::format("prev does not match the hash of entry {} (the chain was rewritten)", lastSeq_);
        return fmt::format("prev does not match the hash of line {} (that line was changed, or lines were removed, "
                           "inserted or moved)",
                           lineNo - 1);
    }
    const std::string hash = blake2b256Hex(line);
    if (e.type == audit::kCheckpoint) {
        const auto& f = e.fields;  // shape checked by parseLine
        if (f["key_id"].get<std::string>() != keyId_)
            return fmt::format("checkpoint signed by key {}, not the camera key {}",
                               common::escapeControls(f["key_id"].get<std::string>()), keyId_);
        std::vector<std::uint8_t> sigBytes;
        Signature sig{};
        if (!fromBase64(f["signature"].get<std::string>(), sigBytes) || sigBytes.size() != sig.size())
            return "checkpoint signature is not base64 of 64 bytes";
        std::copy(sigBytes.begin(), sigBytes.end(), sig.begin());
        if (!verify(key_, checkpointMessage(e.seq, e.time, e.prev), sig))
            return "checkpoint signature does not verify with the camera key";
        sinceCheckpoint_ = 0;
        lastCheckpoint_ = AuditCheckpoint{e.seq, hash};
    } else {
        ++sinceCheckpoint_;
    }
    lastSeq_ = e.seq;
    lastHash_ = hash;
    lastType_ = e.type;
    lastTime_ = e.timeMicros;
    return {};
}

std::vector<AuditEntry> readAuditLog(const std::filesystem::path& fileOrDir) {
    std::vector<AuditEntry> out;
    for (const auto& path : auditLogFiles(fileOrDir)) {
        LineReader reader(path);
        std::size_t lineNo = 0;
        std::string line;
        while (reader.next(line)) {
            ++lineNo;
            ParsedLine p;
            if (auto error = parseLine(line, p); !error.empty())
                throw AuditError(fmt::format("{}:{}: {}", path.string(), lineNo, error));
            AuditEntry e;
            e.file = path;
            e.lineNumber = lineNo;
            e.seq = p.seq;
            e.time = p.timeMicros;
            e.type = p.type;
            e.fieldsJson = dumpCompact(p.fields);
            e.line = line;
            out.push_back(std::move(e));
        }
        if (reader.tooLong())
            throw AuditError(fmt::format("{}:{}: a line longer than {} bytes", path.string(), lineNo + 1, LineReader::kMaxLine));
        if (!reader.tail().empty())
            throw AuditError(fmt::format("{}:{}: torn last line (no newline)", path.string(), lineNo + 1));
    }
    return out;
}

AuditVerifyResult verifyAuditLog(const std::filesystem::path& fileOrDir, const SignPublicKey& cameraKey,
                                 const std::optional<AuditCheckpoint>& expected) {
    const std::vector<std::filesystem::path> files = auditLogFiles(fileOrDir);
    AuditVerifyResult result;
    if (files.empty()) {
        result.reason = "no audit-FY*.log file in the directory";
        return result;
    }
    ChainState state;
    std::error_code ec;
    // One file alone may be a later year's: it continues a chain from its first line.
    state.adoptFirst = !std::filesystem::is_directory(fileOrDir, ec);
    std::string tail;
    std::uint64_t completeBytes = 0;
    result = verifyFiles(files, cameraKey, expected, state, tail, completeBytes);
    if (result.ok && !tail.empty()) {
        result.ok = false;
        result.badFile = files.back();
        result.badLine = state.fileLines + 1;  // every earlier line verified
        result.reason = fmt::format("torn last line ({} bytes without a newline; the camera sets it aside when it "
                                    "next opens the log)",
                                    tail.size());
    }
    finishResult(result, state, result.ok ? expected : std::nullopt);
    return result;
}

}  // namespace mimamori::policy
