// Built without CUDA: importing Vulkan memory into CUDA is not available; say so in one line.
#include "engine/stats/destination.hpp"

namespace ts::stats {

Expected<std::unique_ptr<StatsDestination>> importVulkanStatsDestination(const ExportedVulkanBuffer&) {
    return makeError(ErrorKind::Environment,
                     "statistics: CUDA-Vulkan sharing needs a build with "
                     "-DTS_ENABLE_CUDA=ON; use a host-visible buffer (HostStatsDestination)");
}

} // namespace ts::stats
