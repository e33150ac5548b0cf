// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Atomic replacement keeps the requested mode and the new content.
#include "mimamori/common/file.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>

using namespace mimamori::common;
namespace fs = std::filesystem;

TEST_CASE("atomic write replaces content and sets the exact mode") {
    const fs::path dir = fs::temp_directory_path() / "mimamori-file-test";
    fs::remove_all(dir);
    fs::create_directories(dir);
    const fs::path p = dir / "secret";
    writeFileAtomic(p, "one");
    writeFileAtomic(p, "two");
    CHECK(readFile(p) == "two");
    CHECK_FALSE(fs::exists(dir / "secret.tmp"));
    struct stat st{};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK_THROWS_AS(readFile(dir / "missing"), FileError);
    fs::remove_all(dir);
}

TEST_CASE("atomic write never writes through a file or symlink planted at its .tmp or target name") {
    const fs::path dir = fs::temp_directory_path() / "mimamori-file-plant-test";
    fs::remove_all(dir);
    fs::create_directories(dir);
    const fs::path victim = dir / "victim";
    writeFileAtomic(victim, "victim's bytes");
    const fs::path p = dir / "secret";

    // A symlink at secret.tmp: followed, O_TRUNC would empty the victim and write the secret into it.
    fs::create_symlink(victim, dir / "secret.tmp");
    writeFileAtomic(p, "one");
    CHECK(readFile(victim) == "victim's bytes");
    CHECK(readFile(p) == "one");
    CHECK_FALSE(fs::is_symlink(p));

    // A hard link to the victim at secret.tmp: writing into it would overwrite the victim.
    fs::create_hard_link(victim, dir / "secret.tmp");
    writeFileAtomic(p, "two");
    CHECK(readFile(victim) == "victim's bytes");
    CHECK(readFile(p) == "two");
    CHECK_FALSE(fs::exists(dir / "secret.tmp"));

    // A symlink at the target name itself is replaced by the new file, not followed.
    fs::remove(p);
    fs::create_symlink(victim, p);
    writeFileAtomic(p, "three");
    CHECK(readFile(victim) == "victim's bytes");
    CHECK_FALSE(fs::is_symlink(p));
    CHECK(readFile(p) == "three");
    struct stat st{};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    fs::remove_all(dir);
}

TEST_CASE("createExclusive makes a new file of exactly the mode asked, whatever the umask") {
    const fs::path dir = fs::temp_directory_path() / "mimamori-file-excl-test";
    fs::remove_all(dir);
    fs::create_directories(dir);
    const fs::path victim = dir / "victim";
    writeFileAtomic(victim, "victim's bytes");
    fs::create_symlink(victim, dir / "out.part");
    const mode_t old = ::umask(0777);
    {
        const UniqueFd fd = createExclusive(dir / "out.part", fs::perms::owner_read | fs::perms::owner_write);
        ::umask(old);
        writeAll(fd.get(), {reinterpret_cast<const std::uint8_t*>("new"), 3}, "out.part");
    }
    CHECK(readFile(victim) == "victim's bytes");
    CHECK_FALSE(fs::is_symlink(dir / "out.part"));
    CHECK(readFile(dir / "out.part") == "new");
    struct stat st{};
    REQUIRE(::lstat((dir / "out.part").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    fs::remove_all(dir);
}
