// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// report.json, report.csv and report.html from one Report: the same figures in three forms.
#include "mimamori/city/report.hpp"

#include "mimamori/common/text.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace mimamori::city {
namespace {

using nlohmann::ordered_json;

constexpr std::string_view kDisclosure = "disclosure_request";
constexpr std::array<const char*, 12> kMonthsEn = {"Apr", "May", "Jun", "Jul", "Aug", "Sep",
                                                   "Oct", "Nov", "Dec", "Jan", "Feb", "Mar"};

// Fleet-wide sums; marked cameras are included and named beside them.
struct Totals {
    std::uint64_t inOperation = 0;
    std::array<std::uint64_t, 3> provisions{};
    std::uint64_t extracts = 0;
    std::int64_t extractSeconds = 0;
    std::uint64_t extractBytes = 0;
    std::map<std::string, std::uint64_t> refusals;  // without disclosure_request
    std::uint64_t disclosureRefusals = 0;
    std::uint64_t maskChanges = 0;
    std::uint64_t maskReviews = 0;
    std::int64_t oldestHeldSeconds = 0;
    std::string oldestHeldCamera;
    std::int64_t retentionDays = 0;   // the largest limit any camera runs with
    std::uint64_t daysShredded = 0;
    std::vector<std::string> marked;
};

Totals totalsOf(const Report& r) {
    Totals t;
    for (const auto& c : r.cameras) {
        if (c.inOperation) ++t.inOperation;
        for (std::size_t g = 0; g < 3; ++g) t.provisions[g] += c.provisions[g];
        t.extracts += c.extracts;
        t.extractSeconds += c.extractSeconds;
        t.extractBytes += c.extractBytes;
        for (const auto& [reason, n] : c.refusals) {
            if (reason == kDisclosure)
                t.disclosureRefusals += n;
            else
                t.refusals[reason] += n;
        }
        t.maskChanges += c.maskChanges;
        t.maskReviews += c.maskReviews;
        if (c.oldestHeldSeconds > t.oldestHeldSeconds) {
            t.oldestHeldSeconds = c.oldestHeldSeconds;
            t.oldestHeldCamera = c.id;
        }
        t.retentionDays = std::max(t.retentionDays, c.retentionDays);
        t.daysShredded += c.daysShredded;
        if (c.broken) t.marked.push_back(c.id);
    }
    return t;
}

std::uint64_t sum(const std::array<std::uint64_t, 3>& a) { return a[0] + a[1] + a[2]; }

std::string monthKey(const Report& r, std::size_t m) {
    const int year = m < 9 ? r.fiscalYear : r.fiscalYear + 1;
    return fmt::format("{:04}-{:02}", year, (m + 3) % 12 + 1);
}

std::string share(double s) { return fmt::format("{:.4f}", s); }

// Text from outside (body names, reasons, problems): controls escaped, then HTML-escaped.
std::string html(std::string_view text) {
    std::string out;
    for (const char c : common::escapeControls(text)) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
        }
    }
    return out;
}

// A CSV field: controls escaped, quoted, and a leading = + - @ made inert for spreadsheets.
std::string csv(std::string_view text) {
    std::string value = common::escapeControls(text);
    if (!value.empty() && (value[0] == '=' || value[0] == '+' || value[0] == '-' || value[0] == '@'))
        value = "'" + value;
    std::string out = "\"";
    for (const char c : value) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

struct Labels {
    const char* title;
    const char* range;
    const char* marked;
    const char* operation;
    const char* inOperation;
    const char* provisions;
    const char* ground;
    const char* article;
    const char* count;
    const char* byBody;
    const char* body;
    const char* extracts;
    const char* extractCount;
    const char* extractDuration;
    const char* extractBytes;
    const char* refusals;
    const char* reason;
    const char* disclosure;
    const char* masks;
    const char* reviews;
    const char* retention;
    const char* oldestHeld;
    const char* limit;
    const char* shredded;
    const char* chart;
    const char* verification;
    const char* camera;
    const char* availability;
    const char* gaps;
    const char* chainStatus;
    const char* lastCheckpoint;
    const char* total;
    const char* none;
    const char* note;
    const std::array<const char*, 3> grounds;
};

const Labels kJa{
    "見守りカメラ運用状況報告",
    "対象期間",
    "記録に問題のあるカメラ（数値に含むが、確認が必要）",
    "1. カメラの運用",
    "運用中のカメラ台数",
    "2. 画像の提供（条例第7条）",
    "根拠",
    "条項",
    "件数",
    "請求機関別",
    "請求機関",
    "3. 提供した画像",
    "提供件数",
    "合計時間（秒）",
    "合計バイト数",
    "4. 拒否（理由別）",
    "理由",
    "開示請求の拒否（条例第8条）",
    "5. マスク変更（条例第4条第4項）",
    "点検用静止画",
    "6. 保存期間の遵守",
    "保持していた最も古い画像（日）",
    "保存期間の上限（日）",
    "消去した日数",
    "7. 月別の提供件数（根拠別）",
    "8. 検証（各カメラの監査ログ）",
    "カメラ",
    "録画率",
    "欠落",
    "チェーンの状態",
    "最後の署名済みチェックポイント SEQ:HASH",
    "合計",
    "なし",
    "注記：BLE タグの通過はカメラの監査ログに配信の記録がないため、事業者別には数えていない。"
    "数値はカメラから収集し検証した監査ログ（docs/fleet.md）による。",
    {"法令に基づく（第7条第1項第1号）", "緊急（第7条第1項第2号）", "捜査機関の請求（第7条第1項第3号）"},
};

const Labels kEn{
    "Watch camera operating report",
    "Period",
    "Cameras whose log has a problem (counted, to be checked)",
    "1. Cameras in operation",
    "Cameras in operation",
    "2. Provisions of footage (Art. 7)",
    "Ground",
    "Article",
    "Count",
    "By requesting body",
    "Requesting body",
    "3. Extracts delivered",
    "Extracts",
    "Total duration (s)",
    "Total bytes",
    "4. Refusals by reason",
    "Reason",
    "Disclosure requests refused (Art. 8)",
    "5. Mask changes (Art. 4(4))",
    "review stills",
    "6. Retention compliance",
    "Oldest footage held (days)",
    "Retention limit (days)",
    "Days shredded",
    "7. Provisions per month by ground",
    "8. Verification (each camera's audit log)",
    "Camera",
    "Recorded",
    "Gaps",
    "Chain status",
    "Last signed checkpoint SEQ:HASH",
    "Total",
    "none",
    "Note: BLE tag passages are not counted per company: the camera's audit log does not record "
    "deliveries to companies. Figures come from the audit logs collected from the cameras and "
    "verified (docs/fleet.md).",
    {"Required by law (Art. 7(1)(1))", "Emergency (Art. 7(1)(2))", "Criminal investigation (Art. 7(1)(3))"},
};

const Labels& labels(Lang lang) { return lang == Lang::Ja ? kJa : kEn; }

std::string days(std::int64_t seconds) { return fmt::format("{:.1f}", static_cast<double>(seconds) / 86400.0); }

}  // namespace

std::string renderJson(const Report& r, Lang lang) {
    const Totals t = totalsOf(r);
    ordered_json j;
    j["format"] = "mimamori-report-1";
    j["fiscal_year"] = r.fiscalYear;
    j["label"] = eraLabel(r.fiscalYear, lang);
    j["from"] = common::formatUtc(r.range.begin);
    j["to"] = common::formatUtc(r.range.end);
    j["cameras_archived"] = r.cameras.size();
    j["cameras_in_operation"] = t.inOperation;
    j["cameras_marked"] = t.marked;
    ordered_json byGround = ordered_json::object();
    for (std::size_t g = 0; g < 3; ++g) byGround[kGrounds[g]] = t.provisions[g];
    ordered_json byMonth = ordered_json::array();
    for (std::size_t m = 0; m < 12; ++m) {
        ordered_json month;
        month["month"] = monthKey(r, m);
        for (std::size_t g = 0; g < 3; ++g) month[kGrounds[g]] = r.provisionsByMonth[m][g];
        byMonth.push_back(month);
    }
    j["provisions"] = {{"total", sum(t.provisions)}, {"by_ground", byGround}, {"by_body", r.provisionsByBody},
                       {"by_month", byMonth}};
    j["extracts"] = {{"count", t.extracts}, {"seconds", t.extractSeconds}, {"bytes", t.extractBytes}};
    j["refusals"] = {{"disclosure", t.disclosureRefusals}, {"by_reason", t.refusals}};
    j["mask_changes"] = t.maskChanges;
    j["mask_reviews"] = t.maskReviews;
    j["retention"] = {{"oldest_held_seconds", t.oldestHeldSeconds},
                      {"oldest_held_camera", t.oldestHeldCamera},
                      {"limit_days", t.retentionDays},
                      {"days_shredded", t.daysShredded}};
    ordered_json cameras = ordered_json::array();
    for (const auto& c : r.cameras) {
        ordered_json cam;
        cam["id"] = c.id;
        cam["marked"] = c.broken;
        cam["chain_status"] = c.chainStatus;
        cam["last_checkpoint"] = c.lastCheckpoint;
        cam["entries"] = c.entries;
        cam["in_operation"] = c.inOperation;
        if (c.inOperation) {
            cam["operating_from"] = common::formatUtc(c.operatingFrom);
            cam["operating_to"] = common::formatUtc(c.operatingTo);
        }
        cam["recorded_share"] = c.recordedShare;
        cam["gap_seconds"] = c.gapSeconds;
        cam["gaps_total"] = c.gapsTotal;
        ordered_json gaps = ordered_json::array();
        for (const auto& g : c.gaps)
            gaps.push_back({{"start", common::formatUtc(g.start)},
                            {"end", common::formatUtc(g.end)},
                            {"end_known", g.endKnown},
                            {"reason", g.reason}});
        cam["gaps"] = gaps;
        ordered_json provisions = ordered_json::object();
        for (std::size_t g = 0; g < 3; ++g) provisions[kGrounds[g]] = c.provisions[g];
        cam["provisions"] = provisions;
        cam["extracts"] = {{"count", c.extracts}, {"seconds", c.extractSeconds}, {"bytes", c.extractBytes}};
        cam["refusals"] = c.refusals;
        cam["mask_changes"] = c.maskChanges;
        cam["mask_reviews"] = c.maskReviews;
        cam["oldest_held_seconds"] = c.oldestHeldSeconds;
        cam["retention_days"] = c.retentionDays;
        cam["days_shredded"] = c.daysShredded;
        cameras.push_back(cam);
    }
    j["cameras"] = cameras;
    j["note"] = labels(lang).note;
    // Text from cameras may hold invalid UTF-8 (a police request's body name): replaced, never thrown.
    return j.dump(1, ' ', false, ordered_json::error_handler_t::replace) + "\n";
}

std::string renderCsv(const Report& r, Lang lang) {
    const Totals t = totalsOf(r);
    std::string out = "section,camera,item,value\n";
    auto row = [&out](std::string_view section, std::string_view camera, std::string_view item, std::string_view value) {
        out += fmt::format("{},{},{},{}\n", section, csv(camera), csv(item), csv(value));
    };
    row("summary", "", "fiscal_year", std::to_string(r.fiscalYear));
    row("summary", "", "label", eraLabel(r.fiscalYear, lang));
    row("summary", "", "from", common::formatUtc(r.range.begin));
    row("summary", "", "to", common::formatUtc(r.range.end));
    row("summary", "", "cameras_archived", std::to_string(r.cameras.size()));
    row("summary", "", "cameras_in_operation", std::to_string(t.inOperation));
    for (const auto& id : t.marked) row("summary", id, "marked", "1");
    row("provisions", "", "total", std::to_string(sum(t.provisions)));
    for (std::size_t g = 0; g < 3; ++g) row("provisions", "", kGrounds[g], std::to_string(t.provisions[g]));
    for (const auto& [body, n] : r.provisionsByBody) row("provisions_by_body", "", body, std::to_string(n));
    for (std::size_t m = 0; m < 12; ++m)
        for (std::size_t g = 0; g < 3; ++g)
            row("provisions_by_month", "", monthKey(r, m) + " " + kGrounds[g], std::to_string(r.provisionsByMonth[m][g]));
    row("extracts", "", "count", std::to_string(t.extracts));
    row("extracts", "", "seconds", std::to_string(t.extractSeconds));
    row("extracts", "", "bytes", std::to_string(t.extractBytes));
    row("refusals", "", "disclosure", std::to_string(t.disclosureRefusals));
    for (const auto& [reason, n] : t.refusals) row("refusals", "", reason, std::to_string(n));
    row("mask_changes", "", "total", std::to_string(t.maskChanges));
    row("mask_reviews", "", "total", std::to_string(t.maskReviews));
    row("retention", "", "oldest_held_seconds", std::to_string(t.oldestHeldSeconds));
    row("retention", "", "oldest_held_camera", t.oldestHeldCamera);
    row("retention", "", "limit_days", std::to_string(t.retentionDays));
    row("retention", "", "days_shredded", std::to_string(t.daysShredded));
    for (const auto& c : r.cameras) {
        row("camera", c.id, "marked", c.broken ? "1" : "0");
        row("camera", c.id, "chain_status", c.chainStatus);
        row("camera", c.id, "last_checkpoint", c.lastCheckpoint);
        row("camera", c.id, "in_operation", c.inOperation ? "1" : "0");
        row("camera", c.id, "recorded_share", share(c.recordedShare));
        row("camera", c.id, "gap_seconds", std::to_string(c.gapSeconds));
        row("camera", c.id, "gaps_total", std::to_string(c.gapsTotal));
        for (std::size_t g = 0; g < 3; ++g) row("camera", c.id, kGrounds[g], std::to_string(c.provisions[g]));
        row("camera", c.id, "extracts", std::to_string(c.extracts));
        for (const auto& [reason, n] : c.refusals) row("camera", c.id, "refused " + reason, std::to_string(n));
        row("camera", c.id, "mask_changes", std::to_string(c.maskChanges));
        row("camera", c.id, "mask_reviews", std::to_string(c.maskReviews));
        row("camera", c.id, "oldest_held_seconds", std::to_string(c.oldestHeldSeconds));
        row("camera", c.id, "days_shredded", std::to_string(c.daysShredded));
    }
    return out;
}

std::string renderHtml(const Report& r, Lang lang) {
    const Labels& L = labels(lang);
    const Totals t = totalsOf(r);
    std::string o;
    o += fmt::format(
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{} {}</title>\n"
        "<style>\n"
        "@page {{ size: A4; margin: 15mm; }}\n"
        "body {{ font-family: 'Noto Sans CJK JP', 'Noto Sans JP', sans-serif; font-size: 10pt; color: #000; "
        "max-width: 180mm; margin: 0 auto; }}\n"
        "h1 {{ font-size: 16pt; }} h2 {{ font-size: 12pt; margin-top: 1.2em; break-after: avoid; }}\n"
        "table {{ border-collapse: collapse; margin: 0.4em 0; }} tr {{ break-inside: avoid; }}\n"
        "th, td {{ border: 1px solid #555; padding: 1px 5px; text-align: left; }}\n"
        "td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}\n"
        ".marked {{ background: #fdd; }} .warn {{ border: 2px solid #b00; padding: 4px; }}\n"
        "code {{ font-size: 7pt; word-break: break-all; }}\n"
        "</style>\n</head>\n<body>\n",
        lang == Lang::Ja ? "ja" : "en", html(eraLabel(r.fiscalYear, lang)), L.title);
    o += fmt::format("<h1>{} {}</h1>\n<p>{}: {} – {} (JST)</p>\n", html(eraLabel(r.fiscalYear, lang)), L.title,
                     L.range, jstDay(r.range.begin), jstDay(r.range.end - 1));
    if (!t.marked.empty()) {
        o += fmt::format("<div class=\"warn\" id=\"marked\"><strong>{}</strong><ul>\n", L.marked);
        for (const auto& c : r.cameras)
            if (c.broken) o += fmt::format("<li>{}: {}</li>\n", html(c.id), html(c.chainStatus));
        o += "</ul></div>\n";
    }
    auto mark = [](const CameraFigures& c) { return c.broken ? std::string(" class=\"marked\"") : std::string(); };

    o += fmt::format("<h2>{}</h2>\n<table id=\"operation\"><tr><th>{}</th><td class=\"n\">{}</td></tr></table>\n",
                     L.operation, L.inOperation, t.inOperation);
    o += fmt::format("<table id=\"availability\"><tr><th>{}</th><th>{}</th><th>{}</th></tr>\n", L.camera,
                     L.availability, L.gaps);
    for (const auto& c : r.cameras) {
        if (!c.inOperation) continue;
        std::string gaps;
        for (const auto& g : c.gaps)
            gaps += fmt::format("{} – {}{}: {}<br>", common::formatJst(g.start), common::formatJst(g.end),
                                g.endKnown ? "" : " (?)", html(g.reason));
        if (c.gapsTotal > c.gaps.size()) gaps += fmt::format("… ({})", c.gapsTotal);
        o += fmt::format("<tr{}><td>{}</td><td class=\"n\">{:.2f}%</td><td>{}</td></tr>\n", mark(c), html(c.id),
                         c.recordedShare * 100.0, gaps.empty() ? L.none : gaps);
    }
    o += "</table>\n";

    o += fmt::format("<h2>{}</h2>\n<table id=\"provisions\"><tr><th>{}</th><th>{}</th></tr>\n", L.provisions, L.ground,
                     L.count);
    for (std::size_t g = 0; g < 3; ++g)
        o += fmt::format("<tr><td>{}</td><td class=\"n\">{}</td></tr>\n", L.grounds[g], t.provisions[g]);
    o += fmt::format("<tr><th>{}</th><td class=\"n\">{}</td></tr></table>\n", L.total, sum(t.provisions));
    o += fmt::format("<table id=\"bodies\"><tr><th>{}</th><th>{}</th></tr>\n", L.body, L.count);
    for (const auto& [body, n] : r.provisionsByBody)
        o += fmt::format("<tr><td>{}</td><td class=\"n\">{}</td></tr>\n", html(body), n);
    o += "</table>\n";

    o += fmt::format("<h2>{}</h2>\n<table id=\"extracts\"><tr><th>{}</th><td class=\"n\">{}</td></tr>"
                     "<tr><th>{}</th><td class=\"n\">{}</td></tr><tr><th>{}</th><td class=\"n\">{}</td></tr></table>\n",
                     L.extracts, L.extractCount, t.extracts, L.extractDuration, t.extractSeconds, L.extractBytes,
                     t.extractBytes);

    o += fmt::format("<h2>{}</h2>\n<table id=\"refusals\"><tr><th>{}</th><th>{}</th></tr>\n"
                     "<tr><td><strong>{}</strong></td><td class=\"n\">{}</td></tr>\n",
                     L.refusals, L.reason, L.count, L.disclosure, t.disclosureRefusals);
    for (const auto& [reason, n] : t.refusals)
        o += fmt::format("<tr><td>{}</td><td class=\"n\">{}</td></tr>\n", html(reason), n);
    o += "</table>\n";

    o += fmt::format("<h2>{}</h2>\n<table id=\"masks\"><tr><th>{}</th><th>{}</th><th>{}</th></tr>\n", L.masks,
                     L.camera, L.count, L.reviews);
    for (const auto& c : r.cameras)
        if (c.maskChanges > 0 || c.maskReviews > 0)
            o += fmt::format("<tr{}><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n", mark(c),
                             html(c.id), c.maskChanges, c.maskReviews);
    o += fmt::format("<tr><th>{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td></tr></table>\n", L.total,
                     t.maskChanges, t.maskReviews);

    o += fmt::format("<h2>{}</h2>\n<table id=\"retention\"><tr><th>{}</th><td class=\"n\">{}{}</td></tr>"
                     "<tr><th>{}</th><td class=\"n\">{}</td></tr><tr><th>{}</th><td class=\"n\">{}</td></tr></table>\n",
                     L.retention, L.oldestHeld, days(t.oldestHeldSeconds),
                     t.oldestHeldCamera.empty() ? std::string() : " (" + html(t.oldestHeldCamera) + ")", L.limit,
                     t.retentionDays, L.shredded, t.daysShredded);

    // The chart: 12 groups of 3 bars, scaled to the largest month.
    std::uint64_t top = 1;
    for (const auto& month : r.provisionsByMonth) top = std::max({top, month[0], month[1], month[2]});
    constexpr int kW = 640, kH = 220, kBase = 190, kBarH = 170, kGroup = 50, kBar = 13, kLeft = 30;
    constexpr std::array<const char*, 3> kColours = {"#1b4f9c", "#c0392b", "#2e8b57"};
    o += fmt::format("<h2>{}</h2>\n<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
                     "viewBox=\"0 0 {} {}\" role=\"img\">\n<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#000\"/>\n",
                     L.chart, kW, kH + 30, kW, kH + 30, kLeft, kBase, kW, kBase);
    o += fmt::format("<text x=\"2\" y=\"{}\" font-size=\"10\">{}</text>\n", kBase - kBarH + 4, top);
    for (std::size_t m = 0; m < 12; ++m) {
        const int x0 = kLeft + 4 + static_cast<int>(m) * kGroup;
        for (std::size_t g = 0; g < 3; ++g) {
            const std::uint64_t n = r.provisionsByMonth[m][g];
            const int h = static_cast<int>(static_cast<double>(n) / static_cast<double>(top) * kBarH + 0.5);
            o += fmt::format("<rect class=\"bar\" data-month=\"{}\" data-ground=\"{}\" data-count=\"{}\" x=\"{}\" "
                             "y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>\n",
                             monthKey(r, m), kGrounds[g], n, x0 + static_cast<int>(g) * kBar, kBase - h, kBar - 1, h,
                             kColours[g], n);
        }
        o += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\">{}</text>\n", x0 + 6, kBase + 14,
                         lang == Lang::Ja ? fmt::format("{}月", (m + 3) % 12 + 1) : std::string(kMonthsEn[m]));
    }
    for (std::size_t g = 0; g < 3; ++g)
        o += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" "
                         "font-size=\"10\">{}</text>\n",
                         kLeft + static_cast<int>(g) * 200, kBase + 24, kColours[g], kLeft + 14 + static_cast<int>(g) * 200,
                         kBase + 33, L.grounds[g]);
    o += "</svg>\n";

    o += fmt::format("<h2>{}</h2>\n<table id=\"verification\"><tr><th>{}</th><th>{}</th><th>{}</th></tr>\n",
                     L.verification, L.camera, L.chainStatus, L.lastCheckpoint);
    for (const auto& c : r.cameras)
        o += fmt::format("<tr{}><td>{}</td><td>{}</td><td><code>{}</code></td></tr>\n", mark(c), html(c.id),
                         html(c.chainStatus), c.lastCheckpoint.empty() ? L.none : c.lastCheckpoint);
    o += fmt::format("</table>\n<p>{}</p>\n</body>\n</html>\n", L.note);
    return o;
}

}  // namespace mimamori::city
