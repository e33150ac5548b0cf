// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The camera's TLS identity (OpenSSL) and the Ed25519-signed record that pins it (docs/keys.md).
#include "mimamori/retrieval/tls.hpp"

#include "tls_peer.hpp"

#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace mimamori::retrieval {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kRecordMagic = "mimamori-tls-key-v1";
constexpr int kCertificateDays = 100 * 366;  // the pin, not the dates, is what is checked

struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

// The contents of a memory BIO, borrowed for as long as the BIO lives.
std::string_view bioView(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return {data, n > 0 ? static_cast<std::size_t>(n) : 0};
}

// Reads a PEM file we hold, at most 64 KiB, into a memory BIO.
BioPtr readPem(const fs::path& path, bool secret) {
    common::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) throw TlsError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 64 * 1024)
        throw TlsError(fmt::format("{}: not a regular file of at most 64 KiB", path.string()));
    if (secret && (st.st_mode & 077) != 0)
        throw TlsError(fmt::format("{}: readable or writable by group or others; chmod 600 it", path.string()));
    BioPtr bio(secret ? BIO_new(BIO_s_secmem()) : BIO_new(BIO_s_mem()));
    if (!bio) throw TlsError("out of memory");
    std::vector<char> buffer(static_cast<std::size_t>(st.st_size) + 1);
    std::size_t have = 0;
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer.data() + have, buffer.size() - have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw TlsError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
        if (n == 0 || (have += static_cast<std::size_t>(n)) == buffer.size()) break;
    }
    if (have > static_cast<std::size_t>(st.st_size)) throw TlsError(fmt::format("{}: grew while read", path.string()));
    BIO_write(bio.get(), buffer.data(), static_cast<int>(have));
    OPENSSL_cleanse(buffer.data(), buffer.size());
    return bio;
}

X509Ptr loadCertificate(const fs::path& certPem) {
    const BioPtr bio = readPem(certPem, false);
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) throw TlsError(fmt::format("{}: not a PEM X.509 certificate", certPem.string()));
    return cert;
}

std::string hex(std::span<const std::uint8_t> bytes) { return common::toHex(bytes); }

}  // namespace

std::optional<SpkiHash> spkiSha256(X509* cert) {
    if (!cert) return std::nullopt;
    unsigned char* der = nullptr;
    const int length = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (length <= 0 || !der) return std::nullopt;
    const SpkiHash out = common::sha256(std::span<const std::uint8_t>(der, static_cast<std::size_t>(length)));
    OPENSSL_free(der);
    return out;
}

std::string spkiHex(const SpkiHash& spki) { return hex(spki); }

void writeTlsIdentity(const fs::path& dir, std::string_view name) {
    const fs::path keyPath = dir / (std::string(name) + kTlsKeySuffix);
    const fs::path certPath = dir / (std::string(name) + kTlsCertSuffix);
    std::error_code ec;
    if (fs::exists(fs::symlink_status(keyPath, ec)))
        throw TlsError(fmt::format("{}: already exists; refusing to overwrite a TLS key", keyPath.string()));

    PkeyPtr key(EVP_EC_gen("P-256"));
    X509Ptr cert(X509_new());
    if (!key || !cert) throw TlsError("cannot make a P-256 key");
    std::array<std::uint8_t, 16> serial{};
    if (RAND_bytes(serial.data(), static_cast<int>(serial.size())) != 1) throw TlsError("no randomness for a serial");
    serial[0] &= 0x7F;  // a positive INTEGER
    std::unique_ptr<BIGNUM, decltype(&BN_free)> serialNumber(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr),
                                                             BN_free);
    const std::string cn(name);
    X509_NAME* subject = X509_get_subject_name(cert.get());
    const bool made =
        X509_set_version(cert.get(), 2) == 1 && serialNumber &&
        BN_to_ASN1_INTEGER(serialNumber.get(), X509_get_serialNumber(cert.get())) != nullptr &&
        X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) != nullptr &&
        X509_time_adj_ex(X509_getm_notAfter(cert.get()), kCertificateDays, 0, nullptr) != nullptr &&
        X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()),
                                   -1, -1, 0) == 1 &&
        X509_set_issuer_name(cert.get(), subject) == 1 && X509_set_pubkey(cert.get(), key.get()) == 1 &&
        X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
    if (!made) throw TlsError(fmt::format("cannot make the TLS certificate for '{}'", cn));

    const BioPtr keyBio(BIO_new(BIO_s_secmem()));
    const BioPtr certBio(BIO_new(BIO_s_mem()));
    if (!keyBio || !certBio || PEM_write_bio_PrivateKey(keyBio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
        PEM_write_bio_X509(certBio.get(), cert.get()) != 1)
        throw TlsError("cannot encode the TLS key and certificate");
    fs::create_directories(dir);
    using fs::perms;
    common::writeFileAtomic(keyPath, bioView(keyBio.get()), perms::owner_read | perms::owner_write);
    common::writeFileAtomic(certPath, bioView(certBio.get()),
                            perms::owner_read | perms::owner_write | perms::group_read | perms::others_read);
}

SpkiHash spkiSha256OfCertFile(const fs::path& certPem) {
    const X509Ptr cert = loadCertificate(certPem);
    const auto spki = spkiSha256(cert.get());
    if (!spki) throw TlsError(fmt::format("{}: the certificate's public key cannot be encoded", certPem.string()));
    return *spki;
}

std::string tlsKeyRecordFor(const fs::path& certPem, const fs::path& keyPem, const policy::SecretKey& camera) {
    const X509Ptr cert = loadCertificate(certPem);
    const BioPtr bio = readPem(keyPem, true);
    const PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key) throw TlsError(fmt::format("{}: not a PEM private key", keyPem.string()));
    if (X509_check_private_key(cert.get(), key.get()) != 1)
        throw TlsError(fmt::format("{}: not the key of the certificate {}", keyPem.string(), certPem.string()));
    const auto spki = spkiSha256(cert.get());
    if (!spki) throw TlsError(fmt::format("{}: the certificate's public key cannot be encoded", certPem.string()));
    return makeTlsKeyRecord(camera, *spki);
}

namespace {

// The signed part: the magic line and three fields, each ending in "\n".
std::string signedPart(std::string_view camera, std::string_view keyId, const SpkiHash& spki) {
    return fmt::format("{}\ncamera: {}\nkey-id: {}\nspki-sha256: {}\n", kRecordMagic, camera, keyId, spkiHex(spki));
}

}  // namespace

std::string makeTlsKeyRecord(const policy::SecretKey& camera, const SpkiHash& spki) {
    const std::string body = signedPart(camera.name(), camera.keyId(), spki);
    const policy::Signature sig = policy::sign(camera, body);
    return body + "signature: " + policy::toBase64(sig) + "\n";
}

std::optional<TlsKeyRecord> verifyTlsKeyRecord(std::string_view text, const policy::PublicKey& camera,
                                               std::string& error) {
    if (text.size() > kMaxTlsKeyRecordBytes) {
        error = fmt::format("the TLS key record is longer than {} bytes", kMaxTlsKeyRecordBytes);
        return std::nullopt;
    }
    // Exactly five lines, each ending in "\n": the magic, then camera, key-id, spki-sha256, signature.
    std::vector<std::string_view> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) break;
        lines.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    if (start != text.size() || lines.size() != 5 || lines[0] != kRecordMagic) {
        error = "the camera's TLS key record is malformed (not five lines starting with mimamori-tls-key-v1)";
        return std::nullopt;
    }
    auto field = [&](std::size_t i, std::string_view name) -> std::optional<std::string_view> {
        const std::string prefix = std::string(name) + ": ";
        if (!lines[i].starts_with(prefix)) return std::nullopt;
        return lines[i].substr(prefix.size());
    };
    const auto cameraName = field(1, "camera"), keyId = field(2, "key-id"), spkiText = field(3, "spki-sha256"),
               sigText = field(4, "signature");
    std::string spkiBytes;
    std::vector<std::uint8_t> sigBytes;
    if (!cameraName || !keyId || !spkiText || !sigText || spkiText->size() != 64 ||
        spkiText->find_first_not_of("0123456789abcdef") != std::string_view::npos ||
        !common::fromHex(*spkiText, spkiBytes) || !policy::fromBase64(*sigText, sigBytes) ||
        sigBytes.size() != policy::kSignatureBytes) {
        error = "the camera's TLS key record is malformed (a field is missing, out of order or not well-formed)";
        return std::nullopt;
    }
    const policy::KeyId expected = camera.keyId();
    if (*keyId != expected) {
        error = fmt::format("the camera's TLS key record is not signed by camera key {} ({}): another camera answers "
                            "at this address",
                            camera.name, expected);
        return std::nullopt;
    }
    policy::Signature sig{};
    std::copy(sigBytes.begin(), sigBytes.end(), sig.begin());
    const std::size_t signedBytes = text.size() - lines[4].size() - 1;
    if (!policy::verify(camera.signKey, text.substr(0, signedBytes), sig)) {
        error = fmt::format("the camera's TLS key record does not verify with camera key {} ({})", camera.name, expected);
        return std::nullopt;
    }
    if (*cameraName != camera.name) {
        error = fmt::format("the camera's TLS key record names another camera than {}", camera.name);
        return std::nullopt;
    }
    TlsKeyRecord record;
    record.camera = std::string(*cameraName);
    record.keyId = std::string(*keyId);
    std::copy(spkiBytes.begin(), spkiBytes.end(), reinterpret_cast<char*>(record.spki.data()));
    return record;
}

}  // namespace mimamori::retrieval
