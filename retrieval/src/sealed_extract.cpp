// An extract written straight into its sealed container: no plaintext MP4 at rest.
#include "mimamori/common/file.hpp"
#include "mimamori/retrieval/extract.hpp"
#include "mimamori/retrieval/seal.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mimamori::retrieval {
namespace {
constexpr std::uint64_t kWritebackBytes = 8 * 1024 * 1024;
}  // namespace

SealedExtract writeSealedExtract(const recorder::SegmentStore& store, UtcMicros from, UtcMicros to,
                                 const policy::BoxPublicKey& recipient, const std::filesystem::path& file,
                                 const std::function<bool()>& cancelled) {
    common::UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) throw common::FileError(fmt::format("{}: {}", file.string(), std::strerror(errno)));
    try {
        SealedExtract out;
        std::uint64_t written = 0, flushed = 0;
        Sealer sealer(recipient, [&](std::span<const std::uint8_t> bytes) {
            common::writeAll(fd.get(), bytes, file.string());
            written += bytes.size();
            // Start writeback as we go, so the closing fsync does not wait for the whole file.
            if (written - flushed >= kWritebackBytes) {
                ::sync_file_range(fd.get(), static_cast<off_t>(flushed), static_cast<off_t>(written - flushed),
                                  SYNC_FILE_RANGE_WRITE);
                flushed = written;
            }
        });
        Sha256 mp4Hash;
        out.extract = extractMp4(store, from, to, [&](std::span<const std::uint8_t> mp4) {
            if (cancelled && cancelled()) throw ExtractError("cancelled");
            mp4Hash.update(mp4);
            sealer.write(mp4);
        });
        sealer.finish();
        if (::fsync(fd.get()) != 0) throw common::FileError(fmt::format("{}: fsync: {}", file.string(), std::strerror(errno)));
        out.mp4Sha256 = mp4Hash.hexDigest();
        out.mp4Bytes = sealer.plainBytes();
        out.sealedBytes = sealer.sealedBytes();
        return out;
    } catch (...) {
        std::error_code ignored;
        std::filesystem::remove(file, ignored);
        throw;
    }
}

}  // namespace mimamori::retrieval
