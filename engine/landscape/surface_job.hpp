// A grid evaluation on a background thread for interactive use: coarse-to-fine, with a thread-safe snapshot
// (the partial surface filled from the last finished level, ready for buildHeightField) and cancel.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "engine/landscape/evaluator.hpp"

namespace ts::landscape {

// Contract: the job owns the evaluator and uses its model from the job's thread until finished() or the
// job is destroyed (which cancels and joins); nobody else may use that model meanwhile (capture::Model is
// single-threaded). The model holds its original weights again once the job has finished.
class SurfaceJob {
  public:
    SurfaceJob(std::unique_ptr<SurfaceEvaluator> evaluator, GridSpec grid, bool progressive = true);
    ~SurfaceJob();
    SurfaceJob(const SurfaceJob&) = delete;
    SurfaceJob& operator=(const SurfaceJob&) = delete;

    struct Snapshot {
        Surface surface; // missing points filled from the coarser lattice (see previewFilled)
        int64_t done = 0, total = 0;
        bool finished = false; // complete, cancelled or failed
        bool cancelled = false;
        std::optional<Error> error;
        uint64_t version = 0; // increases with every update; redraw when it changes
    };
    Snapshot snapshot() const;
    uint64_t version() const { return m_version.load(); }
    bool finished() const { return m_finished.load(); }
    void cancel() { m_cancel = true; }
    void wait();

  private:
    void run();

    std::unique_ptr<SurfaceEvaluator> m_evaluator;
    GridSpec m_grid;
    bool m_progressive;
    std::atomic<bool> m_cancel{false}, m_finished{false};
    std::atomic<uint64_t> m_version{0};
    mutable std::mutex m_mutex;
    Snapshot m_state; // guarded by m_mutex
    std::thread m_thread;
};

} // namespace ts::landscape
