// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The audit log's one writer behind a socket: entries from the endpoint's side are on disk when
// acknowledged; hostile frames are refused and the chain stays sound.
#include "mimamori/policy/audit_channel.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/common/time.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

using namespace mimamori;
using namespace mimamori::policy;
using common::Frame;
namespace fs = std::filesystem;

namespace {

// The log's owner: answers every frame on its end of a socket pair until the other end closes.
struct Owner {
    test::TempDir dir;
    SecretKey camera = generateKey(Role::Camera, "cam");
    common::ManualClock clock{*common::parseUtc("2026-11-24T12:00:00Z")};
    AuditLog log{dir / "audit", camera, clock, AuditOptions{4, {}, {}}};
    common::UniqueFd ours, theirs;
    std::atomic<int> notAudit{0};
    std::thread thread;

    explicit Owner(bool answer = true) {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        ours.reset(fds[0]);
        theirs.reset(fds[1]);
        log.append(audit::kDaemonStart, {});
        thread = std::thread([this, answer] {
            for (;;) {
                common::Result<Frame> frame = common::readFrame(ours.get(), kMaxAuditRequestBytes);
                if (!frame) {  // as mimamorid does: a bad frame ends the link
                    ::shutdown(ours.get(), SHUT_RDWR);
                    return;
                }
                if (!answer) continue;
                std::optional<Frame> reply = answerAuditFrame(log, *frame);
                if (!reply) ++notAudit;
                else if (!common::writeFrame(ours.get(), *reply)) return;
            }
        });
    }
    ~Owner() {
        ::shutdown(ours.get(), SHUT_RDWR);
        thread.join();
    }
    std::string text() const { return common::readFile(dir / "audit" / "audit-FY2026.log"); }
};

// A raw request from the endpoint's side, and the owner's answer.
Frame exchange(int fd, std::uint8_t kind, const std::string& payload) {
    REQUIRE(common::writeFrame(fd, Frame{kind, 7, payload}));
    common::Result<Frame> answer = common::readFrame(fd, kMaxAuditAnswerBytes);
    REQUIRE(answer);
    CHECK(answer->id == 7);
    return *answer;
}

}  // namespace

TEST_CASE("an entry appended through the channel is in the log when the append returns, chained by the owner") {
    Owner owner;
    common::FrameClient link(std::move(owner.theirs), kMaxAuditAnswerBytes, [](const Frame&, common::FrameClient&) {}, {});
    AuditClient client(link, std::chrono::seconds(5));
    for (int i = 0; i < 6; ++i) {
        const std::uint64_t seq = client.append(audit::kRequestReceived, {{"request_id", std::string("r-") + std::to_string(i)},
                                                                        {"bytes", std::int64_t{-42}},
                                                                        {"ok", true}});
        // Acknowledged only after the owner's append (write + fsync) returned: the line is there.
        const std::string text = owner.text();
        const auto at = text.find("{\"seq\":" + std::to_string(seq) + ",");
        REQUIRE(at != std::string::npos);
        CHECK(text.substr(at, text.find('\n', at) - at)
                  .find("\"request_id\":\"r-" + std::to_string(i) + "\",\"bytes\":-42,\"ok\":true") != std::string::npos);
    }
    const AuditCheckpoint c = client.checkpoint();
    CHECK(c.seq == owner.log.lastSeq());
    const AuditLines lines = client.linesAfter(0, c.seq, 1 << 20);
    CHECK(lines.complete);
    CHECK(lines.lines.size() == c.seq);
    CHECK(lines.lines.front().find("daemon_start") != std::string::npos);
    owner.log.close();
    const AuditVerifyResult v = verifyAuditLog(owner.dir / "audit", owner.camera.publicKey().signKey);
    CHECK_MESSAGE(v.ok, v.reason);
}

TEST_CASE("garbage, forged and oversized frames from the endpoint are refused and the chain stays sound") {
    Owner owner;
    const int fd = owner.theirs.get();
    const std::string before = owner.text();
    auto refusedWith = [&](std::uint8_t kind, const std::string& payload, const std::string& reason) {
        const Frame answer = exchange(fd, kind, payload);
        CHECK(answer.kind == audit_frame::kRefused);
        common::WireReader in(answer.payload);
        const std::string text = in.bytes(4096);
        CHECK_MESSAGE(text.find(reason) != std::string::npos, text);
    };
    refusedWith(audit_frame::kAppend, "\x01\x02\x03", "malformed append");
    refusedWith(audit_frame::kAppend, common::WireWriter().bytes("request_received").u32(1000000).take(), "malformed");
    refusedWith(audit_frame::kAppend, common::WireWriter().bytes("request_received").u32(1).bytes("k").u8(9).take(), "malformed");
    refusedWith(audit_frame::kAppend, common::WireWriter().bytes("request_received").u32(0).u8(0).take(), "malformed");
    // The owner's own entries cannot be forged from the network's side.
    for (const char* type : {"daemon_start", "daemon_stop", "checkpoint", "recording_gap", "day_shredded", "mask_changed"})
        refusedWith(audit_frame::kAppend, common::WireWriter().bytes(type).u32(0).take(), "not the endpoint's");
    // Keys the log refuses (not snake_case) are refused, not written.
    refusedWith(audit_frame::kAppend,
                common::WireWriter().bytes("request_received").u32(1).bytes("Bad\nKey").u8(1).u64(1).take(), "");
    refusedWith(audit_frame::kLines, common::WireWriter().u64(0).u64(1000).u64(10).take(), "not in the log");
    refusedWith(audit_frame::kCheckpoint, "x", "malformed");
    CHECK(owner.text() == before);

    // A frame over the limit is not read at all: the owner drops the link.
    const common::Result<void> sent =  // may fail part way: the owner hangs up after the header
        common::writeFrame(fd, Frame{audit_frame::kAppend, 8, std::string(kMaxAuditRequestBytes + 1, 'a')});
    CHECK((sent || sent.error().find("Broken pipe") != std::string::npos));
    CHECK_FALSE(common::readFrame(fd, kMaxAuditAnswerBytes));
    owner.log.close();
    const AuditVerifyResult v = verifyAuditLog(owner.dir / "audit", owner.camera.publicKey().signKey);
    CHECK_MESSAGE(v.ok, v.reason);
    CHECK(owner.text().find("request_received") == std::string::npos);
}

TEST_CASE("no acknowledgement in time, or no owner at all, is an audit failure for the writer") {
    {
        Owner silent(false);
        common::FrameClient link(std::move(silent.theirs), kMaxAuditAnswerBytes, [](const Frame&, common::FrameClient&) {}, {});
        AuditClient client(link, std::chrono::milliseconds(200));
        CHECK_THROWS_AS(client.append(audit::kRequestReceived, {}), AuditError);
    }
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    ::close(fds[0]);
    common::FrameClient link(common::UniqueFd(fds[1]), kMaxAuditAnswerBytes, [](const Frame&, common::FrameClient&) {}, {});
    AuditClient client(link, std::chrono::seconds(5));
    CHECK_THROWS_AS(client.append(audit::kRequestReceived, {}), AuditError);
}
