// Built without CUDA: importing Vulkan memory into CUDA is not available; say so in one line.
#include "engine/stats/destination.hpp"

#include <unistd.h>

namespace ts::stats {

Expected<std::unique_ptr<StatsDestination>> importVulkanStatsDestination(const ExportedVulkanBuffer& b) {
    // The fds are ours in every case (destination.hpp): closed, not leaked, on this failure.
    if (b.memoryFd >= 0) ::close(b.memoryFd);
    if (b.timelineSemaphoreFd >= 0) ::close(b.timelineSemaphoreFd);
    return makeError(ErrorKind::Environment,
                     "statistics: CUDA-Vulkan sharing needs a build with "
                     "-DTS_ENABLE_CUDA=ON; use a host-visible buffer (HostStatsDestination)");
}

} // namespace ts::stats
