// CUDA-Vulkan interop: cudaImportExternalMemory + cudaExternalMemoryGetMappedBuffer, timeline semaphores.
#include "kernels/cuda_check.cuh"
#include "kernels/interop.hpp"

#include <unistd.h>

#include <utility>

namespace ts::kernels {

Expected<ExternalMemory> ExternalMemory::import(const ExternalMemoryDesc& d) {
    if (d.fd < 0) return makeError(ErrorKind::Usage, "CUDA import: no memory file descriptor (fd < 0)");
    if (d.size == 0 || d.offset + d.size > d.allocationSize) {
        ::close(d.fd);
        return makeError(ErrorKind::Usage, "CUDA import: range [" + std::to_string(d.offset) + ", +" +
                                               std::to_string(d.size) + ") is outside the " +
                                               std::to_string(d.allocationSize) + "-byte allocation");
    }
    cudaExternalMemoryHandleDesc hd{};
    hd.type = cudaExternalMemoryHandleTypeOpaqueFd;
    hd.handle.fd = d.fd;
    hd.size = d.allocationSize;
    hd.flags = d.dedicated ? cudaExternalMemoryDedicated : 0;
    cudaExternalMemory_t mem = nullptr;
    cudaError_t e = cudaImportExternalMemory(&mem, &hd);
    if (e != cudaSuccess) {
        ::close(d.fd); // CUDA owns the fd only after a successful import
        return cudaFailure(e, "cudaImportExternalMemory(&mem, &hd)", __FILE__, __LINE__);
    }
    ExternalMemory out;
    out.m_handle = mem;
    cudaExternalMemoryBufferDesc bd{};
    bd.offset = d.offset;
    bd.size = d.size;
    bd.flags = 0;
    TS_CUDA_CHECK(cudaExternalMemoryGetMappedBuffer(&out.m_ptr, mem, &bd)); // `out` releases mem on error
    out.m_size = d.size;
    return std::move(out);
}

void ExternalMemory::reset() {
    if (m_ptr) cudaFree(m_ptr); // mapped buffers are freed with cudaFree before the memory is destroyed
    if (m_handle) cudaDestroyExternalMemory(static_cast<cudaExternalMemory_t>(m_handle));
    m_ptr = nullptr;
    m_handle = nullptr;
    m_size = 0;
}

ExternalMemory::~ExternalMemory() {
    reset();
}

ExternalMemory::ExternalMemory(ExternalMemory&& o) noexcept
    : m_handle(o.m_handle), m_ptr(o.m_ptr), m_size(o.m_size) {
    o.m_handle = nullptr;
    o.m_ptr = nullptr;
    o.m_size = 0;
}

ExternalMemory& ExternalMemory::operator=(ExternalMemory&& o) noexcept {
    if (this != &o) {
        reset();
        m_handle = o.m_handle;
        m_ptr = o.m_ptr;
        m_size = o.m_size;
        o.m_handle = nullptr;
        o.m_ptr = nullptr;
        o.m_size = 0;
    }
    return *this;
}

Expected<ExternalSemaphore> ExternalSemaphore::importTimeline(int fd) {
    if (fd < 0) return makeError(ErrorKind::Usage, "CUDA import: no semaphore file descriptor (fd < 0)");
    cudaExternalSemaphoreHandleDesc hd{};
    hd.type = cudaExternalSemaphoreHandleTypeTimelineSemaphoreFd;
    hd.handle.fd = fd;
    cudaExternalSemaphore_t sem = nullptr;
    cudaError_t e = cudaImportExternalSemaphore(&sem, &hd);
    if (e != cudaSuccess) {
        ::close(fd);
        return cudaFailure(e, "cudaImportExternalSemaphore(&sem, &hd)", __FILE__, __LINE__);
    }
    ExternalSemaphore out;
    out.m_handle = sem;
    return std::move(out);
}

ExternalSemaphore::~ExternalSemaphore() {
    if (m_handle) cudaDestroyExternalSemaphore(static_cast<cudaExternalSemaphore_t>(m_handle));
}

ExternalSemaphore& ExternalSemaphore::operator=(ExternalSemaphore&& o) noexcept {
    if (this != &o) {
        if (m_handle) cudaDestroyExternalSemaphore(static_cast<cudaExternalSemaphore_t>(m_handle));
        m_handle = o.m_handle;
        o.m_handle = nullptr;
    }
    return *this;
}

Status ExternalSemaphore::wait(std::uint64_t value, StreamHandle stream) const {
    if (!m_handle) return makeError(ErrorKind::Usage, "CUDA semaphore wait on an empty ExternalSemaphore");
    auto sem = static_cast<cudaExternalSemaphore_t>(m_handle);
    cudaExternalSemaphoreWaitParams p{};
    p.params.fence.value = value;
    TS_CUDA_CHECK(cudaWaitExternalSemaphoresAsync(&sem, &p, 1, stream));
    return Status::ok();
}

Status ExternalSemaphore::signal(std::uint64_t value, StreamHandle stream) const {
    if (!m_handle) return makeError(ErrorKind::Usage, "CUDA semaphore signal on an empty ExternalSemaphore");
    auto sem = static_cast<cudaExternalSemaphore_t>(m_handle);
    cudaExternalSemaphoreSignalParams p{};
    p.params.fence.value = value;
    TS_CUDA_CHECK(cudaSignalExternalSemaphoresAsync(&sem, &p, 1, stream));
    return Status::ok();
}

} // namespace ts::kernels
