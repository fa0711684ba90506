// StatsDestination over Vulkan memory imported into CUDA, synchronised through a shared timeline semaphore
// (protocol in destination.hpp) or, without one, by synchronising the stream after the writes.
#include <unistd.h>

#include <cstring>

#include <optional>

#include "engine/stats/destination.hpp"
#include "kernels/interop.hpp"
#include "kernels/runtime.hpp"

namespace ts::stats {
namespace {

class CudaStatsDestination final : public StatsDestination {
  public:
    CudaStatsDestination(kernels::ExternalMemory memory, std::optional<kernels::ExternalSemaphore> semaphore)
        : m_memory(std::move(memory)), m_semaphore(std::move(semaphore)) {}

    MemoryKind memory() const override { return MemoryKind::Device; }
    float* data() override { return static_cast<float*>(m_memory.devicePointer()); }
    std::size_t capacityBytes() const override { return static_cast<std::size_t>(m_memory.size()); }
    std::uint64_t generation() const override { return m_generation; }

    Status beginWrite(StreamHandle stream) override {
        if (m_semaphore) TS_TRY(m_semaphore->wait(2 * m_generation, stream));
        return Status::ok();
    }
    Status endWrite(StreamHandle stream) override {
        if (m_semaphore)
            TS_TRY(m_semaphore->signal(2 * m_generation + 1, stream));
        else
            TS_TRY(kernels::synchronizeStream(stream));
        ++m_generation;
        return Status::ok();
    }

  private:
    kernels::ExternalMemory m_memory;
    std::optional<kernels::ExternalSemaphore> m_semaphore;
    std::uint64_t m_generation = 0;
};

} // namespace

Expected<std::unique_ptr<StatsDestination>> importVulkanStatsDestination(const ExportedVulkanBuffer& b) {
    // Both fds are ours from here on (destination.hpp): each failure path closes what CUDA did not take.
    auto closeSemaphoreFd = [&] {
        if (b.timelineSemaphoreFd >= 0) ::close(b.timelineSemaphoreFd);
    };
    kernels::DeviceRequest request;
    if (b.hasDeviceUuid) {
        request.matchUuid = true;
        std::memcpy(request.uuid, b.deviceUuid, sizeof(request.uuid));
    }
    auto device = kernels::probeDevice(request);
    if (!device) {
        if (b.memoryFd >= 0) ::close(b.memoryFd);
        closeSemaphoreFd();
        return makeError(ErrorKind::Environment,
                         "statistics: cannot import the Vulkan buffer into CUDA: no CUDA device (" +
                             device.error().message + "); use a host-visible buffer (HostStatsDestination)");
    }
    kernels::ExternalMemoryDesc md;
    md.fd = b.memoryFd;
    md.allocationSize = b.allocationSize;
    md.offset = b.offset;
    md.size = b.size;
    md.dedicated = b.dedicated;
    auto memory = kernels::ExternalMemory::import(md); // closes the memory fd itself on failure
    if (!memory) {
        closeSemaphoreFd();
        return memory.error();
    }
    std::optional<kernels::ExternalSemaphore> semaphore;
    if (b.timelineSemaphoreFd >= 0) {
        TS_ASSIGN_OR_RETURN(sem, kernels::ExternalSemaphore::importTimeline(b.timelineSemaphoreFd));
        semaphore = std::move(sem);
    }
    return std::unique_ptr<StatsDestination>(
        std::make_unique<CudaStatsDestination>(std::move(memory.value()), std::move(semaphore)));
}

} // namespace ts::stats
