// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The endpoint process's sandbox, applied in a forked process: it writes beneath its own
// directories only, never the ring, the day keys, the masks or the audit log, starts no program
// and no process, and its limits hold.
#include "mimamori/daemon/sandbox.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace fs = std::filesystem;
using namespace mimamori;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "mimamori-sandbox-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
};

void writeText(const fs::path& p, const std::string& text) {
    std::ofstream(p) << text;
}

// Runs `body` in a forked child after applySandbox(spec); the child's exit code: 0 when every
// expectation held, otherwise the number of the first that failed (printed too).
int inSandbox(const daemon::SandboxSpec& spec, int (*body)(const fs::path&), const fs::path& root) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        try {
            daemon::applySandbox(spec);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "applySandbox: %s\n", e.what());
            ::_exit(100);
        }
        ::_exit(body(root));
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

// Writing fails with EACCES (Landlock) for every way of writing a file that exists.
bool cannotWrite(const fs::path& file) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ::close(fd);
        return false;
    }
    const int truncated = ::truncate(file.c_str(), 0);
    const int removed = ::unlink(file.c_str());
    const int renamed = ::rename(file.c_str(), (file.string() + ".moved").c_str());
    return errno == EACCES && truncated != 0 && removed != 0 && renamed != 0 && fs::file_size(file) > 0;
}

bool cannotCreateIn(const fs::path& dir) {
    const int fd = ::open((dir / "new").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
    return fd < 0 && errno == EACCES && ::mkdir((dir / "newdir").c_str(), 0700) != 0;
}

int expectations(const fs::path& root) {
    int n = 0;
    auto expect = [&n](bool ok, const char* what) {
        ++n;
        if (!ok) std::fprintf(stderr, "sandbox expectation %d failed: %s (errno %d)\n", n, what, errno);
        return ok;
    };
    if (!expect(cannotWrite(root / "ring" / "00000001.seg"), "write a ring segment")) return n;
    if (!expect(cannotCreateIn(root / "ring"), "create a file in the ring")) return n;
    if (!expect(cannotWrite(root / "daykeys" / "ratchet.key"), "write a day key")) return n;
    if (!expect(cannotCreateIn(root / "daykeys"), "create a file among the day keys")) return n;
    if (!expect(cannotWrite(root / "masks.json"), "write the mask file")) return n;
    if (!expect(cannotWrite(root / "state" / "audit" / "audit-FY2026.log"), "write the audit log")) return n;
    if (!expect(cannotCreateIn(root / "state"), "create a file in state_dir")) return n;
    // Reading goes on: the ring, the keys and the masks are what it serves from.
    if (!expect(::access((root / "daykeys" / "ratchet.key").c_str(), R_OK) == 0, "read a day key")) return n;
    std::ifstream masks(root / "masks.json");
    std::string text;
    std::getline(masks, text);
    if (!expect(text == "masks", "read the mask file")) return n;
    // Its own directories stay writable, with the atomic replace its files use.
    {
        std::ofstream tmp(root / "state" / "endpoint" / "nonces.tmp");
        tmp << "x";
    }
    if (!expect(::rename((root / "state" / "endpoint" / "nonces.tmp").c_str(),
                         (root / "state" / "endpoint" / "nonces").c_str()) == 0, "replace its nonce file")) return n;
    if (!expect(!cannotCreateIn(root / "extracts"), "create a plan in extract_dir")) return n;
    // No program, no process; threads still start.
    char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
    ::execv("/bin/true", argv);
    if (!expect(errno == EPERM || errno == EACCES, "execute a program")) return n;
#if !defined(__SANITIZE_ADDRESS__)  // sanitized builds allow it: LeakSanitizer's helper is a process
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    if (!expect(child < 0 && errno == EPERM, "fork a process")) return n;
#endif
    bool threadRan = false;
    std::thread([&] { threadRan = true; }).join();
    if (!expect(threadRan, "start a thread")) return n;
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    if (!expect(files.rlim_cur == 128 && files.rlim_max == 128, "RLIMIT_NOFILE")) return n;
    return 0;
}

}  // namespace

TEST_CASE("the endpoint's sandbox: no write to the ring, day keys, masks or audit log; no program or process; its own dirs writable") {
    TempDir dir;
    const fs::path root = dir.path;
    for (const char* d : {"ring", "daykeys", "state/audit", "state/endpoint", "extracts"}) fs::create_directories(root / d);
    writeText(root / "ring" / "00000001.seg", "segment");
    writeText(root / "daykeys" / "ratchet.key", "key");
    writeText(root / "masks.json", "masks");
    writeText(root / "state" / "audit" / "audit-FY2026.log", "{}\n");
    daemon::SandboxSpec spec;
    spec.writable = {root / "state" / "endpoint", root / "extracts"};
    spec.maxFiles = 128;
    spec.memoryBytes = std::uint64_t{256} << 20;
    CHECK(inSandbox(spec, expectations, root) == 0);
    // And without the sandbox the same attempts succeed: the test sees what it claims to.
    CHECK(inSandbox(daemon::SandboxSpec{{root}, 0, 0}, [](const fs::path& r) { return cannotCreateIn(r / "ring") ? 1 : 0; },
                    root) == 0);
}

#if !defined(__SANITIZE_ADDRESS__)
TEST_CASE("the endpoint's memory limit: an allocation past it fails, the process goes on") {
    daemon::SandboxSpec spec;
    spec.memoryBytes = std::uint64_t{64} << 20;
    CHECK(inSandbox(spec, [](const fs::path&) {
        try {
            std::string big(std::size_t{128} << 20, 'x');
            return big.size() > 0 ? 1 : 2;
        } catch (const std::bad_alloc&) {
            return 0;
        }
    }, fs::path()) == 0);
}
#endif
