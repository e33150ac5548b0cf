// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// ble_bench: advertisements/s through decoding + aggregation (one core, no D-Bus), through D-Bus
// from python3-dbusmock's BlueZ, and resident memory after 100,000 random unregistered addresses.
//
// usage: ble_bench [--skip-dbus]   (the D-Bus part starts dbus-daemon and /usr/bin/python3 -m dbusmock)
#include "mimamori/ble/aggregator.hpp"
#include "mimamori/ble/scanner.hpp"
#include "mimamori/ble/tags.hpp"
#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

using namespace mimamori;
using namespace mimamori::ble;
using Clock = std::chrono::steady_clock;

namespace {

const char* kUuid = "e2c56db5dffb48d2b060d0f5a71096e0";

Bytes hex(const std::string& h) {
    std::string raw;
    if (!common::fromHex(h, raw)) throw std::runtime_error("bad hex " + h);
    return Bytes(raw.begin(), raw.end());
}

std::vector<CompanyRules> rules() {
    CompanyRules acme{"acme", {}, {}, {}};
    IBeaconRule ib;
    const auto u = hex(kUuid);
    std::copy(u.begin(), u.end(), ib.uuid.begin());
    acme.ibeacon.push_back(ib);
    CompanyRules gamma{"gamma", {}, {}, {}};
    gamma.manufacturer.push_back({0x0999, hex("a1b2"), 3, 4});
    return {acme, gamma};
}

double residentMiB() {
    std::ifstream statm("/proc/self/statm");
    std::size_t size = 0, resident = 0;
    statm >> size >> resident;
    return static_cast<double>(resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE))) / (1024.0 * 1024.0);
}

double cpuSeconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// A random phone: random address, a vendor blob, sometimes an Apple "nearby" frame.
Advertisement randomPhone(std::mt19937_64& rng, std::int64_t t) {
    const auto r = rng();
    Advertisement a;
    a.address = fmt::format("{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}", r & 0xff, (r >> 8) & 0xff,
                            (r >> 16) & 0xff, (r >> 24) & 0xff, (r >> 32) & 0xff, (r >> 40) & 0xff);
    a.rssi = -40 - static_cast<int>(r % 50);
    a.manufacturerData[static_cast<std::uint16_t>(r >> 48)] = Bytes(8 + r % 20, 0x11);
    if (r & 1) a.manufacturerData[kAppleCompanyId] = hex("1005031c0a1b2c");
    a.time = 1'790'000'000'000'000 + t;
    a.monotonic = t;
    return a;
}

void benchDecode() {
    const TagDecoder decoder(rules());
    PassageAggregator agg({}, {"acme", "gamma"}, "cam-1");
    std::mt19937_64 rng(1);
    // 200,000 advertisements: 95 % passers-by, 5 % from 50 registered tags.
    std::vector<Advertisement> ads;
    for (int i = 0; i < 200'000; ++i) {
        const std::int64_t t = i * 100;  // 10,000 ads per simulated second
        if (i % 20 == 0) {
            Advertisement a;
            a.address = "C0:00:00:00:00:01";
            a.rssi = -60;
            a.manufacturerData[kAppleCompanyId] = hex(fmt::format("0215{}0001{:04x}c5", kUuid, (i / 20) % 50));
            a.time = 1'790'000'000'000'000 + t;
            a.monotonic = t;
            ads.push_back(std::move(a));
        } else {
            ads.push_back(randomPhone(rng, t));
        }
    }
    std::size_t counted = 0, passages = 0;
    const auto start = Clock::now();
    for (std::size_t i = 0; i < ads.size(); ++i) {
        if (auto s = decoder.decode(ads[i])) counted += agg.observe(*s) ? 1 : 0;
        if (i % 10'000 == 0) passages += agg.closeIdle(ads[i].monotonic).size();
    }
    passages += agg.closeAll().size();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    fmt::print("decode+aggregate, one core, no D-Bus: {:.0f} advertisements/s ({} ads, {} tag sightings, "
               "{} passages, {:.3f} s)\n",
               static_cast<double>(ads.size()) / seconds, ads.size(), counted, passages, seconds);
}

void benchMemory() {
    const TagDecoder decoder(rules());
    PassageAggregator agg({}, {"acme", "gamma"}, "cam-1");
    std::mt19937_64 rng(2);
    for (int i = 0; i < 2'000; ++i)
        if (auto s = decoder.decode(randomPhone(rng, i))) agg.observe(*s);
    const double before = residentMiB();
    for (int i = 0; i < 100'000; ++i)
        if (auto s = decoder.decode(randomPhone(rng, i))) agg.observe(*s);
    const double after = residentMiB();
    fmt::print("resident memory, 100,000 random unregistered addresses: {:.2f} MiB before, {:.2f} MiB after "
               "(growth {:.3f} MiB), open visits {}\n",
               before, after, after - before, agg.openVisits());
}

// A child process with its stdout on a pipe (or /dev/null) and stdin on a pipe.
struct Child {
    pid_t pid = -1;
    int in = -1, out = -1;
    Child(std::vector<std::string> argv, const std::string& env, bool quiet) {
        int i[2], o[2];
        if (::pipe2(i, O_CLOEXEC) != 0 || ::pipe2(o, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, i[0], 0);
        if (quiet) {
            posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        } else {
            posix_spawn_file_actions_adddup2(&fa, o[1], 1);
        }
        std::vector<std::string> envs;
        for (char** e = environ; *e; ++e) envs.emplace_back(*e);
        if (!env.empty()) envs.push_back(env);
        std::vector<char*> a, e;
        for (auto& s : argv) a.push_back(s.data());
        a.push_back(nullptr);
        for (auto& s : envs) e.push_back(s.data());
        e.push_back(nullptr);
        if (::posix_spawn(&pid, a[0], &fa, nullptr, a.data(), e.data()) != 0)
            throw std::runtime_error("cannot start " + argv[0]);
        posix_spawn_file_actions_destroy(&fa);
        ::close(i[0]);
        ::close(o[1]);
        in = i[1];
        out = o[0];
    }
    ~Child() {
        ::kill(pid, SIGTERM);
        ::waitpid(pid, nullptr, 0);
        ::close(in);
        ::close(out);
    }
    std::string line() {
        std::string s;
        char c;
        while (::read(out, &c, 1) == 1 && c != '\n') s += c;
        return s;
    }
    std::string command(const std::string& cmd) {
        const std::string text = cmd + "\n";
        if (::write(in, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
            throw std::runtime_error("write to driver");
        const auto answer = line();
        if (answer.rfind("ok", 0) != 0) throw std::runtime_error(cmd + ": " + answer);
        return answer.size() > 3 ? answer.substr(3) : "";
    }
};

void benchDbus(const std::string& driverPath) {
    Child bus({"/usr/bin/dbus-daemon", "--session", "--nofork", "--print-address=1"}, "", false);
    const std::string address = bus.line();
    const std::string env = "DBUS_SYSTEM_BUS_ADDRESS=" + address;
    Child mock({"/usr/bin/python3", "-m", "dbusmock", "--system", "--template", "bluez5"}, env, true);
    Child driver({"/usr/bin/python3", driverPath}, env, false);
    driver.command("wait-bluez");
    driver.command("adapter-add hci0");

    const TagDecoder decoder(rules());
    PassageAggregator agg({}, {"acme", "gamma"}, "cam-1");
    std::mutex mutex;
    const common::SystemClock clock;
    ScannerConfig config;
    config.busAddress = address;
    config.sweepMicros = 3600 * common::kMicrosPerSecond;
    auto scanner = Scanner::start(config, clock, [&](const Advertisement& ad) {
        auto s = decoder.decode(ad);
        if (!s) return false;
        std::lock_guard lock(mutex);
        agg.observe(*s);
        return true;
    });
    while (!scanner->stats().attached) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const auto tag = driver.command("device-add hci0 C0:00:00:00:00:01");
    driver.command("mfr " + tag + fmt::format(" 0x004c:0215{}00010002c5", kUuid));
    const auto base = scanner->stats().updates;
    constexpr int kCount = 5'000;
    const double cpuBefore = cpuSeconds();
    const auto start = Clock::now();
    const double emitSeconds = std::stod(driver.command(fmt::format("flood {} {}", tag, kCount)));
    while (scanner->stats().updates < base + kCount) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu = cpuSeconds() - cpuBefore;
    fmt::print("through D-Bus from the dbusmock BlueZ: {} updates consumed in {:.3f} s = {:.0f} updates/s "
               "(the python mock emitted them at {:.0f}/s: it is the bottleneck)\n",
               kCount, seconds, kCount / seconds, kCount / emitSeconds);
    fmt::print("scanner CPU per D-Bus update: {:.1f} us (this process, incl. sd-bus parsing) -> at most ~{:.0f} "
               "updates/s per core\n",
               cpu / kCount * 1e6, kCount / cpu);
    scanner->stop();
}

}  // namespace

int main(int argc, char** argv) {
    const bool skipDbus = argc > 1 && std::strcmp(argv[1], "--skip-dbus") == 0;
    try {
        benchMemory();
        benchDecode();
        if (!skipDbus)
            benchDbus((std::filesystem::path(__FILE__).parent_path() / ".." / "tests" / "ble" / "bluez_mock_driver.py")
                          .lexically_normal()
                          .string());
    } catch (const std::exception& e) {
        fmt::print(stderr, "ble_bench: {}\n", e.what());
        return 1;
    }
    return 0;
}
