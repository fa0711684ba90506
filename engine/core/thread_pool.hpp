// A small persistent thread pool with a blocking parallelFor: the CPU backends' only source of threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ts {

// Contract: parallelFor splits [0, count) into contiguous chunks of at least `grain` items, calls
// fn(begin, end, worker) for each, and returns when all are done. worker is in [0, workerCount()).
// Calls from inside a task run serially on the calling thread (no nested parallelism, no deadlock).
class ThreadPool {
  public:
    explicit ThreadPool(unsigned threads = 0); // 0: hardware concurrency (TS_THREADS overrides)
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    unsigned workerCount() const { return static_cast<unsigned>(m_threads.size()) + 1; }

    using RangeFn = std::function<void(std::size_t begin, std::size_t end, unsigned worker)>;
    void parallelFor(std::size_t count, std::size_t grain, const RangeFn& fn);

    // The process-wide pool.
    static ThreadPool& global();

  private:
    void workerLoop(unsigned index);
    void runChunks(unsigned worker);

    std::vector<std::thread> m_threads;
    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::condition_variable m_done;
    const RangeFn* m_fn = nullptr;
    std::size_t m_count = 0, m_chunk = 0, m_nextChunk = 0, m_chunks = 0, m_finished = 0;
    std::size_t m_generation = 0;
    bool m_stop = false;
    std::mutex m_callMutex; // one parallelFor at a time
};

} // namespace ts
