// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The BLE detector service: scanner -> decoder -> aggregator -> per-company queues -> delivery.
#include "mimamori/ble/service.hpp"

#include "mimamori/common/log.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace mimamori::ble {

namespace {

constexpr const char* kLog = "ble";
// How often the worker threads look at the clock. Short so visits close and deliveries start
// promptly; each look is a few comparisons unless something is due.
constexpr auto kTick = std::chrono::milliseconds(200);
constexpr std::int64_t kPruneMicros = 600 * common::kMicrosPerSecond;
// Passages the disk refused, kept for the next attempt; beyond this the oldest are lost (logged).
constexpr std::size_t kMaxUnwritten = 10'000;

std::vector<std::string> companyNames(const ServiceConfig& c) {
    std::vector<std::string> names;
    for (const auto& company : c.companies) names.push_back(company.rules.name);
    return names;
}

std::vector<CompanyRules> companyRules(const ServiceConfig& c) {
    std::vector<CompanyRules> rules;
    for (const auto& company : c.companies) rules.push_back(company.rules);
    return rules;
}

}  // namespace

class Service::Impl {
public:
    Impl(const ServiceConfig& config, const std::string& cameraId, const std::filesystem::path& stateDir,
         const common::Clock& clock)
        : config_(config), cameraId_(cameraId), clock_(clock), decoder_(companyRules(config)),
          aggregator_(config.aggregator, companyNames(config), cameraId) {
        for (const auto& c : config_.companies) {
            queues_.push_back(std::make_unique<PassageQueue>(companyQueueDir(stateDir, c.rules.name),
                                                             c.rules.name, config_.queue));
            queues_.back()->counters();  // fails here, at start, when the state dir is unusable
        }
        unwritten_.resize(config_.companies.size());
        // Generation 1 against delivered 0: whatever an earlier run left is due for delivery now.
        generations_ = std::vector<std::atomic<std::uint64_t>>(config_.companies.size());
        for (auto& g : generations_) g = 1;
    }

    // Also reached when start() fails half-way: threads must never be left joinable.
    ~Impl() { stop(); }

    void start() {
        closer_ = std::thread([this] { closerLoop(); });
        deliverer_ = std::thread([this] { delivererLoop(); });
        scanner_ = Scanner::start(config_.scanner, clock_, [this](const Advertisement& ad) { return onAdvertisement(ad); });
    }

    void stop() {
        if (scanner_) scanner_->stop();
        {
            std::lock_guard lock(wakeMutex_);
            if (stopping_) return;
            stopping_ = true;
        }
        wake_.notify_all();
        if (closer_.joinable()) closer_.join();
        if (deliverer_.joinable()) deliverer_.join();
    }

    ServiceStats stats() const {
        ServiceStats s;
        if (scanner_) s.scanner = scanner_->stats();
        {
            std::lock_guard lock(aggregatorMutex_);
            s.openVisits = aggregator_.openVisits();
        }
        s.sightings = sightings_;
        s.passagesQueued = queued_;
        s.passagesDelivered = delivered_;
        s.deliveryFailures = deliveryFailures_;
        return s;
    }

private:
    // Scanner thread: pure decoding, then a short critical section. Unmatched ads end here.
    bool onAdvertisement(const Advertisement& ad) {
        auto sighting = decoder_.decode(ad);
        if (!sighting) return false;
        std::lock_guard lock(aggregatorMutex_);
        if (aggregator_.observe(*sighting)) ++sightings_;
        return true;
    }

    bool waitTick() {
        std::unique_lock lock(wakeMutex_);
        wake_.wait_for(lock, kTick, [&] { return stopping_; });
        return !stopping_;
    }

    void closerLoop() {
        while (waitTick()) {
            std::vector<Passage> closed;
            {
                std::lock_guard lock(aggregatorMutex_);
                closed = aggregator_.closeIdle(clock_.monotonicMicros());
            }
            store(std::move(closed));
        }
        // Shutdown: visits in progress end at their last sighting.
        std::vector<Passage> rest;
        {
            std::lock_guard lock(aggregatorMutex_);
            rest = aggregator_.closeAll();
        }
        store(std::move(rest));
    }

    void store(std::vector<Passage> closed) {
        for (auto& p : closed) {
            for (std::size_t c = 0; c < config_.companies.size(); ++c)
                if (config_.companies[c].rules.name == p.company) unwritten_[c].push_back(std::move(p));
        }
        for (std::size_t c = 0; c < queues_.size(); ++c) {
            auto& pending = unwritten_[c];
            if (pending.empty()) continue;
            const auto count = pending.size();
            try {
                queues_[c]->append(pending, clock_.nowUtc());
                pending.clear();
                queued_ += count;
                ++generations_[c];
            } catch (const std::exception& e) {
                common::logError(kLog, "cannot queue {} passages of {}: {}", count, queues_[c]->company(), e.what());
                if (pending.size() > kMaxUnwritten) {
                    common::logError(kLog, "lost the {} oldest unwritten passages of {}", pending.size() - kMaxUnwritten,
                                     queues_[c]->company());
                    pending.erase(pending.begin(), pending.end() - static_cast<long>(kMaxUnwritten));
                }
            }
        }
    }

    // Per company, deliverer thread only.
    struct DeliveryState {
        std::uint64_t deliveredGeneration = 0;  // queue generation last emptied by a delivery
        std::int64_t nextAttempt = 0;           // monotonic micros
        std::int64_t backoff = 0;
        std::int64_t lastPrune = 0;
    };

    void delivererLoop() {
        std::vector<DeliveryState> states(queues_.size());
        for (auto& s : states) s.backoff = config_.delivery.retryMinMicros;
        while (waitTick()) {
            for (std::size_t c = 0; c < queues_.size(); ++c) {
                auto& state = states[c];
                const auto now = clock_.monotonicMicros();
                if (now - state.lastPrune >= kPruneMicros) {
                    // Companies without an endpoint still lose passages past the age limit.
                    try {
                        queues_[c]->peek(0, clock_.nowUtc());
                    } catch (const std::exception& e) {
                        common::logError(kLog, "queue of {}: {}", queues_[c]->company(), e.what());
                    }
                    state.lastPrune = now;
                }
                const std::uint64_t generation = generations_[c];
                if (config_.companies[c].endpoint.empty() || generation == state.deliveredGeneration ||
                    now < state.nextAttempt)
                    continue;
                if (deliver(c, state, now)) state.deliveredGeneration = generation;
            }
        }
    }

    // One attempt to empty company c's queue; false when it failed (back-off set).
    bool deliver(std::size_t c, DeliveryState& state, std::int64_t now) {
        DeliveryResult r;
        try {
            r = deliverPending(*queues_[c], config_.companies[c].endpoint, cameraId_, config_.delivery, clock_.nowUtc(),
                               [this] {
                                   std::lock_guard lock(wakeMutex_);
                                   return stopping_;
                               });
        } catch (const std::exception& e) {
            r.failed = true;
            r.error = e.what();
        }
        delivered_ += r.delivered;
        if (r.delivered > 0) common::logInfo(kLog, "delivered {} passages to {}", r.delivered, queues_[c]->company());
        if (!r.failed) {
            state.backoff = config_.delivery.retryMinMicros;
            return true;
        }
        ++deliveryFailures_;
        common::logWarning(kLog, "delivery to {} failed: {}; next try in {:.1f} s", queues_[c]->company(), r.error,
                           static_cast<double>(state.backoff) / 1e6);
        state.nextAttempt = now + state.backoff;
        state.backoff = std::min(state.backoff * 2, config_.delivery.retryMaxMicros);
        return false;
    }

    ServiceConfig config_;
    std::string cameraId_;
    const common::Clock& clock_;
    TagDecoder decoder_;
    mutable std::mutex aggregatorMutex_;
    PassageAggregator aggregator_;
    std::vector<std::unique_ptr<PassageQueue>> queues_;
    std::vector<std::vector<Passage>> unwritten_;  // closer thread only
    std::unique_ptr<Scanner> scanner_;

    std::mutex wakeMutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::vector<std::atomic<std::uint64_t>> generations_;  // bumped by every append to a queue

    std::atomic<std::uint64_t> sightings_{0};
    std::atomic<std::uint64_t> queued_{0};
    std::atomic<std::uint64_t> delivered_{0};
    std::atomic<std::uint64_t> deliveryFailures_{0};
    std::thread closer_;
    std::thread deliverer_;
};

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<Service> Service::start(const ServiceConfig& config, const std::string& cameraId,
                                        const std::filesystem::path& stateDir, const common::Clock& clock) {
    if (!config.enabled) return nullptr;
    auto impl = std::make_unique<Impl>(config, cameraId, stateDir, clock);
    impl->start();
    common::logInfo(kLog, "BLE detector started for {} companies", config.companies.size());
    return std::unique_ptr<Service>(new Service(std::move(impl)));
}

Service::~Service() { stop(); }

void Service::stop() {
    if (impl_) impl_->stop();
}

ServiceStats Service::stats() const { return impl_->stats(); }

}  // namespace mimamori::ble
