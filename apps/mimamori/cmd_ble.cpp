// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// `mimamori ble export|status`: hand a company's queued passages to the city's collector.
#include "cli.hpp"

#include "mimamori/ble/service.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/daemon/config.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace mimamori::cli {
namespace {

namespace fs = std::filesystem;

const ble::CompanyConfig& findCompany(const ble::ServiceConfig& config, const std::string& name,
                                      const fs::path& configPath) {
    for (const auto& c : config.companies)
        if (c.rules.name == name) return c;
    throw UsageError(fmt::format("no company '{}' in the \"ble\" object of {}", name, configPath.string()));
}

std::string errnoText() { return std::strerror(errno); }

// Writes the lines and makes them durable; throws naming `what` on any failure.
void writeDurably(int fd, const std::string& text, const std::string& what, bool mustSync) {
    common::writeAll(fd, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), what);
    if (::fsync(fd) != 0 && (mustSync || (errno != EINVAL && errno != EROFS)))
        throw common::FileError(fmt::format("{}: fsync: {}", what, errnoText()));
}

int runExport(const Args& args) {
    args.expectPositionals(0, "");
    const fs::path configPath = args.required("--config");
    const std::string company = args.required("--company");
    const auto daemon = daemon::loadDaemonConfig(configPath);
    const auto& config = daemon.ble;
    findCompany(config, company, configPath);
    const auto dir = ble::companyQueueDir(daemon.recorder.stateDir, company);
    if (!fs::exists(dir)) {
        // Nothing was ever queued; do not create the daemon's directories as whoever runs this.
        fmt::print(stderr, "exported 0 passages of {} (no queue at {})\n", company, dir.string());
        return 0;
    }
    ble::PassageQueue queue(dir, company, config.queue);
    const auto out = args.option("--out");
    common::UniqueFd file;
    if (out) {
        // Never overwrite: an earlier export the collector has not picked up would be lost.
        file.reset(::open(out->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
        if (!file.valid()) throw common::FileError(fmt::format("{}: {}", *out, errnoText()));
    }
    std::size_t count = 0;
    try {
        count = queue.drain(
            [&](const std::vector<ble::Passage>& passages) {
                std::string text;
                for (const auto& p : passages) text += ble::passageToJson(p) + "\n";
                if (out) {
                    writeDurably(file.get(), text, *out, true);
                    common::fsyncDirectory(fs::absolute(*out).parent_path());
                } else {
                    // A pipe or terminal cannot be fsync'd: the bytes are handed over once written.
                    writeDurably(STDOUT_FILENO, text, "standard output", false);
                }
            },
            common::SystemClock().nowUtc());
    } catch (...) {
        if (out) {
            file.reset();
            ::unlink(out->c_str());  // nothing was removed from the queue; leave no partial file
        }
        throw;
    }
    if (out && count == 0) {
        file.reset();
        ::unlink(out->c_str());
    }
    fmt::print(stderr, "exported {} passages of {}{}\n", count, company, out ? " to " + *out : "");
    return 0;
}

int runStatus(const Args& args) {
    args.expectPositionals(0, "");
    const fs::path configPath = args.required("--config");
    const auto daemon = daemon::loadDaemonConfig(configPath);
    const auto& config = daemon.ble;
    if (!config.enabled) fmt::print("BLE detector disabled in {}\n", configPath.string());
    const auto now = common::SystemClock().nowUtc();
    fmt::print("{:<24} {:>8} {:>12} {:>8}  {}\n", "company", "queued", "dropped_full", "expired", "delivery");
    for (const auto& c : config.companies) {
        const auto dir = ble::companyQueueDir(daemon.recorder.stateDir, c.rules.name);
        std::size_t size = 0;
        ble::QueueCounters counters;
        if (fs::exists(dir)) {  // a status look never creates the daemon's directories
            ble::PassageQueue queue(dir, c.rules.name, config.queue);
            size = queue.size(now);
            counters = queue.counters();
        }
        fmt::print("{:<24} {:>8} {:>12} {:>8}  {}\n", c.rules.name, size, counters.droppedFull, counters.expired,
                   c.endpoint.empty() ? std::string("export only") : c.endpoint);
    }
    return 0;
}

const Registrar exportCommand({
    "ble",
    "export",
    "hand a company's queued tag passages to the city's collector",
    "usage: mimamori ble export --config DAEMON_CONFIG --company NAME [--out FILE]\n"
    "\n"
    "Writes every passage queued for NAME as JSON lines (docs/ble.md) to FILE (created, never\n"
    "overwritten) or standard output, makes it durable (fsync of the file and its directory),\n"
    "and only then removes the passages from the camera's queue. The daemon may keep running;\n"
    "run this as the daemon's user, so the queue files stay writable for it.\n"
    "\nexit status: 0 exported (possibly nothing), 1 failed (the queue is left untouched), 2 bad usage\n",
    {"--config", "--company", "--out"},
    {},
    runExport,
});

const Registrar statusCommand({
    "ble",
    "status",
    "show each company's passage queue: size, dropped, expired",
    "usage: mimamori ble status --config DAEMON_CONFIG\n"
    "\n"
    "Lists, per company in the \"ble\" object, how many passages wait for delivery, how many\n"
    "were dropped because the queue was full, and how many expired undelivered.\n"
    "\nexit status: 0 shown, 1 unreadable config or queue, 2 bad usage\n",
    {"--config"},
    {},
    runStatus,
});

}  // namespace
}  // namespace mimamori::cli
