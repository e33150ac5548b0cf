// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// `mimamori request create|approve|show`: police write and sign a request, the city approves it.
#include "cli.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/common/text.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/policy/request.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>

namespace mimamori::cli {
namespace {

using namespace mimamori::policy;
using common::UtcMicros;

constexpr double kDefaultValidHours = 72;
constexpr double kMaxValidHours = 30 * 24;

UtcMicros timeOption(const Args& args, const std::string& name) {
    const std::string text = args.required(name);
    const auto t = common::parseUtc(text);
    if (!t)
        throw UsageError(fmt::format("{} '{}' is not a time with a zone, e.g. 2026-11-24T10:00:00Z or "
                                     "2026-11-24T19:00:00+09:00",
                                     name, text));
    return *t;
}

double hoursOption(const Args& args, const std::string& name, double fallback) {
    const auto text = args.option(name);
    if (!text) return fallback;
    double value = 0;
    const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || end != text->data() + text->size() || !std::isfinite(value) || value <= 0 ||
        value > kMaxValidHours)
        throw UsageError(fmt::format("{} must be a number of hours above 0 and at most {}, not '{}'", name,
                                     kMaxValidHours, *text));
    return value;
}

SignedRequest loadSignedRequest(const std::string& file) {
    const std::string bytes = common::readFile(file);
    auto parsed = parseSignedRequest(bytes);
    if (!parsed.request) throw std::runtime_error(fmt::format("{}: {}", file, parsed.error));
    return std::move(*parsed.request);
}

void writeRequestFile(const std::filesystem::path& out, const SignedRequest& request) {
    using std::filesystem::perms;
    common::writeFileAtomic(out, serializeSignedRequest(request),
                            perms::owner_read | perms::owner_write | perms::group_read | perms::others_read);
}

// Signature lines for `show` and the approval prompt; with a trust file, checks and names them.
// Returns false when a trust file was given and a signature fails it.
bool describeSignatures(const SignedRequest& s, const std::optional<TrustStore>& trust) {
    bool good = true;
    auto who = [&trust](const KeyId& id) -> std::string {
        if (!trust) return "";
        const TrustedKey* k = trust->find(id);
        return k ? fmt::format(" = {} key '{}'", roleName(k->role), k->name) : " (not in the trust file)";
    };
    // A mask-review request is signed by a city key (docs/review-still.md), any other by police.
    const Role requester = s.request.ground == Ground::MaskReview ? Role::City : Role::Police;
    std::string policeState = "not checked (no --trust)";
    if (trust) {
        const TrustedKey* k = trust->find(s.police.keyId);
        const bool ok = k && k->role == requester && verify(k->signKey, s.body, s.police.signature);
        policeState = ok ? "valid" : fmt::format("INVALID or not a trusted {} key", roleName(requester));
        good = good && ok;
    }
    fmt::print("  {:<18}key {}{}: {}\n", requester == Role::City ? "city signature" : "police signature",
               s.police.keyId, who(s.police.keyId), policeState);
    if (!s.approval) {
        fmt::print("  {:<18}none yet\n", "city approval");
        return good;
    }
    std::string approvalState = "not checked (no --trust)";
    if (trust) {
        const TrustedKey* k = trust->find(s.approval->keyId);
        const bool ok = k && k->role == Role::City &&
                        verify(k->signKey, approvalMessage(s.body, s.police.signature), s.approval->signature);
        approvalState = ok ? "valid" : "INVALID or not a trusted city key";
        good = good && ok;
    }
    fmt::print("  {:<18}key {}{}: {}\n", "city approval", s.approval->keyId, who(s.approval->keyId), approvalState);
    return good;
}

std::optional<TrustStore> trustOption(const Args& args) {
    const auto path = args.option("--trust");
    if (!path) return std::nullopt;
    return TrustStore::load(*path);
}

int runCreate(const Args& args) {
    args.expectPositionals(0, "");
    const SecretKey police = loadSecretKey(args.required("--key"));
    const std::string groundWord = args.required("--ground");
    // A review still (docs/review-still.md) is asked for by a city key and has no range.
    const bool review = classifyGround(groundWord) == Ground::MaskReview;
    if (police.role() != (review ? Role::City : Role::Police))
        throw std::runtime_error(fmt::format("{}: a {} key; {} requests are signed with a {} key", args.required("--key"),
                                             roleName(police.role()), review ? "mask-review" : "footage",
                                             review ? "city" : "police"));
    const common::SystemClock clock;
    const double hours = hoursOption(args, "--expires-in", kDefaultValidHours);
    Request r = newRequest(clock.nowUtc(), static_cast<UtcMicros>(std::llround(hours * 3600.0)) *
                                                 common::kMicrosPerSecond);
    r.cameraId = args.required("--camera");
    if (review) {
        if (args.option("--from") || args.option("--to"))
            throw UsageError("a mask-review request asks for the current frame: no --from or --to");
        r.from = r.to = r.issuedAt;
    } else {
        // Optional in the usage line only because a mask-review request has none.
        if (!args.option("--from") || !args.option("--to"))
            throw UsageError(std::string("missing ") +
                             (args.option("--from") ? "--to" : args.option("--to") ? "--from" : "--from, --to") +
                             " (a footage request names the range it asks for)");
        r.from = timeOption(args, "--from");
        r.to = timeOption(args, "--to");
        if (r.to <= r.from) throw UsageError("--to must be after --from");
    }
    r.groundWord = groundWord;
    r.ground = classifyGround(r.groundWord);
    // A typo or a made-up ground ("theft") would be signed, approved by nobody and refused by
    // every camera: stop it here, unless a test means it.
    if (r.ground == Ground::Unknown && !args.flag("--force"))
        throw UsageError(fmt::format("--ground '{}' is none of law, emergency, criminal-investigation (or disclosure, "
                                     "which every camera refuses); --force signs it anyway",
                                     common::escapeControls(r.groundWord)));
    r.reference = args.required("--reference");
    r.purpose = args.required("--purpose");
    r.body = args.required("--body");
    r.officer = args.required("--officer");
    r.recipient = police.boxPublic();
    if (const auto recipient = args.option("--recipient")) {
        const PublicKey key = loadPublicKey(*recipient);
        if (key.role != Role::Police || !key.boxKey)
            throw std::runtime_error(fmt::format("{}: not a police key; it cannot receive extracts", *recipient));
        r.recipient = *key.boxKey;
    }
    if (!isGrantableGround(r.ground) && !review)
        fmt::print(stderr,
                   "warning: ground '{}' is not one of law, emergency, criminal-investigation; every camera "
                   "refuses it ({})\n",
                   r.groundWord, r.ground == Ground::Disclosure ? "ordinance Art. 8" : "ordinance Art. 7(1)");
    SignedRequest signedRequest;
    try {
        signedRequest = signRequest(r, police);
    } catch (const RequestError& e) {
        throw UsageError(e.what());
    }
    const std::string out = args.required("--out");
    writeRequestFile(out, signedRequest);
    fmt::print("{}: request {} signed by '{}' ({}); valid until {}; now needs the city's approval\n", out,
               r.requestId, police.name(), police.keyId(), common::formatUtcAndJst(r.expiresAt));
    return 0;
}

// Reads one line from the controlling terminal; nullopt when there is none.
std::optional<std::string> askTerminal(const std::string& prompt) {
    common::UniqueFd tty(::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY));
    if (!tty.valid()) return std::nullopt;
    common::writeAll(tty.get(), {reinterpret_cast<const std::uint8_t*>(prompt.data()), prompt.size()}, "/dev/tty");
    std::string line;
    char c = 0;
    while (line.size() < 256) {
        const ssize_t n = ::read(tty.get(), &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || c == '\n') break;
        line += c;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

int runApprove(const Args& args) {
    args.expectPositionals(1, "FILE");
    const std::string file = args.positionals()[0];
    SignedRequest s = loadSignedRequest(file);
    const SecretKey city = loadSecretKey(args.required("--key"));
    if (city.role() != Role::City)
        throw std::runtime_error(fmt::format("{}: a {} key; approvals are signed with a city key",
                                             args.required("--key"), roleName(city.role())));
    const std::string out = args.required("--out");
    // Approving is vouching for the officer: never without checking the police signature
    // against the keys the cameras trust.
    const auto trust = trustOption(args);

    fmt::print("Request {} ({}):\n{}", s.request.requestId, file, describeRequest(s.request));
    const bool signaturesOk = describeSignatures(s, trust);
    if (!signaturesOk)
        throw std::runtime_error(fmt::format("{}: not approved: a signature is not valid for a key of the trust file {}",
                                             file, args.required("--trust")));
    if (s.request.ground == Ground::MaskReview && s.police.keyId == city.keyId())
        throw std::runtime_error(fmt::format("{}: not approved: '{}' signed this request; a second city key approves it",
                                             file, city.name()));
    if (!isGrantableGround(s.request.ground) && s.request.ground != Ground::MaskReview)
        throw std::runtime_error(fmt::format("{}: ground '{}' cannot be approved: the ordinance allows only law, "
                                             "emergency and criminal-investigation (Art. 7(1)); {}",
                                             file, s.request.groundWord,
                                             s.request.ground == Ground::Disclosure ? "disclosure is refused (Art. 8)"
                                                                                    : "this is none of them"));
    const common::SystemClock clock;
    if (clock.nowUtc() > s.request.expiresAt)
        throw std::runtime_error(fmt::format("{}: the request expired at {}", file, common::formatUtcAndJst(s.request.expiresAt)));
    if (s.approval) fmt::print("note: this request already carries an approval; it will be replaced\n");

    if (!args.flag("--yes")) {
        const auto answer = askTerminal(fmt::format("Approve request {} as '{}'? Type yes to approve: ",
                                                    s.request.requestId, city.name()));
        if (!answer)
            throw std::runtime_error("no terminal to confirm on; run it in a terminal, or pass --yes from a script");
        if (*answer != "yes") {
            fmt::print("not approved\n");
            return 1;
        }
    }
    approveRequest(s, city);
    writeRequestFile(out, s);
    fmt::print("{}: approved by '{}' ({})\n", out, city.name(), city.keyId());
    return 0;
}

int runShow(const Args& args) {
    args.expectPositionals(1, "FILE");
    const std::string file = args.positionals()[0];
    const SignedRequest s = loadSignedRequest(file);
    const auto trust = trustOption(args);
    fmt::print("Request {} ({}):\n{}", s.request.requestId, file, describeRequest(s.request));
    const common::SystemClock clock;
    const UtcMicros now = clock.nowUtc();
    fmt::print("  {:<18}{}\n", "status",
               now > s.request.expiresAt  ? "EXPIRED: every camera refuses it"
               : now < s.request.issuedAt ? "not valid yet (issued in the future)"
                                          : "within its validity period");
    return describeSignatures(s, trust) ? 0 : 1;
}

const Registrar createCommand(Command{
    "request", "create", "write a footage request and sign it with a police key",
    "usage: mimamori request create --camera ID [--from TIME --to TIME] --ground GROUND\n"
    "         --reference REF --purpose TEXT --body TEXT --officer NAME --key POLICE_SECRET\n"
    "         --out FILE [--expires-in HOURS] [--recipient POLICE_PUB] [--force]\n"
    "\n"
    "Writes a signed request (format: docs/request-format.md) for the footage of camera ID\n"
    "from TIME to TIME. Times need a zone: 2026-11-24T10:00:00Z or 2026-11-24T19:00:00+09:00.\n"
    "The request still needs the city's approval (mimamori request approve).\n"
    "With --ground mask-review, a city key (--key CITY_SECRET) asks for one current frame\n"
    "instead, a review still (docs/review-still.md): no --from or --to; a second city key\n"
    "approves it, and mimamori fetch --still fetches it.\n"
    "\n"
    "  --ground GROUND     law (ordinance Art. 7(1)(1)), emergency (Art. 7(1)(2)) or\n"
    "                      criminal-investigation (Art. 7(1)(3)); mask-review (Art. 4(3)-(4))\n"
    "                      for a review still. disclosure (Art. 8) is\n"
    "                      signed with a warning and refused by every camera; any other\n"
    "                      word is refused here (exit 2) unless --force\n"
    "  --force             sign a request on an unknown ground (tests of the refusal)\n"
    "  --reference REF     case reference, e.g. the number of the 捜査関係事項照会書\n"
    "  --purpose TEXT      why the footage is needed\n"
    "  --body TEXT         the requesting body, e.g. \"Hyogo Prefectural Police, Kakogawa Station\"\n"
    "  --officer NAME      the officer responsible\n"
    "  --key FILE          the police secret key that signs (NAME.secret)\n"
    "  --recipient FILE    the police public key the extract is encrypted to (default: --key's)\n"
    "  --expires-in HOURS  how long the request stays valid (default 72, at most 720)\n"
    "  --out FILE          where to write the request\n"
    "\n"
    "exit status: 0 written, 1 failed, 2 bad usage\n",
    {"--camera", "--from", "--to", "--ground", "--reference", "--purpose", "--body", "--officer", "--key", "--out",
     "--expires-in", "--recipient"},
    {"--force"}, runCreate});

const Registrar approveCommand(Command{
    "request", "approve", "show a police request and add the city's approval signature",
    "usage: mimamori request approve FILE --key CITY_SECRET --out FILE2 --trust TRUST_FILE [--yes]\n"
    "\n"
    "Shows the request in FILE and asks on the terminal to type 'yes'; then writes FILE2,\n"
    "the same request with the city's approval signature added. Requests on a ground the\n"
    "ordinance does not allow, and expired requests, are not approved.\n"
    "\n"
    "  --key FILE     the city secret key that approves (NAME.secret)\n"
    "  --trust FILE   the trust file of the cameras: the police signature must be valid\n"
    "                 for a police key in it, or nothing is approved (exit 1)\n"
    "  --yes          approve without asking (for scripts). Without --yes and without a\n"
    "                 terminal, nothing is approved.\n"
    "  --out FILE2    where to write the approved request\n"
    "\n"
    "exit status: 0 approved, 1 not approved or failed, 2 bad usage\n",
    {"--key", "--out", "--trust"}, {"--yes"}, runApprove});

const Registrar showCommand(Command{
    "request", "show", "print a request and who signed and approved it",
    "usage: mimamori request show FILE [--trust TRUST_FILE]\n"
    "\n"
    "Prints every field of the request in FILE, the police signer's and the city approver's\n"
    "key ids and, with --trust, whether each signature verifies against that trust file.\n"
    "\n"
    "exit status: 0 shown (and, with --trust, every signature present verifies), 1 malformed\n"
    "or a signature fails, 2 bad usage\n",
    {"--trust"}, {}, runShow});

}  // namespace
}  // namespace mimamori::cli
