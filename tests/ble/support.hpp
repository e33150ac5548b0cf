// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Test support for ble/: child processes, a private dbus-daemon, the dbusmock BlueZ and its driver.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace mimamori::ble::test {

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// A child process; optional pipes to its stdin and from its stdout. Killed (SIGTERM, then
// SIGKILL) and reaped on destruction.
class Child {
public:
    Child(const std::vector<std::string>& argv, const std::vector<std::string>& extraEnv, bool pipes);
    ~Child();
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    void writeLine(const std::string& line);
    // Throws when the child closed its stdout or `timeout` passed.
    std::string readLine(std::chrono::milliseconds timeout);
    void terminate();
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
    int in_ = -1;
    int out_ = -1;
    std::string buffer_;
};

// dbus-daemon with the session configuration on a unix socket of its own.
class PrivateBus {
public:
    PrivateBus();
    const std::string& address() const { return address_; }

private:
    std::unique_ptr<Child> daemon_;
    std::string address_;
};

// python3-dbusmock's bluez5 template on the private bus, and the driver script talking to it.
class BluezMock {
public:
    explicit BluezMock(const PrivateBus& bus);
    // Sends one driver command; returns what follows "ok", throws on "error ...".
    std::string command(const std::string& line);
    void restart();  // kills the mock service (like bluetoothd crashing) and starts it again
    void stopService();
    void startService();

private:
    const PrivateBus& bus_;
    std::unique_ptr<Child> service_;
    std::unique_ptr<Child> driver_;
};

// Polls `done` every 10 ms until it holds; false after `timeout`.
bool waitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Every byte under `dir`, concatenated (to look for things that must not be there).
std::string allBytesUnder(const std::filesystem::path& dir);

}  // namespace mimamori::ble::test
