// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// `mimamori report`: the yearly operating report (ordinance Art. 9) from the fleet archive.
#include "cli.hpp"

#include "mimamori/city/archive.hpp"
#include "mimamori/city/report.hpp"
#include "mimamori/common/file.hpp"

#include <fmt/format.h>

#include <charconv>
#include <filesystem>

namespace mimamori::cli {
namespace {

int runReport(const Args& args) {
    args.expectPositionals(0, "");
    const std::string yearText = args.required("--fiscal-year");
    int year = 0;
    const auto [ptr, ec] = std::from_chars(yearText.data(), yearText.data() + yearText.size(), year);
    if (ec != std::errc{} || ptr != yearText.data() + yearText.size() || year < 1927 || year > 9998)
        throw UsageError(fmt::format("--fiscal-year: '{}' is not a year from 1927 to 9998", yearText));
    const std::string langText = args.option("--lang").value_or("ja");
    if (langText != "ja" && langText != "en") throw UsageError("--lang: ja or en");
    const city::Lang lang = langText == "ja" ? city::Lang::Ja : city::Lang::En;
    const std::filesystem::path out = args.required("--out");

    const city::Report report = city::computeReport(args.required("--archive"), year);
    std::filesystem::create_directories(out);
    constexpr auto kReadable = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                               std::filesystem::perms::group_read | std::filesystem::perms::others_read;
    common::writeFileAtomic(out / "report.json", city::renderJson(report, lang), kReadable);
    common::writeFileAtomic(out / "report.csv", city::renderCsv(report, lang), kReadable);
    common::writeFileAtomic(out / "report.html", city::renderHtml(report, lang), kReadable);

    std::size_t inOperation = 0;
    for (const auto& c : report.cameras) inOperation += c.inOperation ? 1 : 0;
    fmt::print("{}: {} ({} cameras archived, {} in operation) -> {}/report.html, report.csv, report.json\n",
               yearText, city::eraLabel(year, lang), report.cameras.size(), inOperation, out.string());
    int marked = 0;
    for (const auto& c : report.cameras) {
        if (!c.broken) continue;
        ++marked;
        fmt::print(stderr, "marked: {}: {}\n", c.id, c.chainStatus);
    }
    // The report is written either way; a marked camera is a finding the city must act on.
    return marked > 0 ? 1 : 0;
}

const Registrar reportCommand(Command{
    "", "report", "write the yearly operating report (ordinance Art. 9) from the fleet archive",
    "usage: mimamori report --fiscal-year YEAR --archive DIR --out DIR [--lang ja|en]\n"
    "\n"
    "Reads the archive `mimamori fleet collect` keeps (docs/fleet.md) and writes\n"
    "OUT/report.html (self-contained, printable on A4), OUT/report.csv and OUT/report.json,\n"
    "all with the same figures (docs/report.md): cameras in operation and their recording\n"
    "availability, provisions by legal ground and requesting body, extracts delivered,\n"
    "refusals by reason (disclosure, Art. 8, on its own line), mask changes per camera,\n"
    "retention compliance, a monthly chart, and each camera's chain status and last signed\n"
    "checkpoint. Fiscal years run April to March in JST: 2025 is 令和7年度,\n"
    "2025-04-01 to 2026-03-31.\n"
    "\n"
    "  --fiscal-year YEAR  e.g. 2025\n"
    "  --archive DIR       the fleet archive\n"
    "  --out DIR           where the three files go (created; files replaced atomically)\n"
    "  --lang ja|en        Japanese (default) or English\n"
    "\n"
    "A camera whose archived log is broken, or which a collection found cut back or\n"
    "rewritten, is named on stderr and marked in the report.\n"
    "\n"
    "exit status: 0 written, 1 written with marked cameras, or the archive is unreadable,\n"
    "2 bad usage\n",
    {"--fiscal-year", "--archive", "--out", "--lang"}, {}, runReport});

}  // namespace
}  // namespace mimamori::cli
