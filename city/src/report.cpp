// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The report's figures: one pass over each camera's fiscal-year file, one camera at a time.
#include "mimamori/city/report.hpp"

#include "mimamori/city/archive.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/text.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <optional>

namespace mimamori::city {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxHealthBytes = 4 << 20;
constexpr std::string_view kGenesis = "0000000000000000000000000000000000000000000000000000000000000000";

// Calls `onLine` with each complete line of `file` (without '\n'), reading 1 MiB at a time,
// until it returns false. Returns an error text for a line over the audit limit or a last line
// without '\n'; memory stays within a chunk plus one line.
std::string forEachLine(const std::filesystem::path& file, const std::function<bool(std::string_view)>& onLine) {
    common::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) throw common::FileError(fmt::format("{}: {}", file.string(), std::strerror(errno)));
    constexpr std::size_t kChunk = std::size_t{1} << 20;
    std::string pending;
    std::string chunk(kChunk, '\0');
    for (;;) {
        const ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw common::FileError(fmt::format("{}: {}", file.string(), std::strerror(errno)));
        if (n == 0) return pending.empty() ? std::string() : std::string("the last line has no newline");
        pending.append(chunk, 0, static_cast<std::size_t>(n));
        const std::string_view view(pending);
        std::size_t start = 0;
        for (std::size_t nl; (nl = view.find('\n', start)) != std::string_view::npos; start = nl + 1)
            if (!onLine(view.substr(start, nl - start))) return {};
        pending.erase(0, start);
        if (pending.size() > policy::kMaxAuditLineBytes)
            return fmt::format("a line longer than {} bytes", policy::kMaxAuditLineBytes);
    }
}

// The parts of an entry line the report reads. The camera writes each line compactly with the
// members in order (docs/audit-log.md), so they are cut out without a JSON parser; any other
// valid form falls back to one.
struct LineParts {
    std::uint64_t seq = 0;
    std::string_view time;
    std::string_view type;
    std::string_view fields;   // the JSON object
    std::string_view prev;
    std::string owned;          // backing store for the fallback
};

bool cutCompact(std::string_view line, LineParts& out) {
    constexpr std::string_view kSeq = "{\"seq\":", kTime = ",\"time\":\"", kType = "\",\"type\":\"",
                               kFields = "\",\"fields\":", kPrev = ",\"prev\":\"", kEnd = "\"}";
    if (!line.starts_with(kSeq) || line.size() < kPrev.size() + 64 + kEnd.size()) return false;
    const char* p = line.data() + kSeq.size();
    const char* e = line.data() + line.size();
    const auto [afterSeq, ec] = std::from_chars(p, e, out.seq);
    if (ec != std::errc{}) return false;
    std::string_view rest(afterSeq, static_cast<std::size_t>(e - afterSeq));
    // `prefix`, then a string up to the next quote (times and types hold no escapes).
    auto quoted = [&rest](std::string_view prefix, std::string_view& value) {
        if (!rest.starts_with(prefix)) return false;
        rest.remove_prefix(prefix.size());
        const auto quote = rest.find('"');
        if (quote == std::string_view::npos) return false;
        value = rest.substr(0, quote);
        rest.remove_prefix(quote);
        return true;
    };
    if (!quoted(kTime, out.time) || !quoted(kType, out.type)) return false;
    if (!rest.starts_with(kFields)) return false;
    rest.remove_prefix(kFields.size());
    const std::size_t tail = kPrev.size() + 64 + kEnd.size();
    if (rest.size() < tail || !rest.ends_with(kEnd)) return false;
    out.fields = rest.substr(0, rest.size() - tail);
    if (rest.substr(rest.size() - tail, kPrev.size()) != kPrev) return false;
    out.prev = rest.substr(rest.size() - 64 - kEnd.size(), 64);
    return true;
}

bool cutAny(std::string_view line, LineParts& out) {
    if (cutCompact(line, out)) return true;
    const json j = json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("seq") || !j["seq"].is_number_unsigned() ||
        !j.contains("time") || !j["time"].is_string() || !j.contains("type") || !j["type"].is_string() ||
        !j.contains("fields") || !j["fields"].is_object() || !j.contains("prev") || !j["prev"].is_string())
        return false;
    out.seq = j["seq"].get<std::uint64_t>();
    // One buffer: time \0 type \0 fields \0 prev, views into it.
    const std::string time = j["time"].get<std::string>(), type = j["type"].get<std::string>(),
                      fields = j["fields"].dump(), prev = j["prev"].get<std::string>();
    out.owned = time + type + fields + prev;
    std::string_view o(out.owned);
    out.time = o.substr(0, time.size());
    out.type = o.substr(time.size(), type.size());
    out.fields = o.substr(time.size() + type.size(), fields.size());
    out.prev = o.substr(time.size() + type.size() + fields.size());
    return true;
}

std::optional<UtcMicros> timeOf(const json& fields, const char* name) {
    if (!fields.contains(name) || !fields[name].is_string()) return std::nullopt;
    return common::parseUtc(fields[name].get<std::string>());
}

std::string textOf(const json& fields, const char* name) {
    return fields.contains(name) && fields[name].is_string() ? fields[name].get<std::string>() : std::string();
}

std::int64_t numberOf(const json& fields, const char* name) {
    return fields.contains(name) && fields[name].is_number_integer() ? fields[name].get<std::int64_t>() : 0;
}

// A field of the daily entries (retention_deleted, key_advanced) without a JSON parser: they make
// most of a year's lines. The fields object holds only scalars and a quote inside a string is
// escaped, so `"name":` occurs only as that member's name. Text values are returned raw (these
// are times and numbers, never escaped).
std::optional<std::string_view> rawField(std::string_view fields, std::string_view name) {
    std::size_t at = 0;
    for (;;) {
        at = fields.find(name, at);
        if (at == std::string_view::npos) return std::nullopt;
        const std::size_t end = at + name.size();
        if (at > 0 && fields[at - 1] == '"' && fields.substr(end, 2) == "\":") {
            std::string_view value = fields.substr(end + 2);
            if (!value.empty() && value.front() == '"') {
                value.remove_prefix(1);
                return value.substr(0, value.find('"'));
            }
            return value.substr(0, value.find_first_of(",}"));
        }
        at = end;
    }
}

// The newest health record's gaps: start text -> end (when closed).
std::map<std::string, UtcMicros> healthGapEnds(const std::filesystem::path& cameraDir) {
    std::map<std::string, UtcMicros> ends;
    std::error_code ec;
    std::filesystem::path newest;
    for (std::filesystem::directory_iterator it(cameraDir / "health", ec), endIt; !ec && it != endIt; it.increment(ec))
        if (it->path().extension() == ".json" && it->path().filename() > newest.filename()) newest = it->path();
    if (newest.empty()) return ends;
    const auto size = std::filesystem::file_size(newest, ec);
    if (ec || size > kMaxHealthBytes) return ends;  // a record that large is not one the camera wrote
    const json health = json::parse(common::readFile(newest), nullptr, false);
    if (health.is_discarded() || !health.is_object() || !health.contains("gaps") || !health["gaps"].is_array())
        return ends;
    for (const auto& gap : health["gaps"]) {
        if (!gap.is_object()) continue;
        const auto end = timeOf(gap, "end");
        if (gap.contains("start") && gap["start"].is_string() && end) {
            // The health record and the log may write the same instant differently; key by the value.
            if (const auto start = common::parseUtc(gap["start"].get<std::string>()))
                ends[common::formatUtc(*start)] = *end;
        }
    }
    return ends;
}

// The last line of the problems file, when there is one: a collection found the log broken.
std::string lastProblem(const std::filesystem::path& cameraDir) {
    std::error_code ec;
    const auto file = cameraDir / "problems";
    if (!std::filesystem::exists(file, ec)) return {};
    try {
        return lastLineOf(file);
    } catch (const ArchiveError&) {
        return "the problems file is damaged";
    }
}

CameraFigures readCamera(const std::filesystem::path& root, const std::string& id, int year,
                         const FiscalYearRange& range, Report& report) {
    CameraFigures cam;
    cam.id = id;
    const auto dir = root / id;
    const auto years = archivedYears(dir);
    if (std::find(years.begin(), years.end(), year) == years.end()) {
        if (const auto problem = lastProblem(dir); !problem.empty()) {
            cam.broken = true;
            cam.chainStatus = problem;
        }
        return cam;
    }
    const bool firstFile = years.front() == year;
    const bool laterFile = years.back() > year;

    // Where the chain stood before this year: the previous file's last line.
    std::uint64_t lastSeq = 0;
    std::string lastHash(kGenesis);
    if (!firstFile) {
        const int before = *std::prev(std::lower_bound(years.begin(), years.end(), year));
        const std::string line = lastLineOf(dir / "audit" / auditFileName(before));
        LineParts parts;
        if (line.empty() || !cutAny(line, parts)) {
            cam.broken = true;
            cam.chainStatus = fmt::format("{}: the last line is not an entry", auditFileName(before));
        } else {
            lastSeq = parts.seq;
            lastHash = policy::blake2b256Hex(line);
        }
    }

    const auto healthEnds = healthGapEnds(dir);
    std::string firstTime, lastTime;
    bool lastWasCheckpoint = false;
    std::vector<ReportGap> gaps;
    const auto file = dir / "audit" / auditFileName(year);
    const std::string readError = forEachLine(file, [&](std::string_view line) {
        LineParts e;
        if (!cutAny(line, e)) {
            cam.broken = true;
            cam.chainStatus = fmt::format("{}: entry after {} is not an audit entry", auditFileName(year), lastSeq);
            return false;
        }
        if (!cam.broken && (e.seq != lastSeq + 1 || e.prev != lastHash)) {
            cam.broken = true;
            cam.chainStatus = fmt::format("{}: the chain breaks at entry {} (the archive was changed)",
                                          auditFileName(year), e.seq);
            return false;  // figures stop at the break; the camera is marked
        }
        lastSeq = e.seq;
        lastHash = policy::blake2b256Hex(line);
        ++cam.entries;
        // Canonical UTC times of one form compare as text: the latest is kept without parsing each.
        if (cam.entries == 1) firstTime = std::string(e.time);
        if (e.time > lastTime) lastTime = std::string(e.time);
        const std::string_view type = e.type;
        lastWasCheckpoint = type == policy::audit::kCheckpoint;
        if (lastWasCheckpoint) {
            cam.lastCheckpoint = fmt::format("{}:{}", e.seq, lastHash);
            return true;
        }
        if (type == policy::audit::kMaskReviewStill) {
            ++cam.maskReviews;
            return true;
        }
        if (type == policy::audit::kDayShredded) {
            // One day's key destroyed: that day's footage, the oldest of which began at the day's
            // start (UTC), was held until now at the longest.
            ++cam.daysShredded;
            if (const auto day = rawField(e.fields, "day"))
                if (const auto start = common::parseUtc(std::string(*day) + "T00:00:00Z"))
                    if (const auto now = common::parseUtc(e.time))
                        cam.oldestHeldSeconds = std::max(cam.oldestHeldSeconds, (*now - *start) / common::kMicrosPerSecond);
            return true;
        }
        if (type == policy::audit::kKeyAdvanced) {
            std::int64_t advances = 0;
            if (const auto v = rawField(e.fields, "advances"))
                (void)std::from_chars(v->data(), v->data() + v->size(), advances);
            cam.daysShredded += static_cast<std::uint64_t>(std::max<std::int64_t>(0, advances));
            return true;
        }
        const auto when = common::parseUtc(e.time).value_or(range.begin);
        if (type == policy::audit::kRetentionDeleted) {
            if (const auto v = rawField(e.fields, "from"))
                if (const auto from = common::parseUtc(*v))
                    cam.oldestHeldSeconds = std::max(cam.oldestHeldSeconds, (when - *from) / common::kMicrosPerSecond);
            return true;
        }
        // Only the entries the report counts are parsed further.
        if (type != policy::audit::kRequestGranted && type != policy::audit::kRequestRefused &&
            type != policy::audit::kExtractDelivered && type != policy::audit::kMaskChanged &&
            type != policy::audit::kRecordingGap && type != policy::audit::kDaemonStart)
            return true;
        const json f = json::parse(e.fields.begin(), e.fields.end(), nullptr, false);
        if (f.is_discarded() || !f.is_object()) return true;  // verified when collected; cannot happen
        if (type == policy::audit::kRequestGranted) {
            const std::string ground = textOf(f, "ground");
            for (std::size_t g = 0; g < kGrounds.size(); ++g) {
                if (ground != kGrounds[g]) continue;
                ++cam.provisions[g];
                ++report.provisionsByMonth[static_cast<std::size_t>(fiscalMonthOf(std::clamp(when, range.begin, range.end - 1)))][g];
                ++report.provisionsByBody[textOf(f, "body")];
            }
        } else if (type == policy::audit::kRequestRefused) {
            ++cam.refusals[textOf(f, "reason")];
        } else if (type == policy::audit::kExtractDelivered) {
            ++cam.extracts;
            cam.extractBytes += static_cast<std::uint64_t>(std::max<std::int64_t>(0, numberOf(f, "bytes")));
            const auto from = timeOf(f, "actual_from"), to = timeOf(f, "actual_to");
            if (from && to && *to > *from) cam.extractSeconds += (*to - *from) / common::kMicrosPerSecond;
        } else if (type == policy::audit::kMaskChanged) {
            ++cam.maskChanges;
        } else if (type == policy::audit::kDaemonStart) {
            if (const auto days = numberOf(f, "retention_days"); days > 0) cam.retentionDays = days;
        } else if (type == policy::audit::kRecordingGap) {
            ReportGap gap;
            gap.start = timeOf(f, "start").value_or(when);
            gap.reason = textOf(f, "reason");
            if (const auto end = timeOf(f, "end")) {
                gap.end = *end;
            } else if (const auto it = healthEnds.find(common::formatUtc(gap.start)); it != healthEnds.end()) {
                gap.end = it->second;
            } else {
                gap.endKnown = false;
            }
            gaps.push_back(std::move(gap));
        }
        return true;
    });
    if (!readError.empty() && !cam.broken) {
        cam.broken = true;
        cam.chainStatus = fmt::format("{}: {}", auditFileName(year), readError);
    }
    // The year's last entries are signed by the next checkpoint, which may be in the next file.
    if (!cam.broken && !lastWasCheckpoint && laterFile) {
        const int after = *std::upper_bound(years.begin(), years.end(), year);
        const std::string nextError = forEachLine(dir / "audit" / auditFileName(after), [&](std::string_view line) {
            LineParts e;
            if (!cutAny(line, e) || e.seq != lastSeq + 1 || e.prev != lastHash) {
                cam.broken = true;
                cam.chainStatus = fmt::format("{}: the chain breaks at entry {} (the archive was changed)",
                                              auditFileName(after), lastSeq + 1);
                return false;
            }
            lastSeq = e.seq;
            lastHash = policy::blake2b256Hex(line);
            if (e.type != policy::audit::kCheckpoint) return true;
            cam.lastCheckpoint = fmt::format("{}:{}", e.seq, lastHash);
            return false;
        });
        if (!nextError.empty() && !cam.broken) {
            cam.broken = true;
            cam.chainStatus = fmt::format("{}: {}", auditFileName(after), nextError);
        }
    }
    if (const auto problem = lastProblem(dir); !problem.empty()) {
        cam.broken = true;
        cam.chainStatus = problem;
    }

    cam.inOperation = cam.entries > 0;
    if (!cam.inOperation) return cam;
    const UtcMicros first = common::parseUtc(firstTime).value_or(range.begin);
    const UtcMicros last = common::parseUtc(lastTime).value_or(range.end);
    cam.operatingFrom = firstFile ? std::clamp(first, range.begin, range.end) : range.begin;
    cam.operatingTo = laterFile ? range.end : std::clamp(last, cam.operatingFrom, range.end);
    for (auto& gap : gaps)
        if (!gap.endKnown) gap.end = cam.operatingTo;
    // Overlapping gaps (a gap reported again after a restart) must not count twice: merge them.
    std::sort(gaps.begin(), gaps.end(), [](const ReportGap& a, const ReportGap& b) { return a.start < b.start; });
    std::int64_t gapMicros = 0;
    UtcMicros covered = cam.operatingFrom;
    for (const auto& gap : gaps) {
        const UtcMicros from = std::clamp(std::max(gap.start, covered), cam.operatingFrom, cam.operatingTo);
        const UtcMicros to = std::clamp(gap.end, from, cam.operatingTo);
        gapMicros += to - from;
        covered = std::max(covered, to);
    }
    cam.gapSeconds = gapMicros / common::kMicrosPerSecond;
    const UtcMicros span = cam.operatingTo - cam.operatingFrom;
    cam.recordedShare = span > 0 ? 1.0 - static_cast<double>(gapMicros) / static_cast<double>(span) : 0.0;
    cam.gapsTotal = gaps.size();
    if (gaps.size() > kMaxGapsListed) gaps.resize(kMaxGapsListed);
    cam.gaps = std::move(gaps);
    return cam;
}

}  // namespace

Report computeReport(const std::filesystem::path& archive, int fiscalYear) {
    Report report;
    report.fiscalYear = fiscalYear;
    report.range = fiscalYearRange(fiscalYear);
    std::error_code ec;
    if (!std::filesystem::is_directory(archive, ec))
        throw ArchiveError(fmt::format("{}: not an archive folder", archive.string()));
    for (const auto& id : listCameras(archive))
        report.cameras.push_back(readCamera(archive, id, fiscalYear, report.range, report));
    return report;
}

}  // namespace mimamori::city
