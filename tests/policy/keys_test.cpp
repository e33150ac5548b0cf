// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Key files round-trip, keep secrets private (0600), and reject every kind of damage.
#include "mimamori/policy/keys.hpp"

#include "mimamori/common/file.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

using namespace mimamori::policy;
using mimamori::common::readFile;
using mimamori::common::writeFileAtomic;
namespace fs = std::filesystem;

namespace {

unsigned modeOf(const fs::path& p) {
    struct stat st{};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 0777;
}

std::string replaceOnce(std::string text, const std::string& from, const std::string& to) {
    const auto pos = text.find(from);
    REQUIRE(pos != std::string::npos);
    return text.replace(pos, from.size(), to);
}

}  // namespace

TEST_CASE("key files round-trip for every role and the secret file is mode 0600") {
    test::TempDir dir;
    for (const Role role : {Role::Police, Role::City, Role::Camera}) {
        const std::string name = std::string(roleName(role)) + "-1";
        const SecretKey key = generateKey(role, name);
        writeKeyFiles(key, dir.path());
        CHECK(modeOf(dir / (name + ".secret")) == 0600);
        CHECK(modeOf(dir / (name + ".pub")) == 0644);

        const SecretKey loaded = loadSecretKey(dir / (name + ".secret"));
        const PublicKey pub = loadPublicKey(dir / (name + ".pub"));
        CHECK(loaded.role() == role);
        CHECK(loaded.name() == name);
        CHECK(pub.signKey == key.publicKey().signKey);
        CHECK(loaded.publicKey().signKey == key.publicKey().signKey);
        CHECK(pub.keyId() == key.keyId());
        CHECK(pub.keyId().size() == 16);
        CHECK(pub.boxKey.has_value() == (role != Role::Camera));
        CHECK(loaded.publicKey().boxKey == key.publicKey().boxKey);

        const Signature sig = sign(loaded, "the exact bytes");
        CHECK(verify(pub.signKey, "the exact bytes", sig));
        CHECK_FALSE(verify(pub.signKey, "the exact bytes!", sig));
        Signature bent = sig;
        bent[10] ^= 1;
        CHECK_FALSE(verify(pub.signKey, "the exact bytes", bent));

        // The public file never contains the secret part.
        CHECK(readFile(dir / (name + ".pub")).find("secret") == std::string::npos);
    }
}

TEST_CASE("police and city keys receive what is sealed to their X25519 public key; camera keys cannot") {
    test::TempDir dir;
    for (const Role role : {Role::Police, Role::City}) {
        const std::string name = std::string(roleName(role)) + "-receiver";
        writeKeyFiles(generateKey(role, name), dir.path());
        const SecretKey receiver = loadSecretKey(dir / (name + ".secret"));
        const PublicKey pub = loadPublicKey(dir / (name + ".pub"));
        REQUIRE(pub.boxKey);
        const std::string message = "stream key";
        std::string sealed(message.size() + crypto_box_SEALBYTES, '\0');
        crypto_box_seal(reinterpret_cast<unsigned char*>(sealed.data()),
                        reinterpret_cast<const unsigned char*>(message.data()), message.size(), pub.boxKey->data());
        std::string opened(message.size(), '\0');
        REQUIRE(crypto_box_seal_open(reinterpret_cast<unsigned char*>(opened.data()),
                                     reinterpret_cast<const unsigned char*>(sealed.data()), sealed.size(),
                                     receiver.boxPublic().data(), receiver.boxSecret().data()) == 0);
        CHECK(opened == message);
    }

    const SecretKey camera = generateKey(Role::Camera, "cam");
    CHECK_THROWS_AS((void)camera.boxSecret(), KeyError);
    CHECK_THROWS_AS((void)camera.boxPublic(), KeyError);
    CHECK_FALSE(camera.publicKey().boxKey);
}

TEST_CASE("a city key file from before city keys had an X25519 part still loads, and says why it cannot receive") {
    test::TempDir dir;
    const SecretKey fresh = generateKey(Role::City, "old-city");
    writeKeyFiles(fresh, dir.path());
    // An old city key file is today's without its two x25519 lines; the key id is the Ed25519 key's.
    auto withoutX25519 = [](const std::string& text) {
        std::string out;
        std::size_t start = 0;
        while (start < text.size()) {
            const std::size_t end = text.find('\n', start) + 1;
            if (text.compare(start, 7, "x25519-") != 0) out += text.substr(start, end - start);
            start = end;
        }
        return out;
    };
    const std::string oldPub = withoutX25519(readFile(dir / "old-city.pub"));
    const std::string oldSecret = withoutX25519(readFile(dir / "old-city.secret"));
    REQUIRE(oldPub.find("x25519") == std::string::npos);
    writeFileAtomic(dir / "old.pub", oldPub);
    writeFileAtomic(dir / "old.secret", oldSecret, fs::perms::owner_read | fs::perms::owner_write);

    const PublicKey pub = loadPublicKey(dir / "old.pub");
    CHECK(pub.role == Role::City);
    CHECK_FALSE(pub.boxKey);
    CHECK(pub.keyId() == fresh.keyId());
    const SecretKey key = loadSecretKey(dir / "old.secret");
    CHECK(verify(pub.signKey, "approval", sign(key, "approval")));
    CHECK_THROWS_WITH_AS((void)key.boxPublic(), doctest::Contains("has no X25519 part"), KeyError);
    CHECK_THROWS_AS((void)key.boxSecret(), KeyError);
    // And it is written back as it was read.
    CHECK(formatPublicKey(pub) == oldPub);
}

TEST_CASE("a camera key file with an X25519 part, or a city secret with half of one, is refused") {
    test::TempDir dir;
    writeKeyFiles(generateKey(Role::Camera, "cam"), dir.path());
    writeKeyFiles(generateKey(Role::City, "city"), dir.path());
    const std::string cityPub = readFile(dir / "city.pub");
    const auto boxLineStart = cityPub.find("x25519-public: ");
    const std::string boxLine = cityPub.substr(boxLineStart, cityPub.find('\n', boxLineStart) + 1 - boxLineStart);
    CHECK_THROWS_AS(parsePublicKey(readFile(dir / "cam.pub") + boxLine, "cam.pub"), KeyError);

    const std::string secret = readFile(dir / "city.secret");
    const std::string noPublic = replaceOnce(secret, boxLine, "");
    CHECK_THROWS_AS(
        parseSecretKey({reinterpret_cast<const std::uint8_t*>(noPublic.data()), noPublic.size()}, "city.secret"),
        KeyError);
    const auto secretStart = secret.find("x25519-secret: ");
    const std::string noSecret = secret.substr(0, secretStart) + secret.substr(secret.find('\n', secretStart) + 1);
    CHECK_THROWS_AS(
        parseSecretKey({reinterpret_cast<const std::uint8_t*>(noSecret.data()), noSecret.size()}, "city.secret"),
        KeyError);
}

TEST_CASE("a secret key file readable by others is refused, and an existing one is never overwritten") {
    test::TempDir dir;
    const SecretKey key = generateKey(Role::City, "city");
    writeKeyFiles(key, dir.path());
    CHECK_THROWS_AS(writeKeyFiles(generateKey(Role::City, "city"), dir.path()), KeyError);
    CHECK(loadPublicKey(dir / "city.pub").signKey == key.publicKey().signKey);  // still the first key
    fs::permissions(dir / "city.secret", fs::perms::group_read, fs::perm_options::add);
    CHECK_THROWS_AS(loadSecretKey(dir / "city.secret"), KeyError);
}

TEST_CASE("damaged key files are rejected with the file named") {
    test::TempDir dir;
    writeKeyFiles(generateKey(Role::Police, "p"), dir.path());
    writeKeyFiles(generateKey(Role::Police, "q"), dir.path());
    const std::string pub = readFile(dir / "p.pub");
    const std::string otherPub = readFile(dir / "q.pub");
    auto otherLine = [&](const std::string& field) {
        const auto start = otherPub.find(field + ": ");
        return otherPub.substr(start, otherPub.find('\n', start) - start);
    };
    auto ownLine = [&](const std::string& text, const std::string& field) {
        const auto start = text.find(field + ": ");
        return text.substr(start, text.find('\n', start) - start);
    };

    SUBCASE("truncated") { CHECK_THROWS_AS(parsePublicKey(pub.substr(0, pub.size() - 5), "p.pub"), KeyError); }
    SUBCASE("garbage") { CHECK_THROWS_AS(parsePublicKey("\x01\x02garbage\n", "p.pub"), KeyError); }
    SUBCASE("public key swapped, key id kept") {
        CHECK_THROWS_AS(parsePublicKey(replaceOnce(pub, ownLine(pub, "ed25519-public"), otherLine("ed25519-public")),
                                       "p.pub"),
                        KeyError);
    }
    SUBCASE("unknown role") { CHECK_THROWS_AS(parsePublicKey(replaceOnce(pub, "role: police", "role: mayor"), "p.pub"), KeyError); }
    SUBCASE("police key without its X25519 key") {
        CHECK_THROWS_AS(parsePublicKey(replaceOnce(pub, ownLine(pub, "x25519-public") + "\n", ""), "p.pub"), KeyError);
    }
    SUBCASE("a public file is not a secret key") {
        CHECK_THROWS_AS(parseSecretKey({reinterpret_cast<const std::uint8_t*>(pub.data()), pub.size()}, "p.pub"),
                        KeyError);
    }
    SUBCASE("secret that does not belong to the public key") {
        // Only the test reads secret files as text, to damage them.
        const std::string secret = readFile(dir / "p.secret");
        const std::string otherSecret = readFile(dir / "q.secret");
        const std::string mixed =
            replaceOnce(secret, ownLine(secret, "ed25519-secret"), ownLine(otherSecret, "ed25519-secret"));
        CHECK_THROWS_AS(parseSecretKey({reinterpret_cast<const std::uint8_t*>(mixed.data()), mixed.size()}, "p.secret"),
                        KeyError);
        const std::string mixedBox =
            replaceOnce(secret, ownLine(secret, "x25519-secret"), ownLine(otherSecret, "x25519-secret"));
        CHECK_THROWS_AS(
            parseSecretKey({reinterpret_cast<const std::uint8_t*>(mixedBox.data()), mixedBox.size()}, "p.secret"),
            KeyError);
    }
}

TEST_CASE("key names that could escape the key directory are refused") {
    CHECK_THROWS_AS(generateKey(Role::City, "../evil"), KeyError);
    CHECK_THROWS_AS(generateKey(Role::City, ""), KeyError);
    CHECK_THROWS_AS(generateKey(Role::City, ".hidden"), KeyError);
    CHECK_THROWS_AS(generateKey(Role::City, std::string(65, 'a')), KeyError);
    CHECK_NOTHROW(generateKey(Role::City, "kakogawa-city.approver_1"));
}

TEST_CASE("the trust store finds police and city keys by id and rejects bad entries") {
    const SecretKey police = generateKey(Role::Police, "hyogo-pd");
    const SecretKey city = generateKey(Role::City, "kakogawa-city");
    TrustStore store;
    store.add(police.publicKey());
    store.add(city.publicKey());
    CHECK_THROWS_AS(store.add(police.publicKey()), KeyError);
    CHECK_THROWS_AS(store.add(generateKey(Role::Camera, "cam").publicKey()), KeyError);

    const TrustStore loaded = TrustStore::parse(store.toJson(), "trust.json");
    REQUIRE(loaded.keys().size() == 2);
    const TrustedKey* p = loaded.find(police.keyId());
    REQUIRE(p);
    CHECK(p->role == Role::Police);
    CHECK(p->name == "hyogo-pd");
    CHECK(p->signKey == police.publicKey().signKey);
    CHECK(loaded.find(city.keyId())->role == Role::City);
    CHECK(loaded.find("0000000000000000") == nullptr);

    test::TempDir dir;
    writeFileAtomic(dir / "trust.json", store.toJson());
    CHECK(TrustStore::load(dir / "trust.json").keys().size() == 2);

    const std::string json = store.toJson();
    CHECK_THROWS_AS(TrustStore::parse(json.substr(0, json.size() / 2), "trust.json"), KeyError);
    CHECK_THROWS_AS(TrustStore::parse(replaceOnce(json, "\"city\"", "\"camera\""), "trust.json"), KeyError);
    CHECK_THROWS_AS(TrustStore::parse(replaceOnce(json, police.keyId(), city.keyId()), "trust.json"), KeyError);
    CHECK_THROWS_AS(TrustStore::parse(R"({"version":2,"keys":[]})", "trust.json"), KeyError);
}

TEST_CASE("base64 rejects what is not canonical base64") {
    std::vector<std::uint8_t> out;
    CHECK(fromBase64("aGVsbG8=", out));
    CHECK(std::string(out.begin(), out.end()) == "hello");
    CHECK_FALSE(fromBase64("aGVsbG8", out));
    CHECK_FALSE(fromBase64("aGVs bG8=", out));
    CHECK_FALSE(fromBase64("aGVsbG8=\n", out));
    CHECK_FALSE(fromBase64("\x80" "A==", out));  // libsodium alone decodes this to 0xfc (fuzz/key_file)
    CHECK(toBase64(std::vector<std::uint8_t>{'h', 'i'}) == "aGk=");
}
