// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The real mimamorid as a child process, for the tests that drive the daemon from outside.
#pragma once

#include "mimamori/common/file.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace mimamori::testing {

// A loopback TCP port nothing listens on right now (bound, read back, released).
inline int freePort() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

inline const std::string kDaemon = MIMAMORI_BINARY_DIR "/apps/mimamorid";

// A child process we started; killed (by its pid) if the test leaves it running.
class Daemon {
public:
    Daemon(const std::vector<std::string>& args, const std::filesystem::path& log) : log_(log) {
        // The parent removes the old log, so waitForLog never reads a previous run's lines.
        std::filesystem::remove(log);
        std::vector<std::string> argv = {kDaemon};
        argv.insert(argv.end(), args.begin(), args.end());
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            ::dup2(fd, STDERR_FILENO);
            ::dup2(fd, STDOUT_FILENO);
            std::vector<char*> c;
            for (auto& a : argv) c.push_back(a.data());
            c.push_back(nullptr);
            ::execv(kDaemon.c_str(), c.data());
            ::_exit(127);
        }
    }
    ~Daemon() {
        if (pid_ > 0 && !exited_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    void signal(int sig) { REQUIRE(::kill(pid_, sig) == 0); }
    pid_t pid() const { return pid_; }
    bool running() {
        if (exited_) return false;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            exited_ = true;
            status_ = status;
        }
        return !exited_;
    }
    // Exit code, or -signal; fails the test after `seconds`.
    int wait(int seconds = 30) {
        for (int i = 0; i < seconds * 20 && running(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        REQUIRE_MESSAGE(!running(), "mimamorid did not exit; log:\n" << log());
        return WIFEXITED(status_) ? WEXITSTATUS(status_) : -WTERMSIG(status_);
    }
    std::string log() const {
        try {
            return common::readFile(log_);
        } catch (...) {
            return "";
        }
    }
    // Waits until the log holds `text` (returns the log), or fails after `seconds`.
    std::string waitForLog(const std::string& text, int seconds = 30, std::size_t occurrences = 1) {
        for (int i = 0; i < seconds * 20; ++i) {
            std::string l = log();
            std::size_t n = 0;
            for (auto pos = l.find(text); pos != std::string::npos; pos = l.find(text, pos + 1)) ++n;
            if (n >= occurrences) return l;
            if (!running()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        FAIL("no \"" << text << "\" in the log of mimamorid:\n" << log());
        return "";
    }

private:
    std::filesystem::path log_;
    pid_t pid_ = -1;
    bool exited_ = false;
    int status_ = 0;
};

}  // namespace mimamori::testing
