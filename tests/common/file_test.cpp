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

TEST_CASE("hex round-trips and rejects non-hex") {
    const std::uint8_t bytes[] = {0x00, 0xab, 0xff};
    CHECK(toHex(bytes) == "00abff");
    std::string out;
    CHECK(fromHex("00ABff", out));
    CHECK(out == std::string("\x00\xab\xff", 3));
    CHECK_FALSE(fromHex("0g", out));
    CHECK_FALSE(fromHex("abc", out));
}
