// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// BlueZ scanner over sdbus-c++: own thread and connection, re-attach with back-off, device sweep.
#include "mimamori/ble/scanner.hpp"

#include "device_props.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/log.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <sdbus-c++/sdbus-c++.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <mutex>
#include <thread>

namespace mimamori::ble {

namespace {

constexpr const char* kBluez = "org.bluez";
constexpr const char* kAdapter1 = "org.bluez.Adapter1";
constexpr const char* kDevice1 = "org.bluez.Device1";
constexpr const char* kLog = "ble";
constexpr std::uint64_t kMethodTimeoutMicros = 5'000'000;

using Properties = std::map<std::string, sdbus::Variant>;
using InterfaceMap = std::map<std::string, Properties>;

std::int64_t steadyMicros() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

bool flagSet(const Properties& props, const char* name) {
    const auto it = props.find(name);
    return it != props.end() && it->second.containsValueOfType<bool>() && it->second.get<bool>();
}

}  // namespace

class BluezObjectManager;

class Scanner::Impl {
public:
    Impl(ScannerConfig config, const common::Clock& clock, Sink sink)
        : config_(std::move(config)), clock_(clock), sink_(std::move(sink)),
          wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
        if (!wake_.valid()) throw common::FileError("ble scanner: eventfd failed");
        backoff_ = config_.reattachMinMicros;
    }

    void run();
    void requestStop() {
        stopping_ = true;
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto n = ::write(wake_.get(), &one, sizeof one);
    }
    ScannerStats stats() const {
        std::lock_guard lock(statsMutex_);
        return stats_;
    }

    // Signal handlers run inside sd-bus (C): nothing may escape them. A malformed signal is
    // dropped with a debug line.
    template <typename F>
    static void guarded(F f) noexcept {
        try {
            f();
        } catch (const sdbus::Error& e) {
            common::logDebug(kLog, "ignoring a malformed BlueZ signal: {}", e.getMessage());
        } catch (const std::exception& e) {
            common::logError(kLog, "BlueZ signal handler failed: {}", e.what());
        }
    }

    // Called by the ObjectManager proxy on the scanner thread.
    void interfacesAdded(const std::string& path, const InterfaceMap& interfaces);
    void interfacesRemoved(const std::string& path, const std::vector<std::string>& interfaces);

    std::thread thread;

private:
    void connect();
    void dropConnection(const std::string& why);
    void attach();
    void detach(const std::string& why);
    void failAttempt(const std::string& why);
    void sweep();
    void deviceUpdate(const std::string& path, const Properties& props);
    void propertiesChanged(sdbus::Message& msg);
    void nameOwnerChanged(sdbus::Message& msg);
    void processPending();
    void waitForEvents();
    bool underAdapter(const std::string& path) const {
        return !adapterPath_.empty() && path.size() > adapterPath_.size() &&
               path.compare(0, adapterPath_.size(), adapterPath_) == 0 && path[adapterPath_.size()] == '/';
    }
    bool wantedAdapter(const std::string& path) const {
        if (config_.adapter.empty()) return true;
        const std::string suffix = "/" + config_.adapter;
        return path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
    }
    template <typename F>
    void updateStats(F f) {
        std::lock_guard lock(statsMutex_);
        f(stats_);
    }

    ScannerConfig config_;
    const common::Clock& clock_;
    Sink sink_;
    common::UniqueFd wake_;
    std::atomic<bool> stopping_{false};

    // Everything below belongs to the scanner thread.
    std::unique_ptr<sdbus::IConnection> connection_;
    std::unique_ptr<BluezObjectManager> objectManager_;
    std::unique_ptr<sdbus::IProxy> adapter_;
    sdbus::Slot propertiesMatch_;
    sdbus::Slot ownerMatch_;
    std::string bluezOwner_;   // unique name of org.bluez's owner; signals from others are ignored
    std::string adapterPath_;  // set while attached
    bool attached_ = false;
    std::int64_t nextAttempt_ = 0;  // steady micros
    std::int64_t nextSweep_ = 0;
    std::int64_t backoff_ = 0;
    // Tag devices only: their last advertising data, to complete RSSI-only updates.
    struct Tracked {
        std::string address;
        std::map<std::uint16_t, Bytes> manufacturerData;
        std::map<std::string, Bytes> serviceData;
    };
    std::map<std::string, Tracked> tracked_;

    mutable std::mutex statsMutex_;
    ScannerStats stats_;
};

// The ObjectManager client in sdbus-c++'s style: signals forwarded to the scanner.
class BluezObjectManager final : public sdbus::ProxyInterfaces<sdbus::ObjectManager_proxy> {
public:
    BluezObjectManager(sdbus::IConnection& connection, Scanner::Impl& owner)
        : ProxyInterfaces(connection, kBluez, "/"), owner_(owner) {
        registerProxy();
    }
    ~BluezObjectManager() { unregisterProxy(); }

private:
    void onInterfacesAdded(const sdbus::ObjectPath& path, const InterfaceMap& interfaces) override {
        Scanner::Impl::guarded([&] { owner_.interfacesAdded(path, interfaces); });
    }
    void onInterfacesRemoved(const sdbus::ObjectPath& path, const std::vector<std::string>& interfaces) override {
        Scanner::Impl::guarded([&] { owner_.interfacesRemoved(path, interfaces); });
    }
    Scanner::Impl& owner_;
};

void Scanner::Impl::run() {
    while (!stopping_) {
        try {
            const auto now = steadyMicros();
            if (!connection_ && now >= nextAttempt_) connect();
            if (connection_ && !attached_ && now >= nextAttempt_) attach();
            if (attached_ && now >= nextSweep_) sweep();
            processPending();
            if (!stopping_) waitForEvents();
        } catch (const std::exception& e) {
            // Never take the daemon down: start over on a fresh connection after a back-off.
            dropConnection(fmt::format("unexpected scanner error: {}", e.what()));
        }
    }
    if (attached_ && adapter_) {
        try {
            adapter_->callMethod("StopDiscovery").onInterface(kAdapter1);
        } catch (const sdbus::Error& e) {
            common::logDebug(kLog, "StopDiscovery at shutdown: {}", e.getMessage());
        }
    }
    detach("stopping");
    adapter_.reset();
    objectManager_.reset();
    propertiesMatch_.reset();
    ownerMatch_.reset();
    connection_.reset();
}

void Scanner::Impl::connect() {
    try {
        connection_ = config_.busAddress.empty() ? sdbus::createSystemBusConnection()
                                                 : sdbus::createSessionBusConnectionWithAddress(config_.busAddress);
        connection_->setMethodCallTimeout(kMethodTimeoutMicros);
        // One match for every device's PropertiesChanged instead of one proxy per device.
        propertiesMatch_ = connection_->addMatch(
            "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
            "path_namespace='/org/bluez'",
            [this](sdbus::Message& msg) { guarded([&] { propertiesChanged(msg); }); });
        ownerMatch_ = connection_->addMatch(
            "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
            "member='NameOwnerChanged',arg0='org.bluez'",
            [this](sdbus::Message& msg) { guarded([&] { nameOwnerChanged(msg); }); });
        objectManager_ = std::make_unique<BluezObjectManager>(*connection_, *this);
        nextAttempt_ = 0;
    } catch (const sdbus::Error& e) {
        dropConnection(fmt::format("cannot connect to the {} bus: {}",
                                   config_.busAddress.empty() ? "system" : config_.busAddress, e.getMessage()));
    }
}

void Scanner::Impl::dropConnection(const std::string& why) {
    detach(why);
    adapter_.reset();
    objectManager_.reset();
    propertiesMatch_.reset();
    ownerMatch_.reset();
    connection_.reset();
    failAttempt(why);
}

void Scanner::Impl::failAttempt(const std::string& why) {
    common::logWarning(kLog, "{}; retrying in {:.1f} s", why, static_cast<double>(backoff_) / 1e6);
    nextAttempt_ = steadyMicros() + backoff_;
    backoff_ = std::min(backoff_ * 2, config_.reattachMaxMicros);
}

void Scanner::Impl::attach() {
    try {
        auto bus = sdbus::createProxy(*connection_, "org.freedesktop.DBus", "/org/freedesktop/DBus");
        bus->callMethod("GetNameOwner").onInterface("org.freedesktop.DBus").withArguments(std::string(kBluez))
            .storeResultsTo(bluezOwner_);
        const auto objects = objectManager_->GetManagedObjects();
        std::string found;
        for (const auto& [path, interfaces] : objects)
            if (interfaces.count(kAdapter1) && wantedAdapter(path)) {
                found = path;
                break;
            }
        if (found.empty()) {
            failAttempt(config_.adapter.empty() ? std::string("no Bluetooth adapter")
                                                : "no Bluetooth adapter " + config_.adapter);
            return;
        }
        adapter_ = sdbus::createProxy(*connection_, kBluez, found);
        const Properties filter{{"Transport", sdbus::Variant(std::string("le"))},
                                {"DuplicateData", sdbus::Variant(true)}};
        adapter_->callMethod("SetDiscoveryFilter").onInterface(kAdapter1).withArguments(filter);
        adapter_->callMethod("StartDiscovery").onInterface(kAdapter1);
        adapterPath_ = found;
        attached_ = true;
        backoff_ = config_.reattachMinMicros;
        for (const auto& [path, interfaces] : objects) {
            const auto dev = interfaces.find(kDevice1);
            if (dev != interfaces.end() && underAdapter(path)) deviceUpdate(path, dev->second);
        }
        sweep();  // clear what an earlier run (or bluetoothd's cache) left behind
        updateStats([&](ScannerStats& s) {
            s.attached = true;
            s.adapterPath = found;
            ++s.attaches;
        });
        common::logInfo(kLog, "scanning on {}", found);
    } catch (const sdbus::Error& e) {
        adapter_.reset();
        adapterPath_.clear();
        attached_ = false;
        failAttempt(fmt::format("cannot start discovery: {}: {}", e.getName(), e.getMessage()));
    }
}

void Scanner::Impl::detach(const std::string& why) {
    if (attached_) common::logWarning(kLog, "stopped scanning on {}: {}", adapterPath_, why);
    attached_ = false;
    adapterPath_.clear();
    adapter_.reset();
    tracked_.clear();
    updateStats([](ScannerStats& s) {
        s.attached = false;
        s.adapterPath.clear();
        s.trackedDevices = 0;
    });
}

void Scanner::Impl::sweep() {
    // Every Device1 our discovery created and nobody paired or connected: BlueZ would otherwise
    // keep one object per passing phone. A tag still nearby is simply added again on its next
    // advertisement.
    std::vector<std::string> stale;
    try {
        for (const auto& [path, interfaces] : objectManager_->GetManagedObjects()) {
            const auto dev = interfaces.find(kDevice1);
            if (dev == interfaces.end() || !underAdapter(path)) continue;
            const auto& p = dev->second;
            if (!flagSet(p, "Paired") && !flagSet(p, "Connected") && !flagSet(p, "Trusted")) stale.push_back(path);
        }
        std::uint64_t removed = 0;
        for (const auto& path : stale) {
            try {
                adapter_->callMethod("RemoveDevice").onInterface(kAdapter1).withArguments(sdbus::ObjectPath(path));
                ++removed;
            } catch (const sdbus::Error& e) {
                if (e.getName() != "org.bluez.Error.DoesNotExist") throw;
            }
        }
        updateStats([&](ScannerStats& s) { s.devicesRemoved += removed; });
    } catch (const sdbus::Error& e) {
        common::logWarning(kLog, "device sweep on {}: {}: {}", adapterPath_, e.getName(), e.getMessage());
    }
    nextSweep_ = steadyMicros() + config_.sweepMicros;
}

void Scanner::Impl::interfacesAdded(const std::string& path, const InterfaceMap& interfaces) {
    if (!attached_) {
        if (interfaces.count(kAdapter1) && wantedAdapter(path)) {
            backoff_ = config_.reattachMinMicros;
            nextAttempt_ = 0;  // an adapter appeared: attach right away
        }
        return;
    }
    const auto dev = interfaces.find(kDevice1);
    if (dev != interfaces.end() && underAdapter(path)) deviceUpdate(path, dev->second);
}

void Scanner::Impl::interfacesRemoved(const std::string& path, const std::vector<std::string>& interfaces) {
    const bool has = [&](const char* name) {
        return std::find(interfaces.begin(), interfaces.end(), name) != interfaces.end();
    }(kAdapter1);
    if (attached_ && path == adapterPath_ && has) {
        detach("the adapter went away");
        backoff_ = config_.reattachMinMicros;
        failAttempt("waiting for the adapter");
        return;
    }
    if (std::find(interfaces.begin(), interfaces.end(), kDevice1) != interfaces.end() && tracked_.erase(path) > 0)
        updateStats([&](ScannerStats& s) { s.trackedDevices = tracked_.size(); });
}

void Scanner::Impl::propertiesChanged(sdbus::Message& msg) {
    if (!attached_ || msg.getSender() != bluezOwner_) return;
    const std::string path = msg.getPath();
    if (!underAdapter(path)) return;
    std::string interface;
    msg >> interface;
    if (interface != kDevice1) return;
    Properties changed;
    msg >> changed;
    deviceUpdate(path, changed);
}

void Scanner::Impl::nameOwnerChanged(sdbus::Message& msg) {
    std::string name, oldOwner, newOwner;
    msg >> name >> oldOwner >> newOwner;
    if (name != kBluez) return;
    if (newOwner.empty()) {
        detach("bluetoothd left the bus");
        bluezOwner_.clear();
        backoff_ = config_.reattachMinMicros;
        nextAttempt_ = std::numeric_limits<std::int64_t>::max() / 2;  // wait for it to come back
    } else {
        detach("bluetoothd restarted");
        bluezOwner_ = newOwner;
        backoff_ = config_.reattachMinMicros;
        nextAttempt_ = 0;
    }
}

void Scanner::Impl::deviceUpdate(const std::string& path, const Properties& props) {
    detail::DeviceUpdate u;
    try {
        u = detail::parseDeviceProperties(props);
    } catch (const sdbus::Error& e) {
        common::logDebug(kLog, "ignoring malformed Device1 update: {}", e.getMessage());
        return;
    }
    auto it = tracked_.find(path);
    Advertisement ad;
    if (it != tracked_.end()) {
        if (u.address) it->second.address = *u.address;
        if (u.manufacturerData) it->second.manufacturerData = *u.manufacturerData;
        if (u.serviceData) it->second.serviceData = *u.serviceData;
        ad.address = it->second.address;
        ad.manufacturerData = it->second.manufacturerData;
        ad.serviceData = it->second.serviceData;
    } else {
        // Unknown device: only advertising data in this very update can make it a tag.
        if (!u.manufacturerData && !u.serviceData) {
            updateStats([](ScannerStats& s) { ++s.updates; });
            return;
        }
        ad.address = u.address ? *u.address : detail::addressFromPath(path);
        if (u.manufacturerData) ad.manufacturerData = std::move(*u.manufacturerData);
        if (u.serviceData) ad.serviceData = std::move(*u.serviceData);
    }
    ad.rssi = u.rssi;
    ad.time = clock_.nowUtc();
    ad.monotonic = clock_.monotonicMicros();
    bool matched = false;
    try {
        matched = sink_(ad);
    } catch (const std::exception& e) {
        common::logError(kLog, "advertisement handler failed: {}", e.what());
    }
    if (matched && it == tracked_.end()) {
        tracked_.emplace(path, Tracked{ad.address, std::move(ad.manufacturerData), std::move(ad.serviceData)});
    } else if (!matched && it != tracked_.end()) {
        tracked_.erase(it);  // no longer a registered tag's advertisement: forget it
    }
    updateStats([&](ScannerStats& s) {
        ++s.updates;
        if (matched) ++s.matched;
        s.trackedDevices = tracked_.size();
    });
}

void Scanner::Impl::processPending() {
    if (!connection_) return;
    try {
        while (!stopping_ && connection_->processPendingRequest()) {
        }
    } catch (const sdbus::Error& e) {
        dropConnection(fmt::format("D-Bus connection failed: {}", e.getMessage()));
    }
}

void Scanner::Impl::waitForEvents() {
    const auto now = steadyMicros();
    std::int64_t deadline = std::numeric_limits<std::int64_t>::max();
    if (!connection_ || !attached_) deadline = nextAttempt_;
    if (attached_) deadline = std::min(deadline, nextSweep_);
    pollfd fds[2] = {{wake_.get(), POLLIN, 0}, {-1, 0, 0}};
    nfds_t count = 1;
    if (connection_) {
        const auto pd = connection_->getEventLoopPollData();
        fds[1] = {pd.fd, pd.events, 0};
        count = 2;
        if (pd.timeout_usec != std::numeric_limits<std::uint64_t>::max()) {
            timespec ts{};
            ::clock_gettime(CLOCK_MONOTONIC, &ts);
            const auto monoNow = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
            const auto busIn = static_cast<std::int64_t>(pd.timeout_usec) - monoNow;
            deadline = std::min(deadline, now + std::max<std::int64_t>(busIn, 0));
        }
    }
    int timeoutMs = -1;
    if (deadline != std::numeric_limits<std::int64_t>::max()) {
        const auto ms = (std::max<std::int64_t>(deadline - now, 0) + 999) / 1000;
        timeoutMs = static_cast<int>(std::min<std::int64_t>(ms, 60'000));
    } else {
        timeoutMs = 60'000;
    }
    const int n = ::poll(fds, count, timeoutMs);
    if (n < 0) return;  // EINTR: just go round
    if (fds[0].revents & POLLIN) {
        std::uint64_t value = 0;
        [[maybe_unused]] const auto r = ::read(wake_.get(), &value, sizeof value);
    }
    if (count == 2 && (fds[1].revents & (POLLHUP | POLLERR | POLLNVAL)))
        dropConnection("the D-Bus connection closed");
}

Scanner::Scanner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<Scanner> Scanner::start(ScannerConfig config, const common::Clock& clock, Sink sink) {
    auto impl = std::make_unique<Impl>(std::move(config), clock, std::move(sink));
    Impl* raw = impl.get();
    raw->thread = std::thread([raw] { raw->run(); });
    return std::unique_ptr<Scanner>(new Scanner(std::move(impl)));
}

Scanner::~Scanner() { stop(); }

void Scanner::stop() {
    if (!impl_ || !impl_->thread.joinable()) return;
    impl_->requestStop();
    impl_->thread.join();
}

ScannerStats Scanner::stats() const { return impl_->stats(); }

}  // namespace mimamori::ble
