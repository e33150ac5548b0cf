// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The per-company passage queue: append-only JSON lines with fsync, atomic rewrites, flock.
#include "mimamori/ble/queue.hpp"

#include "mimamori/common/log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>

namespace mimamori::ble {

namespace fs = std::filesystem;

namespace {

constexpr const char* kQueueFile = "queue.jsonl";
constexpr const char* kStateFile = "state.json";
constexpr const char* kLockFile = "lock";

std::string errnoText(int err) { return std::strerror(err); }

}  // namespace

// The queue's content while the lock is held; written back explicitly.
struct PassageQueue::Locked {
    common::UniqueFd lock;
    fs::path dir;
    QueueCounters counters;
    std::vector<Passage> passages;
    std::vector<std::string> lines;  // passages[i] serialised, with the newline
    std::uint64_t bytes = 0;
    bool tornTail = false;           // the file ends inside a line (power cut during append)

    explicit Locked(const fs::path& d) : dir(d) {
        lock.reset(::open((dir / kLockFile).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        if (!lock.valid())
            throw common::FileError(fmt::format("{}: {}", (dir / kLockFile).string(), errnoText(errno)));
        while (::flock(lock.get(), LOCK_EX) != 0) {
            if (errno != EINTR)
                throw common::FileError(fmt::format("{}: flock: {}", (dir / kLockFile).string(), errnoText(errno)));
        }
        load();
    }

    void load() {
        const fs::path statePath = dir / kStateFile;
        if (fs::exists(statePath)) {
            const auto j = nlohmann::json::parse(common::readFile(statePath), nullptr, false);
            if (j.is_object()) {
                counters.nextSeq = j.value("next_seq", std::uint64_t{1});
                counters.droppedFull = j.value("dropped_full", std::uint64_t{0});
                counters.expired = j.value("expired", std::uint64_t{0});
            } else {
                common::logWarning("ble", "{}: unreadable, counters restart from the queue's content",
                                   statePath.string());
            }
        }
        const fs::path queuePath = dir / kQueueFile;
        if (!fs::exists(queuePath)) return;
        const std::string content = common::readFile(queuePath);
        std::size_t start = 0;
        while (start < content.size()) {
            const auto end = content.find('\n', start);
            if (end == std::string::npos) {
                tornTail = true;  // the last append never completed: not a passage
                break;
            }
            const std::string_view line(content.data() + start, end - start);
            if (auto p = passageFromJson(line)) {
                if (p->seq >= counters.nextSeq) counters.nextSeq = p->seq + 1;
                lines.emplace_back(content.substr(start, end - start + 1));
                bytes += lines.back().size();
                passages.push_back(std::move(*p));
            } else {
                common::logWarning("ble", "{}: skipping a malformed line at byte {}", queuePath.string(), start);
                tornTail = true;  // forces a rewrite without it
            }
            start = end + 1;
        }
    }

    // Removes passages older than the age limit; returns how many.
    std::size_t expire(common::UtcMicros now, std::int64_t maxAge) {
        std::size_t n = 0;
        for (std::size_t i = 0; i < passages.size();) {
            if (now - passages[i].lastSeen > maxAge) {
                eraseAt(i);
                ++n;
            } else {
                ++i;
            }
        }
        counters.expired += n;
        return n;
    }

    void eraseAt(std::size_t i) {
        bytes -= lines[i].size();
        passages.erase(passages.begin() + static_cast<long>(i));
        lines.erase(lines.begin() + static_cast<long>(i));
    }

    void rewrite() {
        std::string all;
        all.reserve(bytes);
        for (const auto& l : lines) all += l;
        common::writeFileAtomic(dir / kQueueFile, all);
        tornTail = false;
    }

    void appendLines(std::size_t from) {
        const fs::path path = dir / kQueueFile;
        common::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
        if (!fd.valid()) throw common::FileError(fmt::format("{}: {}", path.string(), errnoText(errno)));
        std::string chunk;
        for (std::size_t i = from; i < lines.size(); ++i) chunk += lines[i];
        common::writeAll(fd.get(), std::span(reinterpret_cast<const std::uint8_t*>(chunk.data()), chunk.size()),
                         path.string());
        if (::fdatasync(fd.get()) != 0)
            throw common::FileError(fmt::format("{}: fdatasync: {}", path.string(), errnoText(errno)));
        if (from == 0) common::fsyncDirectory(dir);  // a new file's directory entry
    }

    void saveCounters() {
        const nlohmann::json j = {{"next_seq", counters.nextSeq},
                                  {"dropped_full", counters.droppedFull},
                                  {"expired", counters.expired}};
        common::writeFileAtomic(dir / kStateFile, j.dump() + "\n");
    }
};

PassageQueue::PassageQueue(fs::path dir, std::string company, QueueLimits limits)
    : dir_(std::move(dir)), company_(std::move(company)), limits_(limits) {
    // Passages name children's tags: only the daemon's user may read them.
    if (fs::create_directories(dir_)) fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace);
}

void PassageQueue::append(std::vector<Passage> passages, common::UtcMicros now) {
    if (passages.empty()) return;
    Locked q(dir_);
    bool rewrite = q.tornTail || q.expire(now, limits_.maxAgeMicros) > 0;
    const std::size_t firstNew = q.lines.size();
    for (auto& p : passages) {
        p.seq = q.counters.nextSeq++;
        p.company = company_;  // the queue is the company's: nothing else can land in it
        q.lines.push_back(passageToJson(p) + "\n");
        q.bytes += q.lines.back().size();
        q.passages.push_back(std::move(p));
    }
    std::size_t dropped = 0;
    while (q.bytes > limits_.maxBytes && !q.passages.empty()) {
        q.eraseAt(0);
        ++dropped;
    }
    if (dropped > 0) {
        q.counters.droppedFull += dropped;
        common::logWarning("ble", "queue of {} full ({} bytes): dropped the {} oldest passages", company_,
                           limits_.maxBytes, dropped);
        rewrite = true;
    }
    if (rewrite) {
        q.rewrite();
    } else {
        q.appendLines(firstNew);
    }
    q.saveCounters();
}

std::vector<Passage> PassageQueue::peek(std::size_t max, common::UtcMicros now) {
    Locked q(dir_);
    if (q.expire(now, limits_.maxAgeMicros) > 0 || q.tornTail) {
        q.rewrite();
        q.saveCounters();
    }
    if (q.passages.size() > max) q.passages.resize(max);
    return std::move(q.passages);
}

void PassageQueue::remove(std::uint64_t throughSeq) {
    Locked q(dir_);
    std::size_t removed = 0;
    while (removed < q.passages.size() && q.passages[removed].seq <= throughSeq) ++removed;
    if (removed == 0 && !q.tornTail) return;
    for (std::size_t i = 0; i < removed; ++i) q.eraseAt(0);
    q.rewrite();
    q.saveCounters();  // keeps next_seq even when the queue file is now empty
}

std::size_t PassageQueue::drain(const std::function<void(const std::vector<Passage>&)>& write,
                                common::UtcMicros now) {
    Locked q(dir_);
    if (q.expire(now, limits_.maxAgeMicros) > 0 || q.tornTail) {
        q.rewrite();
        q.saveCounters();
    }
    if (q.passages.empty()) return 0;
    write(q.passages);
    const auto n = q.passages.size();
    q.passages.clear();
    q.lines.clear();
    q.bytes = 0;
    q.rewrite();
    q.saveCounters();
    return n;
}

QueueCounters PassageQueue::counters() {
    Locked q(dir_);
    return q.counters;
}

}  // namespace mimamori::ble
