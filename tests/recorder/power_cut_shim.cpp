// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// LD_PRELOAD shim for the power-cut test: cuts mimamorid at its Nth write, fsync, rename or
// unlink of one class of file, dropping what was not yet synced, as a power cut would.
//
// Why a shim and not SIGKILL at random microseconds: the recorder sleeps between frames for
// almost all of its time, so random kills seldom land inside a write, an fsync or a rename, and a
// killed process loses nothing the kernel already holds. Here every cut is inside one of those
// calls (before it, after it, or with a write torn part-way), and the bytes written since the
// last fsync of each file survive only in part (a random length, all, or none of them).
// Directory entries (a rename, an unlink, a creation) survive a cut as the call left them: the
// shim does not model a rename that is lost for want of a directory fsync.
//
// Environment (read once, when mimamorid starts; any other program runs untouched):
//   MIMAMORI_CUT_CLASS   segment | index | key | audit | health | any
//   MIMAMORI_CUT_AT      N: cut at the Nth event of that class (1-based)
//   MIMAMORI_CUT_SEED    seeds the choice of before/torn/after and of the surviving lengths
//   MIMAMORI_CUT_REPORT  file that receives one line at the cut: "CLASS OP MODE N UTC_MICROS"
//   MIMAMORI_CUT_RING, MIMAMORI_CUT_KEYS  the ring and key directories (their fsyncs count)
//   MIMAMORI_TIME_OFFSET_US  added to CLOCK_REALTIME (to move the camera's days forward)
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>

namespace {

enum Class : int { kNone = 0, kSegment, kIndex, kKey, kAudit, kHealth, kOther, kAny };
constexpr const char* kClassNames[] = {"none", "segment", "index", "key", "audit", "health", "other", "any"};

using OpenFn = int (*)(const char*, int, ...);
using OpenAtFn = int (*)(int, const char*, int, ...);
using WriteFn = ssize_t (*)(int, const void*, size_t);
using PwriteFn = ssize_t (*)(int, const void*, size_t, off_t);
using WritevFn = ssize_t (*)(int, const iovec*, int);
using FdFn = int (*)(int);
using RenameFn = int (*)(const char*, const char*);
using RenameAtFn = int (*)(int, const char*, int, const char*);
using RenameAt2Fn = int (*)(int, const char*, int, const char*, unsigned);
using UnlinkFn = int (*)(const char*);
using UnlinkAtFn = int (*)(int, const char*, int);
using ClockFn = int (*)(clockid_t, timespec*);

struct Real {
    OpenFn open, open64;
    OpenAtFn openat, openat64;
    WriteFn write;
    PwriteFn pwrite, pwrite64;
    WritevFn writev;
    FdFn fsync, fdatasync, close;
    RenameFn rename;
    RenameAtFn renameat;
    RenameAt2Fn renameat2;
    UnlinkFn unlink;
    UnlinkAtFn unlinkat;
    ClockFn clockGettime;
};
Real real{};

template <typename F>
F sym(const char* name) {
    return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

void loadReal() {
    if (real.write) return;
    real.open = sym<OpenFn>("open");
    real.open64 = sym<OpenFn>("open64");
    real.openat = sym<OpenAtFn>("openat");
    real.openat64 = sym<OpenAtFn>("openat64");
    real.pwrite = sym<PwriteFn>("pwrite");
    real.pwrite64 = sym<PwriteFn>("pwrite64");
    real.writev = sym<WritevFn>("writev");
    real.fsync = sym<FdFn>("fsync");
    real.fdatasync = sym<FdFn>("fdatasync");
    real.close = sym<FdFn>("close");
    real.rename = sym<RenameFn>("rename");
    real.renameat = sym<RenameAtFn>("renameat");
    real.renameat2 = sym<RenameAt2Fn>("renameat2");
    real.unlink = sym<UnlinkFn>("unlink");
    real.unlinkat = sym<UnlinkAtFn>("unlinkat");
    real.clockGettime = sym<ClockFn>("clock_gettime");
    real.write = sym<WriteFn>("write");
}

// Files written since their last fsync, by inode: what a power cut may take.
constexpr int kMaxFds = 4096;
constexpr int kMaxInodes = 256;
struct Inode {
    bool used = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t synced = 0;  // length known durable
    bool dirty = false;
    int keptFd = -1;   // a descriptor kept after close(), to cut the file at the cut
    int openFds = 0;
};

struct State {
    bool active = false;
    Class target = kNone;
    long cutAt = 0;
    long seen = 0;
    std::uint64_t random = 0;
    std::int64_t offsetUs = 0;
    char report[4096] = {};
    char ring[4096] = {};
    char keys[4096] = {};
    Class fdClass[kMaxFds] = {};
    int fdInode[kMaxFds] = {};  // index + 1 into inodes; 0 = not tracked
    Inode inodes[kMaxInodes];
};
State state;
std::mutex mutex;

std::uint64_t nextRandom() {
    // xorshift64*: deterministic per seed, no locale or allocation.
    state.random ^= state.random >> 12;
    state.random ^= state.random << 25;
    state.random ^= state.random >> 27;
    return state.random * 2685821657736338717ULL;
}

void copyEnv(const char* name, char* out, std::size_t size) {
    const char* v = std::getenv(name);
    if (v) std::snprintf(out, size, "%s", v);
}

__attribute__((constructor)) void init() {
    loadReal();
    if (const char* off = std::getenv("MIMAMORI_TIME_OFFSET_US")) state.offsetUs = std::strtoll(off, nullptr, 10);
    char exe[4096] = {};
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || !std::string_view(exe, static_cast<std::size_t>(n)).ends_with("/mimamorid")) {
        state.offsetUs = 0;
        return;
    }
    const char* cls = std::getenv("MIMAMORI_CUT_CLASS");
    const char* at = std::getenv("MIMAMORI_CUT_AT");
    if (!cls || !at) return;
    for (int c = kSegment; c <= kAny; ++c)
        if (std::strcmp(cls, kClassNames[c]) == 0) state.target = static_cast<Class>(c);
    state.cutAt = std::strtol(at, nullptr, 10);
    const char* seed = std::getenv("MIMAMORI_CUT_SEED");
    state.random = (seed ? std::strtoull(seed, nullptr, 10) : 1) * 0x9E3779B97F4A7C15ULL + 1;
    copyEnv("MIMAMORI_CUT_REPORT", state.report, sizeof state.report);
    copyEnv("MIMAMORI_CUT_RING", state.ring, sizeof state.ring);
    copyEnv("MIMAMORI_CUT_KEYS", state.keys, sizeof state.keys);
    state.active = state.target != kNone && state.target != kOther && state.cutAt > 0;
}

bool endsWith(std::string_view s, std::string_view tail) { return s.ends_with(tail); }

Class classOfPath(const char* path) {
    if (!path) return kOther;
    const std::string_view p(path);
    const std::string_view base = p.substr(p.rfind('/') == std::string_view::npos ? 0 : p.rfind('/') + 1);
    if (base.starts_with("audit-FY") || base.starts_with("audit.checkpoint")) return kAudit;
    if (base.starts_with("day.key")) return kKey;
    if (base.starts_with("ring.index")) return kIndex;
    if (base.starts_with("health.json")) return kHealth;
    if (endsWith(base, ".part") || endsWith(base, ".mseg") || endsWith(base, ".rec")) return kSegment;
    // Directories whose fsync makes a rename or an unlink durable.
    std::string_view dir = p;
    while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
    if (state.ring[0] && dir == state.ring) return kSegment;
    if (state.keys[0] && dir == state.keys) return kKey;
    return kOther;
}

Inode* inodeOf(int fd) {
    if (fd < 0 || fd >= kMaxFds || state.fdInode[fd] == 0) return nullptr;
    return &state.inodes[state.fdInode[fd] - 1];
}

Inode* findInode(dev_t dev, ino_t ino, bool create) {
    Inode* freeSlot = nullptr;
    for (Inode& i : state.inodes) {
        if (i.used && i.dev == dev && i.ino == ino) return &i;
        if (!i.used && !freeSlot) freeSlot = &i;
    }
    if (!create || !freeSlot) return nullptr;
    *freeSlot = Inode{true, dev, ino, 0, false, -1, 0};
    return freeSlot;
}

void opened(int fd, const char* path, int flags) {
    if (!state.active || fd < 0 || fd >= kMaxFds) return;
    std::lock_guard lock(mutex);
    state.fdClass[fd] = classOfPath(path);
    state.fdInode[fd] = 0;
    if ((flags & O_ACCMODE) == O_RDONLY) return;
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
    Inode* i = findInode(st.st_dev, st.st_ino, true);
    if (!i) return;
    if (i->openFds == 0 && !i->dirty) i->synced = st.st_size;  // O_TRUNC: 0, or what was there
    if (flags & O_TRUNC) i->synced = 0;
    ++i->openFds;
    state.fdInode[fd] = static_cast<int>(i - state.inodes) + 1;
}

// Leaves each file written since its last fsync somewhere between its synced and its current
// length, then kills the process. Called with the mutex held; never returns.
[[noreturn]] void powerCut(const char* op, const char* mode) {
    for (Inode& i : state.inodes) {
        if (!i.used || !i.dirty) continue;
        int fd = i.keptFd;
        for (int f = 0; fd < 0 && f < kMaxFds; ++f)
            if (state.fdInode[f] == static_cast<int>(&i - state.inodes) + 1) fd = f;
        struct stat st {};
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= i.synced) continue;
        const off_t unsynced = st.st_size - i.synced;
        off_t keep = 0;
        switch (nextRandom() % 4) {
        case 0: keep = 0; break;         // nothing of it reached the card
        case 1: keep = unsynced; break;  // all of it did
        default: keep = static_cast<off_t>(nextRandom() % static_cast<std::uint64_t>(unsynced + 1));
        }
        if (ftruncate(fd, i.synced + keep) != 0) continue;
    }
    timespec now{};
    real.clockGettime(CLOCK_REALTIME, &now);
    const std::int64_t utc = static_cast<std::int64_t>(now.tv_sec) * 1000000 + now.tv_nsec / 1000 + state.offsetUs;
    if (state.report[0]) {
        char line[256];
        const int n = std::snprintf(line, sizeof line, "%s %s %s %ld %lld\n", kClassNames[state.target], op, mode,
                                    state.seen, static_cast<long long>(utc));
        const int fd = real.open(state.report, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0 && n > 0) {
            [[maybe_unused]] auto written = real.write(fd, line, static_cast<std::size_t>(n));
            real.fsync(fd);
        }
    }
    kill(getpid(), SIGKILL);
    for (;;) pause();
}

// Counts one event of class `c`; true when this is the one to cut at.
bool isCut(Class c) {
    if (!state.active || c == kNone || c == kOther) return false;
    if (state.target != kAny && state.target != c) return false;
    return ++state.seen == state.cutAt;
}

Class classOfFd(int fd) { return fd >= 0 && fd < kMaxFds ? state.fdClass[fd] : kOther; }

ssize_t writeCommon(int fd, const void* buf, size_t count, off_t offset, bool positional, PwriteFn pw) {
    auto call = [&](size_t n) { return positional ? pw(fd, buf, n, offset) : real.write(fd, buf, n); };
    if (!state.active) return call(count);
    std::lock_guard lock(mutex);
    if (isCut(classOfFd(fd))) {
        const std::uint64_t mode = nextRandom() % 3;
        if (mode == 1 && count > 1) call(1 + nextRandom() % (count - 1));
        if (mode == 2) call(count);
        if (Inode* i = inodeOf(fd)) i->dirty = true;
        powerCut(positional ? "pwrite" : "write", mode == 0 ? "before" : mode == 1 ? "torn" : "after");
    }
    const ssize_t r = call(count);
    if (r > 0)
        if (Inode* i = inodeOf(fd)) i->dirty = true;
    return r;
}

int syncCommon(int fd, FdFn fn, const char* op) {
    if (!state.active) return fn(fd);
    std::lock_guard lock(mutex);
    const bool cut = isCut(classOfFd(fd));
    const bool after = cut && nextRandom() % 2 == 1;
    if (cut && !after) powerCut(op, "before");
    const int r = fn(fd);
    if (r == 0) {
        struct stat st {};
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
            if (Inode* i = findInode(st.st_dev, st.st_ino, false)) {
                i->synced = st.st_size;
                i->dirty = false;
            }
    }
    if (cut) powerCut(op, "after");
    return r;
}

template <typename F>
int pathOp(const char* path, const char* op, F call) {
    if (!state.active) return call();
    std::lock_guard lock(mutex);
    const bool cut = isCut(classOfPath(path));
    const bool after = cut && nextRandom() % 2 == 1;
    if (cut && !after) powerCut(op, "before");
    const int r = call();
    if (cut) powerCut(op, "after");
    return r;
}

mode_t modeArg(int flags, va_list ap) {
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? static_cast<mode_t>(va_arg(ap, int)) : 0;
}

}  // namespace

extern "C" {

int open(const char* path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    const mode_t mode = modeArg(flags, ap);
    va_end(ap);
    loadReal();
    const int fd = real.open(path, flags, mode);
    opened(fd, path, flags);
    return fd;
}

int open64(const char* path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    const mode_t mode = modeArg(flags, ap);
    va_end(ap);
    loadReal();
    const int fd = real.open64(path, flags, mode);
    opened(fd, path, flags);
    return fd;
}

int openat(int dirfd, const char* path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    const mode_t mode = modeArg(flags, ap);
    va_end(ap);
    loadReal();
    const int fd = real.openat(dirfd, path, flags, mode);
    opened(fd, path, flags);
    return fd;
}

int openat64(int dirfd, const char* path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    const mode_t mode = modeArg(flags, ap);
    va_end(ap);
    loadReal();
    const int fd = real.openat64(dirfd, path, flags, mode);
    opened(fd, path, flags);
    return fd;
}

int close(int fd) {
    loadReal();
    if (state.active && fd >= 0 && fd < kMaxFds) {
        std::lock_guard lock(mutex);
        if (Inode* i = inodeOf(fd)) {
            --i->openFds;
            // Unsynced bytes outlive the descriptor in the page cache: keep a handle to cut them.
            if (i->dirty && i->keptFd < 0) i->keptFd = fcntl(fd, F_DUPFD_CLOEXEC, 512);
            if (!i->dirty && i->openFds <= 0) {
                if (i->keptFd >= 0) real.close(i->keptFd);
                *i = Inode{};
            }
        }
        state.fdClass[fd] = kNone;
        state.fdInode[fd] = 0;
    }
    return real.close(fd);
}

ssize_t write(int fd, const void* buf, size_t count) {
    loadReal();
    return writeCommon(fd, buf, count, 0, false, nullptr);
}

ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
    loadReal();
    return writeCommon(fd, buf, count, offset, true, real.pwrite);
}

ssize_t pwrite64(int fd, const void* buf, size_t count, off_t offset) {
    loadReal();
    return writeCommon(fd, buf, count, offset, true, real.pwrite64);
}

ssize_t writev(int fd, const iovec* iov, int iovcnt) {
    loadReal();
    if (!state.active || classOfFd(fd) == kOther || classOfFd(fd) == kNone) return real.writev(fd, iov, iovcnt);
    // Our own code never uses writev on these files; count it as one write, cut before it.
    std::lock_guard lock(mutex);
    if (isCut(classOfFd(fd))) powerCut("writev", "before");
    const ssize_t r = real.writev(fd, iov, iovcnt);
    if (r > 0)
        if (Inode* i = inodeOf(fd)) i->dirty = true;
    return r;
}

int fsync(int fd) {
    loadReal();
    return syncCommon(fd, real.fsync, "fsync");
}

int fdatasync(int fd) {
    loadReal();
    return syncCommon(fd, real.fdatasync, "fdatasync");
}

int rename(const char* from, const char* to) noexcept {
    loadReal();
    return pathOp(from, "rename", [&] { return real.rename(from, to); });
}

int renameat(int fromDir, const char* from, int toDir, const char* to) noexcept {
    loadReal();
    return pathOp(from, "rename", [&] { return real.renameat(fromDir, from, toDir, to); });
}

int renameat2(int fromDir, const char* from, int toDir, const char* to, unsigned flags) noexcept {
    loadReal();
    return pathOp(from, "rename", [&] { return real.renameat2(fromDir, from, toDir, to, flags); });
}

int unlink(const char* path) noexcept {
    loadReal();
    return pathOp(path, "unlink", [&] { return real.unlink(path); });
}

int unlinkat(int dirfd, const char* path, int flags) noexcept {
    loadReal();
    return pathOp(path, "unlink", [&] { return real.unlinkat(dirfd, path, flags); });
}

int clock_gettime(clockid_t id, timespec* ts) noexcept {
    loadReal();
    const int r = real.clockGettime(id, ts);
    if (r == 0 && state.offsetUs != 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
        std::int64_t ns = static_cast<std::int64_t>(ts->tv_nsec) + (state.offsetUs % 1000000) * 1000;
        std::int64_t s = static_cast<std::int64_t>(ts->tv_sec) + state.offsetUs / 1000000;
        if (ns >= 1000000000) {
            ns -= 1000000000;
            ++s;
        } else if (ns < 0) {
            ns += 1000000000;
            --s;
        }
        ts->tv_sec = static_cast<time_t>(s);
        ts->tv_nsec = static_cast<long>(ns);
    }
    return r;
}

}  // extern "C"
