// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// `mimamori keygen` and `mimamori trust add|show`: key pairs for police, city and camera, and the camera's trust file.
#include "cli.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/retrieval/tls.hpp"

#include <fmt/format.h>

#include <filesystem>

namespace mimamori::cli {
namespace {

using namespace mimamori::policy;

int runKeygen(const Args& args) {
    args.expectPositionals(0, "");
    const std::string roleText = args.required("--role");
    const auto role = parseRole(roleText);
    if (!role) throw UsageError(fmt::format("--role must be police, city or camera, not '{}'", roleText));
    const std::string name = args.required("--name");
    const std::filesystem::path dir = args.required("--out");
    const SecretKey key = generateKey(*role, name);
    // Checked before anything is written, so a refusal leaves no half-provisioned camera.
    if (const auto tlsKey = dir / (name + retrieval::kTlsKeySuffix);
        *role == Role::Camera && std::filesystem::exists(std::filesystem::symlink_status(tlsKey)))
        throw retrieval::TlsError(fmt::format("{}: already exists; refusing to overwrite a TLS key", tlsKey.string()));
    writeKeyFiles(key, dir);
    if (*role == Role::Camera) retrieval::writeTlsIdentity(dir, name);
    fmt::print("{} key '{}' (key id {})\n", roleName(key.role()), key.name(), key.keyId());
    fmt::print("  secret: {}  (mode 0600; keep it off shared disks)\n", (dir / (name + ".secret")).string());
    fmt::print("  public: {}\n", (dir / (name + ".pub")).string());
    if (*role == Role::Camera) {
        const auto cert = dir / (name + retrieval::kTlsCertSuffix);
        fmt::print("  TLS key: {}  (mode 0600)\n", (dir / (name + retrieval::kTlsKeySuffix)).string());
        fmt::print("  TLS certificate: {}  (SPKI SHA-256 {})\n", cert.string(),
                   retrieval::spkiHex(retrieval::spkiSha256OfCertFile(cert)));
    }
    return 0;
}

int runTrustAdd(const Args& args) {
    if (args.positionals().size() < 2) throw UsageError("missing TRUST_FILE and PUBLIC_KEY...");
    const std::filesystem::path trustPath = args.positionals()[0];
    std::error_code ec;
    TrustStore store = std::filesystem::exists(trustPath, ec) ? TrustStore::load(trustPath) : TrustStore();
    for (std::size_t i = 1; i < args.positionals().size(); ++i) {
        const PublicKey key = loadPublicKey(args.positionals()[i]);
        store.add(key);
        fmt::print("trusting {} key '{}' (key id {})\n", roleName(key.role), key.name, key.keyId());
    }
    common::writeFileAtomic(trustPath, store.toJson(),
                            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                std::filesystem::perms::group_read | std::filesystem::perms::others_read);
    fmt::print("{}: {} trusted key{}\n", trustPath.string(), store.keys().size(), store.keys().size() == 1 ? "" : "s");
    return 0;
}

int runTrustShow(const Args& args) {
    args.expectPositionals(1, "TRUST_FILE");
    const TrustStore store = TrustStore::load(args.positionals()[0]);
    for (const auto& k : store.keys()) fmt::print("{:<7} {}  {}\n", roleName(k.role), k.keyId, k.name);
    return 0;
}

const Registrar keygenCommand(Command{
    "", "keygen", "make a police, city or camera key pair (secret file 0600 + public file)",
    "usage: mimamori keygen --role police|city|camera --name NAME --out DIR\n"
    "\n"
    "Writes DIR/NAME.secret (mode 0600) and DIR/NAME.pub (format: docs/keys.md). Every key\n"
    "is an Ed25519 signing key; police and city keys also carry an X25519 key pair, to which\n"
    "the camera encrypts the extracts (police) and audit log answers (city) it hands over.\n"
    "NAME is 1-64 of A-Z a-z 0-9 . _ -.\n"
    "A camera also gets its TLS key and self-signed certificate, DIR/NAME.tls.key (0600) and\n"
    "DIR/NAME.tls.crt; the police pin that key through a record the camera key signs.\n"
    "An existing NAME.secret is never overwritten.\n"
    "\n"
    "  --role ROLE   police (signs requests, receives extracts), city (approves requests,\n"
    "                collects audit logs),\n"
    "                camera (signs extracts and audit checkpoints)\n"
    "  --name NAME   the key's name, shown in the audit log and in `request show`\n"
    "  --out DIR     where to write the two files (created if missing)\n"
    "\n"
    "exit status: 0 written, 1 failed (e.g. the secret file exists), 2 bad usage\n",
    {"--role", "--name", "--out"}, {}, runKeygen});

const Registrar trustAddCommand(Command{
    "trust", "add", "add police or city public keys to a camera's trust file",
    "usage: mimamori trust add TRUST_FILE PUBLIC_KEY...\n"
    "\n"
    "Adds each PUBLIC_KEY (a NAME.pub file of role police or city) to the camera's trust\n"
    "file TRUST_FILE (JSON, docs/keys.md), creating it if missing; the file is replaced\n"
    "atomically. A camera accepts requests signed by its trusted police keys and approved\n"
    "by its trusted city keys only. Camera keys and keys already listed are refused.\n"
    "\n"
    "exit status: 0 written, 1 failed, 2 bad usage\n",
    {}, {}, runTrustAdd});

const Registrar trustShowCommand(Command{
    "trust", "show", "list the keys a camera's trust file accepts",
    "usage: mimamori trust show TRUST_FILE\n"
    "\n"
    "Prints one line per trusted key: role, key id, name.\n"
    "\n"
    "exit status: 0 shown, 1 unreadable or invalid file, 2 bad usage\n",
    {}, {}, runTrustShow});

}  // namespace
}  // namespace mimamori::cli
