// ThreadPool: workers sleep on a condition variable and pull chunk indices under the lock.
#include "engine/core/thread_pool.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace ts {
namespace {
thread_local bool t_insidePool = false;
}

ThreadPool::ThreadPool(unsigned threads) {
    if (threads == 0) {
        // TS_THREADS: a whole number in 1..256; anything else (-1, 100000, text) is ignored with a warning
        // (it aborted with "Resource temporarily unavailable" or hung).
        if (const char* env = std::getenv("TS_THREADS")) {
            char* end = nullptr;
            const long v = std::strtol(env, &end, 10);
            if (*env && !*end && v >= 1 && v <= 256)
                threads = static_cast<unsigned>(v);
            else
                std::fprintf(stderr, "tensorscape warning: TS_THREADS='%s' is not a thread count in 1..256; using "
                                     "the number of cores\n", env);
        }
        if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    }
    for (unsigned i = 1; i < threads; ++i)
        m_threads.emplace_back([this, i] { workerLoop(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
    }
    m_wake.notify_all();
    for (auto& t : m_threads)
        t.join();
}

ThreadPool& ThreadPool::global() {
    static ThreadPool pool;
    return pool;
}

void ThreadPool::runChunks(unsigned worker) {
    for (;;) {
        std::size_t chunk;
        const RangeFn* fn;
        {
            std::lock_guard lock(m_mutex);
            if (!m_fn || m_nextChunk >= m_chunks) return;
            chunk = m_nextChunk++;
            fn = m_fn;
        }
        std::size_t begin = chunk * m_chunk;
        std::size_t end = std::min(m_count, begin + m_chunk);
        t_insidePool = true;
        (*fn)(begin, end, worker);
        t_insidePool = false;
        {
            std::lock_guard lock(m_mutex);
            if (++m_finished == m_chunks) m_done.notify_all();
        }
    }
}

void ThreadPool::workerLoop(unsigned index) {
    std::size_t seen = 0;
    for (;;) {
        {
            std::unique_lock lock(m_mutex);
            m_wake.wait(lock, [&] { return m_stop || (m_generation != seen && m_fn); });
            if (m_stop) return;
            seen = m_generation;
        }
        runChunks(index);
    }
}

void ThreadPool::parallelFor(std::size_t count, std::size_t grain, const RangeFn& fn) {
    if (count == 0) return;
    grain = std::max<std::size_t>(grain, 1);
    if (t_insidePool || m_threads.empty() || count <= grain) {
        fn(0, count, 0);
        return;
    }
    std::lock_guard call(m_callMutex);
    std::size_t workers = workerCount();
    // A few chunks per worker balances uneven work without much locking.
    std::size_t chunk = std::max(grain, (count + workers * 4 - 1) / (workers * 4));
    {
        std::lock_guard lock(m_mutex);
        m_fn = &fn;
        m_count = count;
        m_chunk = chunk;
        m_chunks = (count + chunk - 1) / chunk;
        m_nextChunk = 0;
        m_finished = 0;
        ++m_generation;
    }
    m_wake.notify_all();
    runChunks(0);
    std::unique_lock lock(m_mutex);
    m_done.wait(lock, [&] { return m_finished == m_chunks; });
    m_fn = nullptr;
}

} // namespace ts
