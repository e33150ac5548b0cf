// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Key generation, key files, signatures and the trust store (formats in docs/keys.md).
#include "mimamori/policy/keys.hpp"

#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

namespace mimamori::policy {

using common::SecureBuffer;
namespace {

constexpr std::string_view kKeyMagic = "mimamori-key-v1";
constexpr std::size_t kMaxKeyFileBytes = 4096;
constexpr std::size_t kSeedBytes = crypto_sign_SEEDBYTES;

static_assert(kSignPublicKeyBytes == crypto_sign_PUBLICKEYBYTES);
static_assert(kSignatureBytes == crypto_sign_BYTES);
static_assert(kBoxPublicKeyBytes == crypto_box_PUBLICKEYBYTES);
static_assert(kBoxSecretKeyBytes == crypto_box_SECRETKEYBYTES);
static_assert(kSeedBytes == 32);

bool validName(std::string_view name) {
    if (name.empty() || name.size() > 64 || name.front() == '.') return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '_' || c == '-';
    });
}

std::span<const std::uint8_t> asBytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Base64 of a secret straight into sodium memory, so no std::string ever holds it.
void appendSecretField(std::string_view name, std::span<const std::uint8_t> secret, SecureBuffer& out,
                       std::size_t& used) {
    const std::size_t b64 = sodium_base64_ENCODED_LEN(secret.size(), sodium_base64_VARIANT_ORIGINAL);
    const std::size_t need = name.size() + 2 + (b64 - 1) + 1;
    if (used + need > out.size()) throw std::logic_error("secret key text buffer too small");
    std::memcpy(out.data() + used, name.data(), name.size());
    used += name.size();
    out.data()[used++] = ':';
    out.data()[used++] = ' ';
    sodium_bin2base64(reinterpret_cast<char*>(out.data() + used), b64, secret.data(), secret.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    used += b64 - 1;  // without the terminating NUL
    out.data()[used++] = '\n';
}

// Splits "name: value" key file text into fields; rejects anything else by line number.
struct KeyFileFields {
    std::vector<std::pair<std::string_view, std::string_view>> fields;
};

KeyFileFields splitKeyFile(std::string_view text, std::string_view what) {
    if (text.size() > kMaxKeyFileBytes) throw KeyError(fmt::format("{}: too large for a key file", what));
    KeyFileFields out;
    std::size_t pos = 0;
    std::size_t lineNo = 0;
    bool sawMagic = false;
    while (pos < text.size()) {
        ++lineNo;
        const std::size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos)
            throw KeyError(fmt::format("{}:{}: last line has no newline (truncated file?)", what, lineNo));
        const std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        if (!sawMagic) {
            if (line != kKeyMagic)
                throw KeyError(fmt::format("{}:1: not a mimamori key file (expected '{}')", what, kKeyMagic));
            sawMagic = true;
            continue;
        }
        const std::size_t colon = line.find(": ");
        if (colon == std::string_view::npos || colon == 0)
            throw KeyError(fmt::format("{}:{}: expected 'field: value'", what, lineNo));
        const std::string_view name = line.substr(0, colon);
        for (const auto& f : out.fields)
            if (f.first == name) throw KeyError(fmt::format("{}:{}: field '{}' given twice", what, lineNo, name));
        out.fields.emplace_back(name, line.substr(colon + 2));
    }
    if (!sawMagic) throw KeyError(fmt::format("{}: empty key file", what));
    return out;
}

std::optional<std::string_view> field(const KeyFileFields& f, std::string_view name) {
    for (const auto& [n, v] : f.fields)
        if (n == name) return v;
    return std::nullopt;
}

std::string_view requiredField(const KeyFileFields& f, std::string_view name, std::string_view what) {
    auto v = field(f, name);
    if (!v) throw KeyError(fmt::format("{}: missing field '{}'", what, name));
    return *v;
}

template <std::size_t N>
std::array<std::uint8_t, N> decodeFixed(std::string_view b64, std::string_view fieldName, std::string_view what) {
    std::vector<std::uint8_t> bytes;
    if (!fromBase64(b64, bytes) || bytes.size() != N)
        throw KeyError(fmt::format("{}: field '{}' is not base64 of {} bytes", what, fieldName, N));
    std::array<std::uint8_t, N> out{};
    std::copy(bytes.begin(), bytes.end(), out.begin());
    return out;
}

SecureBuffer decodeSecret(std::string_view b64, std::size_t size, std::string_view fieldName,
                          std::string_view what) {
    SecureBuffer out(size);
    std::size_t len = 0;
    const char* end = nullptr;
    if (sodium_base642bin(out.data(), out.size(), b64.data(), b64.size(), nullptr, &len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        len != size || end != b64.data() + b64.size())
        throw KeyError(fmt::format("{}: field '{}' is not base64 of {} bytes", what, fieldName, size));
    return out;
}

// Parses and checks what the public and secret files share.
PublicKey publicPart(const KeyFileFields& f, std::string_view expectedKind, std::string_view what) {
    const auto kind = requiredField(f, "kind", what);
    if (kind != expectedKind)
        throw KeyError(fmt::format("{}: this is a {} key file, expected a {} one", what, kind, expectedKind));
    PublicKey key;
    const auto roleText = requiredField(f, "role", what);
    const auto role = parseRole(roleText);
    if (!role) throw KeyError(fmt::format("{}: unknown role '{}' (police, city or camera)", what, roleText));
    key.role = *role;
    key.name = std::string(requiredField(f, "name", what));
    if (!validName(key.name)) throw KeyError(fmt::format("{}: invalid key name '{}'", what, key.name));
    key.signKey = decodeFixed<kSignPublicKeyBytes>(requiredField(f, "ed25519-public", what), "ed25519-public", what);
    if (auto box = field(f, "x25519-public")) {
        if (key.role == Role::Camera)
            throw KeyError(fmt::format("{}: only police and city keys carry an x25519 key", what));
        key.boxKey = decodeFixed<kBoxPublicKeyBytes>(*box, "x25519-public", what);
    } else if (key.role == Role::Police) {
        throw KeyError(fmt::format("{}: police key without 'x25519-public'", what));
    }
    const auto id = requiredField(f, "key-id", what);
    if (id != key.keyId())
        throw KeyError(fmt::format("{}: key-id {} does not match the public key (expected {})", what, id, key.keyId()));
    return key;
}

// Why a key cannot receive sealed data: camera keys never can; a city key made before city keys
// had an X25519 part (docs/keys.md) still signs approvals but must be replaced to receive.
std::string noBoxKeyMessage(const PublicKey& key) {
    if (key.role == Role::City)
        return fmt::format("city key '{}' has no X25519 part (made before city keys had one), so nothing can be "
                           "sealed to it; make a new one with `mimamori keygen --role city`",
                           key.name);
    return fmt::format("key '{}' is a {} key; only police and city keys can receive sealed data", key.name,
                       roleName(key.role));
}

void checkKnownFields(const KeyFileFields& f, std::initializer_list<std::string_view> known, std::string_view what) {
    for (const auto& [n, v] : f.fields)
        if (std::find(known.begin(), known.end(), n) == known.end())
            throw KeyError(fmt::format("{}: unknown field '{}'", what, n));
}

}  // namespace

std::string_view roleName(Role role) {
    switch (role) {
        case Role::Police: return "police";
        case Role::City: return "city";
        case Role::Camera: return "camera";
    }
    return "?";
}

std::optional<Role> parseRole(std::string_view text) {
    if (text == "police") return Role::Police;
    if (text == "city") return Role::City;
    if (text == "camera") return Role::Camera;
    return std::nullopt;
}

KeyId PublicKey::keyId() const { return keyIdOf(signKey); }

SecretKey::SecretKey(PublicKey publicKey, SecureBuffer signSecret, SecureBuffer boxSecret)
    : public_(std::move(publicKey)), signSecret_(std::move(signSecret)), boxSecret_(std::move(boxSecret)) {
    if (signSecret_.size() != crypto_sign_SECRETKEYBYTES)
        throw std::invalid_argument("SecretKey: Ed25519 secret must be 64 bytes");
    if (public_.boxKey.has_value() != (boxSecret_.size() == kBoxSecretKeyBytes) ||
        (public_.role == Role::Police && !public_.boxKey) || (public_.role == Role::Camera && public_.boxKey))
        throw std::invalid_argument("SecretKey: police keys carry an X25519 key pair, city keys may, camera keys never");
}

std::span<const std::uint8_t> SecretKey::boxSecret() const {
    if (boxSecret_.empty()) throw KeyError(noBoxKeyMessage(public_));
    return boxSecret_.bytes();
}

const BoxPublicKey& SecretKey::boxPublic() const {
    if (!public_.boxKey) throw KeyError(noBoxKeyMessage(public_));
    return *public_.boxKey;
}

SecretKey generateKey(Role role, std::string_view name) {
    common::ensureSodium();
    if (!validName(name))
        throw KeyError(fmt::format("invalid key name '{}': use 1-64 of A-Z a-z 0-9 . _ - (not starting with '.')", name));
    PublicKey pub;
    pub.role = role;
    pub.name = std::string(name);
    SecureBuffer signSecret(crypto_sign_SECRETKEYBYTES);
    crypto_sign_keypair(pub.signKey.data(), signSecret.data());
    SecureBuffer boxSecret;
    if (role == Role::Police || role == Role::City) {
        boxSecret = SecureBuffer(kBoxSecretKeyBytes);
        BoxPublicKey boxPub{};
        crypto_box_keypair(boxPub.data(), boxSecret.data());
        pub.boxKey = boxPub;
    }
    return SecretKey(std::move(pub), std::move(signSecret), std::move(boxSecret));
}

std::string formatPublicKey(const PublicKey& key) {
    std::string out = fmt::format("{}\nkind: public\nrole: {}\nname: {}\nkey-id: {}\ned25519-public: {}\n", kKeyMagic,
                                  roleName(key.role), key.name, key.keyId(), toBase64(key.signKey));
    if (key.boxKey) out += fmt::format("x25519-public: {}\n", toBase64(*key.boxKey));
    return out;
}

SecureBuffer formatSecretKey(const SecretKey& key) {
    const PublicKey& pub = key.publicKey();
    std::string head = fmt::format("{}\nkind: secret\nrole: {}\nname: {}\nkey-id: {}\ned25519-public: {}\n", kKeyMagic,
                                   roleName(pub.role), pub.name, pub.keyId(), toBase64(pub.signKey));
    if (pub.boxKey) head += fmt::format("x25519-public: {}\n", toBase64(*pub.boxKey));
    const std::size_t b64 = sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL);
    SecureBuffer text(head.size() + 2 * (32 + b64 + 4));
    std::memcpy(text.data(), head.data(), head.size());
    std::size_t used = head.size();
    // libsodium's secret key is seed || public key; the file holds the 32-byte seed (RFC 8032).
    appendSecretField("ed25519-secret", key.signSecret().first(kSeedBytes), text, used);
    if (pub.boxKey) appendSecretField("x25519-secret", key.boxSecret(), text, used);
    SecureBuffer exact(used);
    std::memcpy(exact.data(), text.data(), used);
    return exact;
}

PublicKey parsePublicKey(std::string_view text, std::string_view what) {
    const auto f = splitKeyFile(text, what);
    checkKnownFields(f, {"kind", "role", "name", "key-id", "ed25519-public", "x25519-public"}, what);
    return publicPart(f, "public", what);
}

SecretKey parseSecretKey(std::span<const std::uint8_t> bytes, std::string_view what) {
    common::ensureSodium();
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const auto f = splitKeyFile(text, what);
    checkKnownFields(f, {"kind", "role", "name", "key-id", "ed25519-public", "x25519-public", "ed25519-secret",
                         "x25519-secret"},
                     what);
    PublicKey pub = publicPart(f, "secret", what);
    const SecureBuffer seed = decodeSecret(requiredField(f, "ed25519-secret", what), kSeedBytes, "ed25519-secret", what);
    SecureBuffer signSecret(crypto_sign_SECRETKEYBYTES);
    SignPublicKey derived{};
    crypto_sign_seed_keypair(derived.data(), signSecret.data(), seed.data());
    if (sodium_memcmp(derived.data(), pub.signKey.data(), derived.size()) != 0)
        throw KeyError(fmt::format("{}: ed25519-secret does not belong to ed25519-public", what));
    SecureBuffer boxSecret;
    if (pub.boxKey) {
        boxSecret = decodeSecret(requiredField(f, "x25519-secret", what), kBoxSecretKeyBytes, "x25519-secret", what);
        BoxPublicKey derivedBox{};
        crypto_scalarmult_base(derivedBox.data(), boxSecret.data());
        if (sodium_memcmp(derivedBox.data(), pub.boxKey->data(), derivedBox.size()) != 0)
            throw KeyError(fmt::format("{}: x25519-secret does not belong to x25519-public", what));
    } else if (field(f, "x25519-secret")) {
        throw KeyError(fmt::format("{}: x25519-secret without x25519-public", what));
    }
    return SecretKey(std::move(pub), std::move(signSecret), std::move(boxSecret));
}

SecretKey loadSecretKey(const std::filesystem::path& path) {
    const std::string what = path.string();
    common::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) throw common::FileError(fmt::format("{}: {}", what, std::strerror(errno)));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw common::FileError(fmt::format("{}: {}", what, std::strerror(errno)));
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        throw KeyError(fmt::format("{}: secret key file is accessible by others (mode {:o}); chmod 600 it", what,
                                   st.st_mode & 0777));
    if (st.st_size <= 0 || static_cast<std::size_t>(st.st_size) > kMaxKeyFileBytes)
        throw KeyError(fmt::format("{}: size {} is not that of a key file", what, st.st_size));
    // Read straight into sodium memory: the secret's text never sits in an ordinary heap buffer.
    SecureBuffer text(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::read(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw common::FileError(fmt::format("{}: {}", what, std::strerror(errno)));
        if (n == 0) throw KeyError(fmt::format("{}: file shrank while being read", what));
        done += static_cast<std::size_t>(n);
    }
    return parseSecretKey(text.bytes(), what);
}

PublicKey loadPublicKey(const std::filesystem::path& path) {
    return parsePublicKey(common::readFile(path), path.string());
}

void writeKeyFiles(const SecretKey& key, const std::filesystem::path& dir) {
    std::filesystem::create_directories(dir);
    const auto secretPath = dir / (key.name() + ".secret");
    const auto publicPath = dir / (key.name() + ".pub");
    if (std::filesystem::exists(secretPath))
        throw KeyError(fmt::format("{}: already exists; refusing to overwrite a secret key", secretPath.string()));
    const SecureBuffer text = formatSecretKey(key);
    using std::filesystem::perms;
    common::writeFileAtomic(secretPath,
                            std::string_view(reinterpret_cast<const char*>(text.data()), text.size()),
                            perms::owner_read | perms::owner_write);
    common::writeFileAtomic(publicPath, formatPublicKey(key.publicKey()),
                            perms::owner_read | perms::owner_write | perms::group_read | perms::others_read);
}

Signature sign(const SecretKey& key, std::span<const std::uint8_t> message) {
    Signature sig{};
    crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), key.signSecret().data());
    return sig;
}

Signature sign(const SecretKey& key, std::string_view message) { return sign(key, asBytes(message)); }

bool verify(const SignPublicKey& key, std::span<const std::uint8_t> message, const Signature& signature) {
    common::ensureSodium();
    return crypto_sign_verify_detached(signature.data(), message.data(), message.size(), key.data()) == 0;
}

bool verify(const SignPublicKey& key, std::string_view message, const Signature& signature) {
    return verify(key, asBytes(message), signature);
}

KeyId keyIdOf(const SignPublicKey& key) { return blake2b256Hex(key).substr(0, 16); }

std::string toBase64(std::span<const std::uint8_t> bytes) {
    const std::size_t len = sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
    std::string out(len, '\0');
    sodium_bin2base64(out.data(), len, bytes.data(), bytes.size(), sodium_base64_VARIANT_ORIGINAL);
    out.resize(len - 1);
    return out;
}

bool fromBase64(std::string_view text, std::vector<std::uint8_t>& out) {
    common::ensureSodium();
    // libsodium 1.0.18 decodes some bytes >= 0x80 as base64 digits (found by fuzz/key_file):
    // only the alphabet may pass, so each value has one spelling.
    const auto inAlphabet = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
               c == '=';
    };
    if (!std::all_of(text.begin(), text.end(), inAlphabet)) {
        out.clear();
        return false;
    }
    out.assign(text.size() / 4 * 3 + 3, 0);
    std::size_t len = 0;
    const char* end = nullptr;
    if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != text.data() + text.size()) {
        out.clear();
        return false;
    }
    out.resize(len);
    return true;
}

std::string blake2b256Hex(std::span<const std::uint8_t> bytes) {
    std::array<std::uint8_t, 32> hash{};
    crypto_generichash(hash.data(), hash.size(), bytes.data(), bytes.size(), nullptr, 0);
    return common::toHex(hash);
}

std::string blake2b256Hex(std::string_view bytes) { return blake2b256Hex(asBytes(bytes)); }

TrustStore::TrustStore(std::vector<TrustedKey> keys) {
    for (auto& k : keys) {
        if (find(k.keyId)) throw KeyError(fmt::format("trust store: key id {} listed twice", k.keyId));
        keys_.push_back(std::move(k));
    }
}

TrustStore TrustStore::load(const std::filesystem::path& path) { return parse(common::readFile(path), path.string()); }

TrustStore TrustStore::parse(std::string_view json, std::string_view what) {
    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(json);
    } catch (const nlohmann::json::exception& e) {
        throw KeyError(fmt::format("{}: not JSON: {}", what, e.what()));
    }
    if (!doc.is_object() || !doc.contains("version") || doc["version"] != 1)
        throw KeyError(fmt::format("{}: expected an object with \"version\": 1", what));
    if (!doc.contains("keys") || !doc["keys"].is_array())
        throw KeyError(fmt::format("{}: expected a \"keys\" array", what));
    TrustStore store;
    std::size_t index = 0;
    for (const auto& entry : doc["keys"]) {
        const std::string where = fmt::format("{}: keys[{}]", what, index++);
        if (!entry.is_object()) throw KeyError(fmt::format("{}: expected an object", where));
        auto text = [&](const char* name) {
            if (!entry.contains(name) || !entry[name].is_string())
                throw KeyError(fmt::format("{}: missing string \"{}\"", where, name));
            return entry[name].get<std::string>();
        };
        for (const auto& [name, value] : entry.items())
            if (name != "role" && name != "name" && name != "ed25519" && name != "key_id")
                throw KeyError(fmt::format("{}: unknown field \"{}\"", where, name));
        TrustedKey key;
        const std::string roleText = text("role");
        const auto role = parseRole(roleText);
        if (!role || *role == Role::Camera)
            throw KeyError(fmt::format("{}: role '{}' cannot be trusted (police or city)", where, roleText));
        key.role = *role;
        key.name = text("name");
        if (!validName(key.name)) throw KeyError(fmt::format("{}: invalid name '{}'", where, key.name));
        key.signKey = decodeFixed<kSignPublicKeyBytes>(text("ed25519"), "ed25519", where);
        key.keyId = keyIdOf(key.signKey);
        if (entry.contains("key_id") && text("key_id") != key.keyId)
            throw KeyError(fmt::format("{}: key_id {} does not match the key (expected {})", where, text("key_id"),
                                       key.keyId));
        if (store.find(key.keyId)) throw KeyError(fmt::format("{}: key {} listed twice", where, key.keyId));
        store.keys_.push_back(std::move(key));
    }
    return store;
}

const TrustedKey* TrustStore::find(const KeyId& id) const {
    for (const auto& k : keys_)
        if (k.keyId == id) return &k;
    return nullptr;
}

void TrustStore::add(const PublicKey& key) {
    if (key.role == Role::Camera)
        throw KeyError(fmt::format("key '{}' is a camera key; only police and city keys are trusted", key.name));
    if (find(key.keyId())) throw KeyError(fmt::format("key '{}' ({}) is already trusted", key.name, key.keyId()));
    keys_.push_back(TrustedKey{key.role, key.name, key.signKey, key.keyId()});
}

std::string TrustStore::toJson() const {
    nlohmann::ordered_json doc;
    doc["version"] = 1;
    doc["keys"] = nlohmann::ordered_json::array();
    for (const auto& k : keys_) {
        nlohmann::ordered_json e;
        e["role"] = std::string(roleName(k.role));
        e["name"] = k.name;
        e["key_id"] = k.keyId;
        e["ed25519"] = toBase64(k.signKey);
        doc["keys"].push_back(std::move(e));
    }
    return doc.dump(2) + "\n";
}

}  // namespace mimamori::policy
