// Background grid evaluation with snapshots and cancel (see surface_job.hpp).
#include "engine/landscape/surface_job.hpp"

namespace ts::landscape {

SurfaceJob::SurfaceJob(std::unique_ptr<SurfaceEvaluator> evaluator, GridSpec grid, bool progressive)
    : m_evaluator(std::move(evaluator)), m_grid(std::move(grid)), m_progressive(progressive) {
    m_state.surface = Surface::onGrid(m_grid);
    m_state.total = m_grid.pointCount();
    m_thread = std::thread([this] { run(); });
}

SurfaceJob::~SurfaceJob() {
    m_cancel = true;
    wait();
}

void SurfaceJob::wait() {
    if (m_thread.joinable()) m_thread.join();
}

SurfaceJob::Snapshot SurfaceJob::snapshot() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_state;
}

void SurfaceJob::run() {
    GridRunOptions opt;
    opt.progressive = m_progressive;
    opt.cancel = &m_cancel;
    opt.progress = [this](int64_t done, int64_t total, const Surface& partial, int64_t stride) {
        Surface shown = stride > 0 ? previewFilled(partial, stride) : partial;
        std::lock_guard<std::mutex> lock(m_mutex);
        m_state.surface = std::move(shown);
        m_state.done = done;
        m_state.total = total;
        m_state.version = ++m_version;
    };
    Expected<Surface> result = [&]() -> Expected<Surface> {
        try {
            return m_evaluator->evaluateGrid(m_grid, opt);
        } catch (const std::exception& e) {
            std::string what = e.what();
            return makeError(ErrorKind::Failed,
                             "landscape evaluation failed: " + oneLineReason(what));
        }
    }();
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        if (result) {
            m_state.cancelled = !result->complete();
            if (!m_state.cancelled) m_state.surface = std::move(result.value());
        } else {
            m_state.error = result.error();
        }
        m_state.finished = true;
        m_state.version = ++m_version;
    }
    m_finished = true;
}

} // namespace ts::landscape
