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

    explicit LineReader(const std::filesystem::path& path)
        : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
        if (!fd_.valid()) throw common::FileError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
    }

    // The next complete line without its '\n'; false at the end of the file.
    bool next(std::string& line) {
        for (;;) {
            const std::size_t nl = buffer_.find('\n', start_);
            if (nl != std::string::npos) {
                line.assign(buffer_, start_, nl - start_);
                start_ = nl + 1;
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
    // next() stopped at a line longer than kMaxLine.
    bool tooLong() const { return tooLong_; }

private:
    std::filesystem::path path_;
    common::UniqueFd fd_;
    std::string buffer_;
    std::size_t start_ = 0;
    std::uint64_t offset_ = 0;
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

// Walks the log line by line. On success fills `state`; the torn tail, if any, is left in
// reader.tail() unverified (callers decide what a torn tail means).
AuditVerifyResult verifyLines(LineReader& reader, const SignPublicKey& cameraKey,
                              const std::optional<AuditCheckpoint>& expected, ChainState& state) {
    AuditVerifyResult result;
    auto bad = [&result](std::size_t line, std::string reason) {
        result.ok = false;
        result.badLine = line;
        result.reason = std::move(reason);
        return result;
    };
    AuditChainVerifier chain(cameraKey);
    std::size_t lineNo = 0;
    bool expectedSeen = false;
    std::string line;
    while (reader.next(line)) {
        ++lineNo;
        if (auto error = chain.next(line, lineNo); !error.empty()) return bad(lineNo, error);
        if (expected && chain.lastSeq() == expected->seq) {
            if (chain.lastType() != audit::kCheckpoint || chain.lastHash() != expected->lineHash)
                return bad(lineNo, fmt::format("entry {} is not the expected checkpoint {} (the log was rewritten)",
                                               chain.lastSeq(), expected->toString()));
            expectedSeen = true;
        }
    }
    state.lastSeq = chain.lastSeq();
    state.lastHash = chain.lastHash();
    state.lastType = chain.lastType();
    state.sinceCheckpoint = chain.sinceCheckpoint();
    state.lastCheckpoint = chain.lastCheckpoint();
    if (reader.tooLong()) return bad(lineNo + 1, fmt::format("a line longer than {} bytes", LineReader::kMaxLine));
    result.entries = state.lastSeq;
    result.lastCheckpoint = state.lastCheckpoint;
    result.endsWithCheckpoint = state.lastSeq > 0 && state.lastType == audit::kCheckpoint;
    if (expected && !expectedSeen)
        return bad(0, fmt::format("the log ends at entry {}, before the expected checkpoint {}: it was truncated",
                                  state.lastSeq, expected->toString()));
    result.ok = true;
    return result;
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

std::optional<AuditCheckpoint> readState(const std::filesystem::path& statePath) {
    std::error_code ec;
    if (!std::filesystem::exists(statePath, ec)) return std::nullopt;
    std::string text = common::readFile(statePath);
    if (!text.empty() && text.back() == '\n') text.pop_back();
    auto cp = AuditCheckpoint::parse(text);
    if (!cp) throw AuditError(fmt::format("{}: not 'SEQ:HASH'", statePath.string()));
    return cp;
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

AuditLog::AuditLog(std::filesystem::path path, const SecretKey& cameraKey, const common::Clock& clock,
                   AuditOptions options)
    : path_(std::move(path)), key_(cameraKey), clock_(clock), options_(std::move(options)) {
    if (key_.role() != Role::Camera)
        throw AuditError(fmt::format("{}: the audit log is signed with the camera key, not a {} key", path_.string(),
                                     roleName(key_.role())));
    if (options_.checkpointEvery == 0) throw AuditError("audit log: checkpointEvery must be at least 1");
    statePath_ = options_.statePath.empty() ? std::filesystem::path(path_.string() + ".checkpoint") : options_.statePath;
    const auto expected = readState(statePath_);

    std::error_code ec;
    const bool exists = std::filesystem::exists(path_, ec);
    if (!exists && expected)
        throw AuditError(fmt::format("{}: missing, but {} records checkpoint {}: the log was removed", path_.string(),
                                     statePath_.string(), expected->toString()));

    ChainState state;
    AuditVerifyResult result;
    std::string tornCopy;
    std::uint64_t completeBytes = 0;
    if (exists) {
        LineReader reader(path_);
        result = verifyLines(reader, key_.publicKey().signKey, expected, state);
        tornCopy = reader.tail();
        completeBytes = reader.completeBytes();
    } else {
        result.ok = true;
    }
    if (!result.ok)
        throw AuditError(fmt::format("{}{}: {}", path_.string(),
                                     result.badLine ? fmt::format(":{}", result.badLine) : std::string(), result.reason));
    lastSeq_ = state.lastSeq;
    lastHash_ = state.lastHash;
    lastType_ = state.lastType;
    sinceCheckpoint_ = state.sinceCheckpoint;
    recovery_.entries = state.lastSeq;

    if (!tornCopy.empty()) {
        // A power cut mid-append leaves a line without its '\n'. That append never returned,
        // so nobody was answered on it; keep its bytes as evidence, cut it, and say so in the log.
        recovery_.tornBytes = tornCopy.size();
        recovery_.tornCopy = path_.string() + fmt::format(".torn-{}", lastSeq_ + 1);
        // A second power cut at the same place must not overwrite the first one's evidence.
        for (int n = 2; std::filesystem::exists(recovery_.tornCopy, ec); ++n)
            recovery_.tornCopy = path_.string() + fmt::format(".torn-{}.{}", lastSeq_ + 1, n);
        common::writeFileAtomic(recovery_.tornCopy, tornCopy);
        if (::truncate(path_.c_str(), static_cast<off_t>(completeBytes)) != 0)
            throw common::FileError(fmt::format("{}: cannot cut the torn last line: {}", path_.string(), std::strerror(errno)));
    }

    fd_.reset(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!fd_.valid()) throw common::FileError(fmt::format("{}: {}", path_.string(), std::strerror(errno)));
    if (::fsync(fd_.get()) != 0)
        throw common::FileError(fmt::format("{}: fsync failed: {}", path_.string(), std::strerror(errno)));
    if (!exists) common::fsyncDirectory(path_.parent_path());

    if (!tornCopy.empty()) {
        std::lock_guard lock(mutex_);
        nlohmann::ordered_json fields;
        fields["bytes"] = tornCopy.size();
        fields["blake2b"] = blake2b256Hex(tornCopy);
        fields["saved_as"] = recovery_.tornCopy.filename().string();
        appendLocked(audit::kTornTailRecovered, dumpCompact(fields));
        common::logWarning("audit", "{}: a torn last line ({} bytes) was set aside as {}", path_.string(),
                           tornCopy.size(), recovery_.tornCopy.string());
    }
}

AuditLog::~AuditLog() {
    try {
        close();
    } catch (const std::exception& e) {
        common::logError("audit", "{}: closing failed: {}", path_.string(), e.what());
    }
}

std::uint64_t AuditLog::append(std::string_view type, const AuditFields& fields) {
    if (!isWord(type)) throw std::invalid_argument(fmt::format("audit entry type '{}' is not a snake_case word", type));
    if (type == audit::kCheckpoint || type == audit::kTornTailRecovered)
        throw std::invalid_argument(fmt::format("audit entry type '{}' is written by the log itself", type));
    const std::string fieldsJson = dumpCompact(toJson(fields));
    std::lock_guard lock(mutex_);
    if (!fd_.valid()) throw AuditError(fmt::format("{}: the audit log is closed", path_.string()));
    appendLocked(type, fieldsJson);
    const std::uint64_t seq = lastSeq_;
    if (sinceCheckpoint_ >= options_.checkpointEvery) checkpointLocked();
    return seq;
}

AuditCheckpoint AuditLog::checkpoint() {
    std::lock_guard lock(mutex_);
    if (!fd_.valid()) throw AuditError(fmt::format("{}: the audit log is closed", path_.string()));
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

void AuditLog::appendLocked(std::string_view type, const std::string& fieldsJson) {
    const std::uint64_t seq = lastSeq_ + 1;
    const std::string line = entryLine(seq, common::formatUtc(clock_.nowUtc()), type,
                                       nlohmann::ordered_json::parse(fieldsJson), lastHash_);
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

void AuditLog::checkpointLocked() {
    const std::uint64_t seq = lastSeq_ + 1;
    const std::string time = common::formatUtc(clock_.nowUtc());
    nlohmann::ordered_json fields;
    fields["key_id"] = key_.keyId();
    fields["signature"] = toBase64(sign(key_, checkpointMessage(seq, time, lastHash_)));
    const std::string line = entryLine(seq, time, audit::kCheckpoint, fields, lastHash_);
    writeLine(line);
    lastSeq_ = seq;
    lastHash_ = blake2b256Hex(line);
    lastType_ = std::string(audit::kCheckpoint);
    sinceCheckpoint_ = 0;
    // Remembered outside the log so that cutting the log back behind it is noticed on open.
    common::writeFileAtomic(statePath_, AuditCheckpoint{lastSeq_, lastHash_}.toString() + "\n");
}

void AuditLog::writeLine(const std::string& line) {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0)
        throw common::FileError(fmt::format("{}: {}", path_.string(), std::strerror(errno)));
    std::string bytes = line;
    bytes += '\n';
    try {
        // One write(2): with O_APPEND the line lands whole or, after a power cut, as a prefix.
        common::writeAll(fd_.get(), {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()},
                         path_.string());
        if (::fdatasync(fd_.get()) != 0)
            throw common::FileError(fmt::format("{}: fdatasync failed: {}", path_.string(), std::strerror(errno)));
    } catch (...) {
        // A partly written line (disk full) would break the chain for every later entry: undo it.
        if (::ftruncate(fd_.get(), st.st_size) != 0)
            common::logError("audit", "{}: cannot undo a partial write: {}", path_.string(), std::strerror(errno));
        throw;
    }
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

std::vector<AuditEntry> readAuditLog(const std::filesystem::path& path) {
    LineReader reader(path);
    std::vector<AuditEntry> out;
    std::size_t lineNo = 0;
    std::string line;
    while (reader.next(line)) {
        ++lineNo;
        ParsedLine p;
        if (auto error = parseLine(line, p); !error.empty())
            throw AuditError(fmt::format("{}:{}: {}", path.string(), lineNo, error));
        AuditEntry e;
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
    return out;
}

AuditVerifyResult verifyAuditLog(const std::filesystem::path& path, const SignPublicKey& cameraKey,
                                 const std::optional<AuditCheckpoint>& expected) {
    LineReader reader(path);
    ChainState state;
    AuditVerifyResult result = verifyLines(reader, cameraKey, expected, state);
    if (result.ok && !reader.tail().empty()) {
        result.ok = false;
        result.badLine = static_cast<std::size_t>(state.lastSeq) + 1;  // every earlier line verified, one per seq
        result.reason = fmt::format("torn last line ({} bytes without a newline; the camera sets it aside when it "
                                    "next opens the log)",
                                    reader.tail().size());
    }
    return result;
}

}  // namespace mimamori::policy
