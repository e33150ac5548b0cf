// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// `mimamori audit verify|show`: city staff check a camera's audit log and read what it recorded.
#include "cli.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/common/text.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>

namespace mimamori::cli {
namespace {

using namespace mimamori::policy;

// The first line of the camera's state file (docs/audit-log.md, "Checkpoints").
std::optional<AuditCheckpoint> checkpointFromState(const std::filesystem::path& path) {
    std::string text = common::readFile(path);
    text = text.substr(0, text.find('\n'));
    auto cp = AuditCheckpoint::parse(text);
    if (!cp) throw std::runtime_error(fmt::format("{}: not a checkpoint 'SEQ:HASH'", path.string()));
    return cp;
}

int runVerify(const Args& args) {
    args.expectPositionals(1, "LOG_DIR|LOG_FILE");
    const std::filesystem::path log = args.positionals()[0];
    std::error_code ec;
    const bool directory = std::filesystem::is_directory(log, ec);
    const PublicKey camera = loadPublicKey(args.required("--camera-key"));
    if (camera.role != Role::Camera)
        throw std::runtime_error(fmt::format("{}: a {} key, not the camera's", args.required("--camera-key"),
                                             roleName(camera.role)));
    std::optional<AuditCheckpoint> expected;
    std::string expectedFrom;
    if (const auto text = args.option("--expect")) {
        expected = AuditCheckpoint::parse(*text);
        if (!expected) throw UsageError(fmt::format("--expect must be SEQ:HASH as printed by audit verify, not '{}'", *text));
        expectedFrom = "--expect";
    } else {
        // The camera keeps its last checkpoint in the log's directory (beside a single-file log
        // before fiscal-year files); use it when it is there.
        std::filesystem::path state = args.option("--state").value_or(
            directory ? (log / kAuditStateFile).string() : log.string() + ".checkpoint");
        if (args.option("--state") || std::filesystem::exists(state, ec)) {
            expected = checkpointFromState(state);
            expectedFrom = state.string();
        }
    }
    const AuditVerifyResult r = verifyAuditLog(log, camera.signKey, expected);
    if (!r.ok) {
        // The reason never quotes a forged field as it is, but print it escaped all the same.
        const std::string where = r.badFile.empty() ? log.string() : r.badFile.string();
        if (r.badLine > 0)
            fmt::print(stderr, "{}:{}: {}\n", where, r.badLine, common::escapeControls(r.reason));
        else
            fmt::print(stderr, "{}: {}\n", where, common::escapeControls(r.reason));
        return 1;
    }
    if (directory) {
        const auto files = auditLogFiles(log);
        fmt::print("{}: ok: {} entries in {} file{} ({} .. {}), one chain, every checkpoint signed by camera key "
                   "'{}' ({})\n",
                   log.string(), r.entries, files.size(), files.size() == 1 ? "" : "s",
                   files.front().filename().string(), files.back().filename().string(), camera.name, camera.keyId());
    } else {
        fmt::print("{}: ok: {} entries, chain intact, every checkpoint signed by camera key '{}' ({})\n",
                   log.string(), r.entries, camera.name, camera.keyId());
        // A later year's file continues a chain this file alone cannot show.
        if (const auto entries = readAuditLog(log); !entries.empty() && entries.front().seq > 1)
            fmt::print("  starts at entry {}: whether it continues the file before is checked only with the log's "
                       "directory\n",
                       entries.front().seq);
    }
    if (expected) fmt::print("  contains the expected checkpoint {} (from {})\n", expected->toString(), expectedFrom);
    else
        fmt::print("  no expected checkpoint given: a cut back to an earlier checkpoint would go unnoticed\n");
    if (r.lastCheckpoint)
        fmt::print("  last checkpoint: {}  (keep it; pass it as --expect next time)\n", r.lastCheckpoint->toString());
    if (!r.endsWithCheckpoint && r.entries > 0) {
        const std::uint64_t unsigned_ = r.entries - (r.lastCheckpoint ? r.lastCheckpoint->seq : 0);
        fmt::print("  note: the last {} entr{} come after the last checkpoint; they are chained but not yet signed\n",
                   unsigned_, unsigned_ == 1 ? "y" : "ies");
    }
    return 0;
}

// The line as JSON that a terminal cannot act on: every character escapeControls would
// escape (DEL, C1 controls, bidi and line-breaking formatting characters) is written as a
// JSON \uXXXX escape instead, and a raw tab or CR between tokens (JSON whitespace, which the
// camera never writes) as a space. A log line is valid UTF-8 with no raw control inside a
// string (the reader refused it otherwise), so the result is valid JSON with the same value;
// it differs from the file's bytes only where such a character stood.
std::string terminalSafeJson(std::string_view line) {
    std::string out;
    out.reserve(line.size());
    std::size_t i = 0;
    while (i < line.size()) {
        const auto lead = static_cast<unsigned char>(line[i]);
        const std::size_t len = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
        const std::string_view ch = line.substr(i, len);
        i += ch.size();
        if (ch == "\\" || common::escapeControls(ch) == ch) {
            out += ch;
            continue;
        }
        if (ch == "\t" || ch == "\r") {
            out += ' ';
            continue;
        }
        // Decode the one code point (well-formed here) and write it as \uXXXX (all such
        // characters lie in the Basic Multilingual Plane).
        std::uint32_t cp = len == 1 ? lead : lead & (0xFFu >> (len + 1));
        for (std::size_t k = 1; k < ch.size(); ++k) cp = cp << 6 | (static_cast<unsigned char>(ch[k]) & 0x3Fu);
        out += fmt::format("\\u{:04x}", cp);
    }
    return out;
}

std::optional<common::UtcMicros> timeFilter(const Args& args, const std::string& name) {
    const auto text = args.option(name);
    if (!text) return std::nullopt;
    const auto t = common::parseUtc(*text);
    if (!t) throw UsageError(fmt::format("{} '{}' is not a time with a zone, e.g. 2026-11-24T10:00:00Z", name, *text));
    return t;
}

int runShow(const Args& args) {
    args.expectPositionals(1, "LOG_DIR|LOG_FILE");
    const auto from = timeFilter(args, "--from");
    const auto to = timeFilter(args, "--to");
    const auto type = args.option("--type");
    const bool raw = args.flag("--json");
    std::size_t shown = 0;
    for (const AuditEntry& e : readAuditLog(args.positionals()[0])) {
        if ((from && e.time < *from) || (to && e.time >= *to) || (type && e.type != *type)) continue;
        ++shown;
        // The fields come from the network (request texts, member hashes, peers): nothing is
        // printed that could move the cursor, erase a line or reorder text on the screen.
        if (raw) {
            fmt::print("{}\n", terminalSafeJson(e.line));
            continue;
        }
        std::string fields;
        const auto j = nlohmann::ordered_json::parse(e.fieldsJson);
        for (const auto& [key, value] : j.items()) {
            if (key == "signature") continue;  // 88 characters of noise; `--json` keeps it
            fields += fmt::format(" {}={}", key, value.is_string() ? value.get<std::string>() : value.dump());
        }
        fmt::print("{}\n", common::escapeControls(fmt::format("{:>6}  {:<27} {:<23} {:<19}{}", e.seq,
                                                                common::formatUtc(e.time), common::formatJst(e.time),
                                                                e.type, fields)));
    }
    if (shown == 0) fmt::print(stderr, "no entries match\n");
    return 0;
}

const Registrar verifyCommand(Command{
    "audit", "verify", "check a camera's audit log for any edit, insertion, deletion, reordering or cut",
    "usage: mimamori audit verify LOG_DIR|LOG_FILE --camera-key CAMERA_PUB [--expect SEQ:HASH | --state FILE]\n"
    "\n"
    "Checks the hash chain of a camera's audit log (every entry carries the BLAKE2b-256 of\n"
    "the line before) and the camera's signature on every checkpoint (format:\n"
    "docs/audit-log.md). LOG_DIR is the log's directory (state/audit on the camera): its\n"
    "audit-FY*.log files, one per fiscal year, are checked as one chain from entry 1.\n"
    "A single LOG_FILE is checked from its first line on. Any edit,\n"
    "insertion, deletion or reordering before the last checkpoint is found. A log cut back\n"
    "to an earlier checkpoint is found only against a checkpoint recorded before:\n"
    "\n"
    "  --expect SEQ:HASH  a checkpoint printed by an earlier `audit verify` (keep it)\n"
    "  --state FILE       the camera's record of its last checkpoint; by default\n"
    "                     LOG_DIR/audit.checkpoint (LOG_FILE.checkpoint) is used when it exists\n"
    "\n"
    "On success prints the number of entries and the last checkpoint. On failure prints the\n"
    "first bad entry as FILE:LINE: reason.\n"
    "\n"
    "exit status: 0 intact, 1 tampered, truncated or unreadable, 2 bad usage\n",
    {"--camera-key", "--expect", "--state"}, {}, runVerify});

const Registrar showCommand(Command{
    "audit", "show", "print audit log entries, optionally filtered by time and type",
    "usage: mimamori audit show LOG_DIR|LOG_FILE [--from TIME] [--to TIME] [--type TYPE] [--json]\n"
    "\n"
    "Prints one line per entry of the log's directory (all its fiscal-year files, in order)\n"
    "or of one file: seq, UTC time, type and fields. Does not verify the log\n"
    "(use `mimamori audit verify`).\n"
    "\n"
    "  --from TIME  entries at or after TIME (with a zone, e.g. 2026-11-24T10:00:00+09:00)\n"
    "  --to TIME    entries before TIME\n"
    "  --type TYPE  only this type, e.g. request_refused, request_granted, extract_delivered\n"
    "  --json       print the log lines as JSON instead: the exact lines, except that\n"
    "               DEL, C1 controls and bidi formatting characters are written as\n"
    "               \\uXXXX escapes (the same JSON value)\n"
    "\n"
    "exit status: 0 shown (also when nothing matched), 1 unreadable or not an audit log,\n"
    "2 bad usage\n",
    {"--from", "--to", "--type"}, {"--json"}, runShow});

}  // namespace
}  // namespace mimamori::cli
