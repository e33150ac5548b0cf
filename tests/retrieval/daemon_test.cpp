// End to end against the real mimamorid recording ../shared/data/street-vtest.avi: a police
// fetch over 127.0.0.1 yields a clip that decodes, covers the range, and is black where masked.
#include "fixture.hpp"

#include "mimamori/retrieval/client.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <gst/video/video.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

using namespace mimamori;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;
using Json = nlohmann::json;

namespace {

const std::string kDaemon = MIMAMORI_BINARY_DIR "/apps/mimamorid";
const std::string kClip = MIMAMORI_SOURCE_DIR "/../shared/data/street-vtest.avi";

// A port nothing listens on right now.
int freePort() {
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

// The daemon as a child process, stopped with SIGTERM (SIGKILL if the test fails first).
class Daemon {
public:
    Daemon(const fs::path& config, const fs::path& log) : log_(log) {
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            ::execl(kDaemon.c_str(), kDaemon.c_str(), "--config", config.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    ~Daemon() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    int stop() {
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::string log() const { return fs::exists(log_) ? common::readFile(log_) : std::string(); }
    void waitForLog(const std::string& text) {
        for (int i = 0; i < 300; ++i) {
            if (log().find(text) != std::string::npos) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        FAIL("no \"" << text << "\" in the daemon's log:\n" << log());
    }

private:
    fs::path log_;
    pid_t pid_ = -1;
};

// Mean and maximum luma inside [x0, x1) x [y0, y1) of every decoded frame.
struct Luma {
    int frames = 0;
    double worstMean = 0;
    int max = 0;
};

Luma lumaIn(const fs::path& mp4, double x0, double y0, double x1, double y1) {
    gst_init(nullptr, nullptr);
    const std::string description = fmt::format(
        "filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! "
        "appsink name=sink sync=false",
        mp4.string());
    GstElement* pipeline = gst_parse_launch(description.c_str(), nullptr);
    REQUIRE(pipeline);
    GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    Luma l;
    while (GstSample* sample = gst_app_sink_pull_sample(GST_APP_SINK(sink))) {
        GstVideoInfo info;
        gst_video_info_from_caps(&info, gst_sample_get_caps(sample));
        GstVideoFrame frame;
        if (gst_video_frame_map(&frame, &info, gst_sample_get_buffer(sample), GST_MAP_READ)) {
            const int w = GST_VIDEO_FRAME_WIDTH(&frame), h = GST_VIDEO_FRAME_HEIGHT(&frame);
            const int stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0);
            const auto* y = static_cast<const std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0));
            double sum = 0;
            int n = 0;
            for (int row = static_cast<int>(y0 * h); row < static_cast<int>(y1 * h); ++row)
                for (int col = static_cast<int>(x0 * w); col < static_cast<int>(x1 * w); ++col) {
                    const int v = y[row * stride + col];
                    sum += v;
                    ++n;
                    l.max = std::max(l.max, v);
                }
            l.worstMean = std::max(l.worstMean, n ? sum / n : 0);
            gst_video_frame_unmap(&frame);
            ++l.frames;
        }
        gst_sample_unref(sample);
    }
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipeline);
    return l;
}

}  // namespace

TEST_CASE("end to end with mimamorid recording the street clip: the fetched clip decodes, covers the range, masked area black") {
    TempDir dir;
    const fs::path keys = dir.path() / "keys";
    fs::create_directories(keys);
    const auto police = policy::generateKey(policy::Role::Police, "hyogo-kakogawa-1");
    const auto city = policy::generateKey(policy::Role::City, "kakogawa-city");
    const auto camera = policy::generateKey(policy::Role::Camera, "camera-0042");
    for (const auto* k : {&police, &city, &camera}) policy::writeKeyFiles(*k, keys);
    policy::TrustStore trust;
    trust.add(police.publicKey());
    trust.add(city.publicKey());
    common::writeFileAtomic(dir.path() / "trust.json", trust.toJson());
    common::writeFileAtomic(dir.path() / "masks.json",
                            R"({"version": 1, "camera": "kakogawa-0042", "masks": [{"name": "house 1",
                               "polygon": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.4]]}]})");
    const int port = freePort();
    const Json config = {
        {"camera_id", "kakogawa-0042"},
        {"source", {{"kind", "file"}, {"location", kClip}, {"realtime", true}}},
        {"segment_seconds", 2},
        {"storage", {{"path", "ring"}}},
        {"mask_file", "masks.json"},
        {"key_dir", "daykeys"},
        {"state_dir", "state"},
        {"retrieval", {{"address", "127.0.0.1"}, {"port", port}, {"trust_file", "trust.json"},
                       {"camera_key", "keys/camera-0042.secret"}}},
    };
    common::writeFileAtomic(dir.path() / "mimamorid.json", config.dump(2));

    const UtcMicros started = common::SystemClock().nowUtc();
    Daemon daemon(dir.path() / "mimamorid.json", dir.path() / "daemon.log");
    daemon.waitForLog(fmt::format("127.0.0.1:{}", port));
    std::this_thread::sleep_for(std::chrono::seconds(14));

    // The middle of what has been recorded: [started + 6 s, started + 10 s).
    policy::Request r = policy::newRequest(common::SystemClock().nowUtc(), 3600 * kMicrosPerSecond);
    r.cameraId = "kakogawa-0042";
    r.from = started + 6 * kMicrosPerSecond;
    r.to = started + 10 * kMicrosPerSecond;
    r.groundWord = "criminal-investigation";
    r.ground = policy::classifyGround(r.groundWord);
    r.reference = "KKG-2026-0001";
    r.purpose = "bicycle theft";
    r.body = "Hyogo Prefectural Police, Kakogawa Station";
    r.officer = "Sgt. Tanaka";
    r.recipient = police.boxPublic();
    policy::SignedRequest s = policy::signRequest(r, police);
    policy::approveRequest(s, city);
    common::writeFileAtomic(dir.path() / "request.json", policy::serializeSignedRequest(s));

    FetchOptions o;
    o.requestFile = dir.path() / "request.json";
    o.cameraUrl = fmt::format("http://127.0.0.1:{}", port);
    o.policeKeyFile = keys / "hyogo-kakogawa-1.secret";
    o.cameraKeyFile = keys / "camera-0042.pub";
    o.outDir = dir.path() / "case";
    const FetchResult fetched = fetchExtract(o);
    const Manifest& m = fetched.manifest;
    CHECK(m.actualFrom <= r.from);
    CHECK(m.actualTo >= r.to);
    CHECK(m.actualTo - m.actualFrom <= (r.to - r.from) + 4 * kMicrosPerSecond);  // whole GOPs (1 s) at each end
    CHECK(verifyExtractDir(o.outDir, camera.publicKey().signKey).ok);

    const Decoded d = decodeMp4(o.outDir / kClipFile);
    CHECK(d.frames == static_cast<int>(m.frames));
    CHECK(d.frames >= 40);  // 4 s at 10 fps at least
    // Well inside the mask: black in every frame (limited-range black is 16; codec noise aside).
    const Luma masked = lumaIn(o.outDir / kClipFile, 0.13, 0.13, 0.37, 0.37);
    CHECK(masked.frames == d.frames);
    CHECK(masked.worstMean < 24);
    const Luma open = lumaIn(o.outDir / kClipFile, 0.5, 0.5, 0.9, 0.9);
    CHECK(open.worstMean > 40);  // the street itself is not black

    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // delivery is audited after the last byte
    CHECK(daemon.stop() == 0);

    // After a restart of the daemon the same request is a replay, refused and audited.
    {
        Daemon again(dir.path() / "mimamorid.json", dir.path() / "daemon2.log");
        again.waitForLog(fmt::format("127.0.0.1:{}", port));
        httplib::Client cli("127.0.0.1", port);
        const auto res = cli.Post("/v1/requests", common::readFile(dir.path() / "request.json"), "application/json");
        REQUIRE(res);
        CHECK(res->status == 403);
        CHECK(res->body.find("replayed_nonce") != std::string::npos);
        CHECK(again.stop() == 0);
    }
    const std::string audit = common::readFile(dir.path() / "state" / "audit.log");
    CHECK(audit.find("\"request_granted\"") != std::string::npos);
    CHECK(audit.find("\"extract_delivered\"") != std::string::npos);
    CHECK(audit.find("\"replayed_nonce\"") != std::string::npos);
    const policy::AuditVerifyResult verified =
        policy::verifyAuditLog(dir.path() / "state" / "audit.log", camera.publicKey().signKey);
    CHECK_MESSAGE(verified.ok, verified.reason);
}
