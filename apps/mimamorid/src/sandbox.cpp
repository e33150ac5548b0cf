// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The endpoint process's sandbox: rlimits, Landlock write rules, a seccomp filter.
#include "mimamori/daemon/sandbox.hpp"

#include "mimamori/common/log.hpp"

#include <fmt/format.h>
#include <seccomp.h>

#include <fcntl.h>
#include <linux/landlock.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MIMAMORI_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MIMAMORI_SANITIZED 1
#endif
#endif
#ifndef MIMAMORI_SANITIZED
#define MIMAMORI_SANITIZED 0
#endif

// Landlock ABI 3 (Linux 6.2), newer than Debian 12's headers; the value is the kernel's ABI.
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

namespace mimamori::daemon {
namespace {

namespace fs = std::filesystem;
constexpr std::string_view kLog = "endpoint";
constexpr bool kSanitized = MIMAMORI_SANITIZED != 0;

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(fmt::format("sandbox: {}: {}", what, std::strerror(errno)));
}

void setLimit(int resource, std::uint64_t value, const char* name) {
    const rlimit limit{static_cast<rlim_t>(value), static_cast<rlim_t>(value)};
    if (::setrlimit(resource, &limit) != 0) fail(fmt::format("{} {}", name, value));
}

// Sanitizers write their reports where their options say: that directory stays writable.
void addSanitizerLogDirs(std::vector<fs::path>& writable) {
    for (const char* variable : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
        const char* options = std::getenv(variable);
        if (!options) continue;
        const std::string text = options;
        const auto at = text.find("log_path=");
        if (at == std::string::npos) continue;
        const fs::path path = text.substr(at + 9, text.find(':', at) - (at + 9));
        if (path.has_parent_path()) writable.push_back(path.parent_path());
    }
}

// Writes (create, write, truncate, rename, remove, link) only beneath `writable`; reads and
// everything else as before. Returns false when the kernel has no Landlock.
bool restrictWrites(const std::vector<fs::path>& writable) {
    const long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1) return false;
    std::uint64_t handled = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                            LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
                            LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
                            LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
    if (abi >= 2) handled |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3) handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
    landlock_ruleset_attr attr{};
    attr.handled_access_fs = handled;
    common::UniqueFd ruleset(static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0)));
    if (!ruleset.valid()) fail("landlock_create_ruleset");
    for (const fs::path& dir : writable) {
        common::UniqueFd fd(::open(dir.c_str(), O_PATH | O_CLOEXEC | O_DIRECTORY));
        if (!fd.valid()) fail(fmt::format("open {}", dir.string()));
        landlock_path_beneath_attr beneath{};
        beneath.allowed_access = handled & ~static_cast<std::uint64_t>(LANDLOCK_ACCESS_FS_EXECUTE);
        beneath.parent_fd = fd.get();
        if (::syscall(SYS_landlock_add_rule, ruleset.get(), LANDLOCK_RULE_PATH_BENEATH, &beneath, 0) != 0)
            fail(fmt::format("landlock_add_rule {}", dir.string()));
    }
    if (::syscall(SYS_landlock_restrict_self, ruleset.get(), 0) != 0) fail("landlock_restrict_self");
    return true;
}

struct FilterDeleter {
    void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};

// What a server of HTTP requests never does: start programs or processes, trace, change
// identity, mount, load code into the kernel, set the clock. They fail with EPERM (the
// attempt is an error the code handles, not a crash of a half-written request).
void installSeccomp() {
    std::unique_ptr<void, FilterDeleter> ctx(seccomp_init(SCMP_ACT_ALLOW));
    if (!ctx) fail("seccomp_init");
    auto deny = [&](const char* name) {
        const int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR) return;  // not on this architecture
        if (seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0) != 0) fail(fmt::format("seccomp rule {}", name));
    };
    for (const char* name :
         {"execve", "execveat", "fork", "vfork", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
          "setgroups", "setfsuid", "setfsgid", "capset", "mount", "umount2", "pivot_root", "chroot", "move_mount",
          "open_tree", "fsopen", "fsmount", "fsconfig", "fspick", "unshare", "setns", "init_module", "finit_module",
          "delete_module", "kexec_load", "kexec_file_load", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
          "personality", "swapon", "swapoff", "reboot", "acct", "settimeofday", "clock_settime", "clock_adjtime",
          "adjtimex", "sethostname", "setdomainname", "iopl", "ioperm", "mknod", "mknodat", "userfaultfd",
          "io_uring_setup", "io_uring_enter", "io_uring_register", "open_by_handle_at", "name_to_handle_at",
          "fanotify_init", "quotactl", "syslog", "kcmp", "process_vm_writev", "pidfd_getfd", "memfd_create"})
        deny(name);
    // LeakSanitizer stops the world at exit with a traced helper process: sanitized builds keep it.
    if (!kSanitized) {
        for (const char* name : {"ptrace", "process_vm_readv"}) deny(name);
        // Threads only: clone3 hides its flags from seccomp, so it is refused as unknown and
        // glibc falls back to clone, whose flags must include CLONE_THREAD.
        if (seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0) fail("seccomp rule clone3");
        if (seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0)) != 0)
            fail("seccomp rule clone");
    }
    // Every thread: the link's reader may already run.
    if (seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1) != 0) fail("seccomp tsync");
    if (seccomp_load(ctx.get()) != 0) fail("seccomp_load");
}

}  // namespace

SandboxSpec endpointSandbox(const DaemonConfig& config) {
    SandboxSpec spec;
    if (config.retrieval) {
        spec.writable = {config.retrieval->ownStateDir, config.retrieval->extractDir};
        spec.maxFiles = config.retrieval->processMaxFiles;
        spec.memoryBytes = config.retrieval->processMemoryBytes;
    }
    return spec;
}

void applySandbox(const SandboxSpec& spec) {
    if (spec.maxFiles) setLimit(RLIMIT_NOFILE, spec.maxFiles, "RLIMIT_NOFILE");
    // ASan reserves terabytes of shadow memory up front: a data limit would stop it at start.
    if (spec.memoryBytes && !kSanitized) setLimit(RLIMIT_DATA, spec.memoryBytes, "RLIMIT_DATA");
    if (spec.memoryBytes && kSanitized)
        common::logWarning(kLog, "sanitized build: no memory limit ({} bytes configured)", spec.memoryBytes);
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("PR_SET_NO_NEW_PRIVS");
    std::vector<fs::path> writable = spec.writable;
    if (kSanitized) addSanitizerLogDirs(writable);
    if (!restrictWrites(writable))
        common::logError(kLog, "this kernel has no Landlock: the endpoint process may write wherever mimamorid may");
    installSeccomp();
}

}  // namespace mimamori::daemon
