// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Test support for ble/: child processes, a private dbus-daemon, the dbusmock BlueZ and its driver.
#include "support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace mimamori::ble::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
    std::string templ = (fs::temp_directory_path() / "mimamori-ble-XXXXXX").string();
    if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

Child::Child(const std::vector<std::string>& argv, const std::vector<std::string>& extraEnv, bool pipes) {
    int inPipe[2] = {-1, -1}, outPipe[2] = {-1, -1};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (!pipes) {
        // The mock logs every call on stdout; keep the test output readable (stderr stays).
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    } else {
        if (::pipe2(inPipe, O_CLOEXEC) != 0 || ::pipe2(outPipe, O_CLOEXEC) != 0)
            throw std::runtime_error("pipe2 failed");
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0);
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1);
    }
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    for (const auto& e : extraEnv) env.push_back(e);
    std::vector<char*> envp, args;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> argvCopy = argv;
    for (auto& a : argvCopy) args.push_back(a.data());
    args.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (pipes) {
        ::close(inPipe[0]);
        ::close(outPipe[1]);
        in_ = inPipe[1];
        out_ = outPipe[0];
    }
    if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
}

Child::~Child() {
    terminate();
    if (in_ >= 0) ::close(in_);
    if (out_ >= 0) ::close(out_);
}

void Child::terminate() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 300; ++i) {
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

void Child::writeLine(const std::string& line) {
    const std::string text = line + "\n";
    if (::write(in_, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        throw std::runtime_error("cannot write to the child");
}

std::string Child::readLine(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        const auto nl = buffer_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            return line;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) throw std::runtime_error("timed out waiting for the child's answer");
        pollfd p{out_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        char chunk[4096];
        const auto n = ::read(out_, chunk, sizeof chunk);
        if (n <= 0) throw std::runtime_error("the child closed its output");
        buffer_.append(chunk, static_cast<std::size_t>(n));
    }
}

PrivateBus::PrivateBus() {
    daemon_ = std::make_unique<Child>(
        std::vector<std::string>{"/usr/bin/dbus-daemon", "--session", "--nofork", "--print-address=1"},
        std::vector<std::string>{}, true);
    address_ = daemon_->readLine(std::chrono::seconds(10));
    if (address_.rfind("unix:", 0) != 0) throw std::runtime_error("dbus-daemon printed no address: " + address_);
}

BluezMock::BluezMock(const PrivateBus& bus) : bus_(bus) {
    startService();
    driver_ = std::make_unique<Child>(
        std::vector<std::string>{"/usr/bin/python3", MIMAMORI_SOURCE_DIR "/tests/ble/bluez_mock_driver.py"},
        std::vector<std::string>{"DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address()}, true);
    command("wait-bluez");
}

void BluezMock::startService() {
    service_ = std::make_unique<Child>(
        std::vector<std::string>{"/usr/bin/python3", "-m", "dbusmock", "--system", "--template", "bluez5"},
        std::vector<std::string>{"DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address()}, false);
    if (driver_) command("wait-bluez");
}

void BluezMock::stopService() { service_.reset(); }

void BluezMock::restart() {
    stopService();
    startService();
}

std::string BluezMock::command(const std::string& line) {
    driver_->writeLine(line);
    const std::string answer = driver_->readLine(std::chrono::seconds(30));
    if (answer == "ok") return "";
    if (answer.rfind("ok ", 0) == 0) return answer.substr(3);
    throw std::runtime_error("mock driver: '" + line + "': " + answer);
}

bool waitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

std::string allBytesUnder(const fs::path& dir) {
    std::string all;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
        if (!entry.is_regular_file()) continue;
        std::ifstream in(entry.path(), std::ios::binary);
        all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        all += entry.path().filename().string();
    }
    return all;
}

}  // namespace mimamori::ble::test
