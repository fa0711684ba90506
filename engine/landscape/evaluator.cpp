// Grid evaluation: the per-point reference path, the batched path's detection and verification, and the
// coarse-to-fine grid driver with progress and cancellation.
#include "engine/landscape/evaluator.hpp"

#include <algorithm>
#include <cmath>

#include "engine/core/log.hpp"
#include "engine/core/thread_pool.hpp"
#include "engine/landscape/batched_mlp.hpp"
#include "engine/landscape/batched_program.hpp"

namespace ts::landscape {

void accumulateLoss(const torch::Tensor& logits, const torch::Tensor& targets, double& lossSum,
                    double& correct) {
    const auto t = targets.to(torch::kInt64);
    const auto lse = logits.logsumexp(-1);
    const auto tgt = logits.gather(1, t.view({-1, 1})).squeeze(1);
    lossSum += (lse - tgt).to(torch::kFloat64).sum().item<double>();
    correct += static_cast<double>(logits.argmax(-1).eq(t).sum().item<int64_t>());
}

Expected<std::unique_ptr<SurfaceEvaluator>> SurfaceEvaluator::create(capture::Model& model,
                                                                     ParameterSpace space,
                                                                     Directions directions, EvalSet data,
                                                                     EvaluatorOptions options) {
    if (!data.inputs.defined() || data.inputs.dim() < 1 || data.inputs.size(0) == 0)
        return makeError(ErrorKind::Usage, "the evaluation set is empty");
    if (!data.targets.defined() || data.targets.dim() != 1 || data.targets.size(0) != data.inputs.size(0))
        return makeError(ErrorKind::Usage, "targets must be one class index per input sample");
    TS_TRY(checkDirectionShapes(directions.x, space, "x direction", "xdirection"));
    if (directions.is2d()) TS_TRY(checkDirectionShapes(directions.y, space, "y direction", "ydirection"));

    auto ev = std::unique_ptr<SurfaceEvaluator>(new SurfaceEvaluator());
    ev->m_model = &model;
    ev->m_space = std::move(space);
    ev->m_origin = ev->m_space.snapshot();
    ev->m_options = options;
    ev->m_data = std::move(data);
    // Directions in each tensor's own dtype so that set-weights is one fused add per tensor.
    const auto cast = [&](const TensorList& d) {
        TensorList out;
        for (size_t i = 0; i < d.size(); ++i) {
            const auto& w = ev->m_origin[i];
            out.push_back(w.is_floating_point() ? d[i].to(w.scalar_type()).contiguous() : d[i]);
        }
        return out;
    };
    ev->m_dirs.x = cast(directions.x);
    ev->m_dirs.y = cast(directions.y);
    ev->m_wasTraining = model.isTraining();
    model.setTraining(false); // dropout off, BatchNorm on running statistics (the reference's net.eval())

    if (options.mode != EvalMode::Unbatched) {
        ev->chooseBatchedPath();
        if (!ev->batched() && options.mode == EvalMode::Batched)
            return makeError(ErrorKind::Usage,
                             "batched evaluation is not available: " + ev->m_fallbackReason);
        if (ev->m_batched)
            TS_LOG_DEBUG("landscape: batched path (%lld Linear layers, %s)",
                         static_cast<long long>(ev->m_batched->layerCount()),
                         activationName(ev->m_batched->activation()));
        else if (ev->m_program)
            TS_LOG_INFO("landscape: batched layer program (%lld ops, %lld BatchNorms folded, %lld samples per "
                        "block, points over %u threads)",
                        static_cast<long long>(ev->m_program->opCount()),
                        static_cast<long long>(ev->m_program->foldedCount()),
                        static_cast<long long>(ev->m_program->sampleBlock()), ThreadPool::global().workerCount());
        else
            TS_LOG_INFO("landscape: per-point evaluation (%s)", ev->m_fallbackReason.c_str());
    }
    return ev;
}

// The model's own forward at two probe points (the origin and off it) decides which batched path, if any,
// computes the same logits: the Linear chain (for each candidate activation, since the parameters alone do
// not say which one sits between the layers), then the model's layer program.
void SurfaceEvaluator::chooseBatchedPath() {
    torch::NoGradGuard noGrad;
    // Up to 256 samples, fewer for large inputs (about 8 MB of them: 13 images of 3x224x224), so that the probe
    // forward passes of a large CNN stay small in memory and time.
    const int64_t total = m_data.inputs.size(0);
    const int64_t sampleBytes =
        std::max<int64_t>(1, m_data.inputs.numel() / std::max<int64_t>(total, 1) *
                                 static_cast<int64_t>(m_data.inputs.element_size()));
    const int64_t n = std::min<int64_t>(total, std::clamp<int64_t>((8ll << 20) / sampleBytes, 8, 256));
    const std::vector<std::array<double, 2>> probes = {{0.0, 0.0}, {0.61, -0.37}};
    std::vector<torch::Tensor> want;
    std::string forwardError;
    for (const auto& p : probes) {
        setPoint(p[0], p[1]);
        try {
            want.push_back(m_model->forward(m_data.inputs.narrow(0, 0, n)).detach().to(torch::kFloat64));
        } catch (const std::exception& e) {
            forwardError = oneLineReason(e.what());
            break;
        }
    }
    restore();
    if (!forwardError.empty()) {
        m_fallbackReason = "the model's forward failed on the evaluation inputs (" + forwardError + ")";
        return;
    }
    const double tol = m_origin[0].scalar_type() == torch::kFloat64 ? 1e-9 : 1e-4;
    const auto matches = [&](const std::function<torch::Tensor(size_t)>& got) {
        for (size_t i = 0; i < probes.size(); ++i) {
            const auto g = got(i).to(torch::kFloat64);
            if (!want[i].sizes().equals(g.sizes())) return false;
            const double scale = 1.0 + want[i].abs().max().item<double>();
            const double diff = (want[i] - g).abs().max().item<double>();
            if (!(std::isfinite(diff) && diff <= tol * scale)) return false;
        }
        return true;
    };

    std::string mlpReason;
    if (m_space.type != DirType::Weights && m_space.live.size() != m_model->namedParameters().size())
        mlpReason = "states directions include buffers";
    else
        m_batched = BatchedMlp::fromParameters(m_space, m_origin, m_dirs, m_data, mlpReason);
    if (m_batched) {
        bool matched = false;
        for (Activation a : {Activation::ReLU, Activation::Tanh, Activation::Sigmoid, Activation::Gelu,
                             Activation::LeakyReLU, Activation::Identity}) {
            if (m_batched->layerCount() == 1 && a != Activation::Identity) continue;
            m_batched->setActivation(a);
            const auto got = m_batched->logits(probes, n);
            if (matches([&](size_t i) { return got[static_cast<int64_t>(i)]; })) {
                matched = true;
                break;
            }
        }
        if (matched) return;
        m_batched.reset();
        mlpReason = "the model's outputs are not those of a Linear/activation chain";
    }
#ifdef TS_HAVE_LANDSCAPE_COMMAND
    std::string programReason;
    auto program = m_model->inferenceProgram();
    if (!program) {
        programReason = program.error().message;
    } else {
        m_program = BatchedProgram::fromProgram(std::move(program.value()), m_space, m_origin, m_dirs, m_data,
                                                programReason);
        if (m_program && !matches([&](size_t i) { return m_program->logits(probes[i], n); })) {
            m_program.reset();
            programReason = "its outputs differ from the model's forward()";
        }
        if (m_program) return;
    }
    m_fallbackReason = "not a Linear/activation chain (" + mlpReason + ") and no layer program (" + programReason + ")";
#else
    m_fallbackReason = mlpReason;
#endif
}

SurfaceEvaluator::~SurfaceEvaluator() {
    if (m_model && m_wasTraining) m_model->setTraining(true);
}

int64_t SurfaceEvaluator::pointChunk() const {
    if (m_options.pointChunk > 0) return m_options.pointChunk;
    return m_batched ? m_batched->autoChunk(kChunkBytes) : 1;
}

void SurfaceEvaluator::setPoint(double a, double b) {
    torch::NoGradGuard noGrad;
    for (size_t i = 0; i < m_space.live.size(); ++i) {
        auto& p = m_space.live[i];
        if (!p.is_floating_point()) continue;
        p.copy_(m_origin[i]);
        p.add_(m_dirs.x[i], a);
        if (m_dirs.is2d()) p.add_(m_dirs.y[i], b);
    }
}

void SurfaceEvaluator::restore() {
    torch::NoGradGuard noGrad;
    for (size_t i = 0; i < m_space.live.size(); ++i)
        m_space.live[i].copy_(m_origin[i]);
}

PointValue SurfaceEvaluator::evaluateModel() {
    torch::NoGradGuard noGrad;
    const int64_t n = m_data.inputs.size(0);
    const int64_t batch = m_options.sampleBatch > 0 ? m_options.sampleBatch : n;
    double lossSum = 0, correct = 0;
    for (int64_t begin = 0; begin < n; begin += batch) {
        const int64_t len = std::min(batch, n - begin);
        const auto logits = m_model->forward(m_data.inputs.narrow(0, begin, len));
        accumulateLoss(logits, m_data.targets.narrow(0, begin, len), lossSum, correct);
    }
    return {lossSum / static_cast<double>(n), 100.0 * correct / static_cast<double>(n)};
}

Expected<std::vector<PointValue>>
SurfaceEvaluator::evaluateUnbatched(const std::vector<std::array<double, 2>>& points) {
    std::vector<PointValue> out;
    out.reserve(points.size());
    try {
        for (const auto& p : points) {
            setPoint(p[0], p[1]);
            out.push_back(evaluateModel());
        }
    } catch (const std::exception& e) {
        restore();
        std::string what = e.what();
        what = oneLineReason(what);
        return makeError(ErrorKind::Failed, "model forward failed during landscape evaluation: " + what);
    }
    restore();
    return out;
}

Expected<std::vector<PointValue>>
SurfaceEvaluator::evaluate(const std::vector<std::array<double, 2>>& points) {
    if (!batched()) return evaluateUnbatched(points);
    try {
        if (m_program) return m_program->evaluate(points, m_options.usePool);
        return m_batched->evaluate(points, pointChunk(), m_options.usePool);
    } catch (const std::exception& e) {
        std::string what = e.what();
        return makeError(ErrorKind::Failed,
                         "batched landscape evaluation failed: " + oneLineReason(what));
    }
}

namespace {

using PointsFn = std::function<Expected<std::vector<PointValue>>(const std::vector<std::array<double, 2>>&)>;

// The grid driver both evaluators share: levels coarse to fine (or one level), `chunk` points per call.
Expected<Surface> runGrid(const GridSpec& grid, const GridRunOptions& run, bool twoD, int64_t chunk,
                          const PointsFn& evaluate) {
    TS_TRY(validateGrid(grid));
    if (grid.is2d() && !twoD)
        return makeError(ErrorKind::Usage, "a 2D grid needs two directions (the directions have only x)");
    Surface surface = Surface::onGrid(grid);
    const auto plan = planRefinement(surface.nx(), surface.ny(), run.progressive);
    const int64_t total = grid.pointCount();
    int64_t done = 0;
    int64_t finishedStride = 0;
    for (size_t level = 0; level < plan.levels.size(); ++level) {
        const auto& idx = plan.levels[level];
        for (size_t begin = 0; begin < idx.size(); begin += static_cast<size_t>(chunk)) {
            if (run.cancel && run.cancel->load(std::memory_order_relaxed)) return surface;
            const size_t end = std::min(idx.size(), begin + static_cast<size_t>(chunk));
            std::vector<std::array<double, 2>> points;
            for (size_t j = begin; j < end; ++j) {
                const int64_t k = idx[j];
                const int64_t ix = k % surface.nx(), iy = k / surface.nx();
                points.push_back({surface.x[static_cast<size_t>(ix)],
                                  surface.is2d() ? surface.y[static_cast<size_t>(iy)] : 0.0});
            }
            auto values = evaluate(points);
            if (!values) return values.error();
            for (size_t j = begin; j < end; ++j) {
                const auto k = static_cast<size_t>(idx[j]);
                surface.loss[k] = (*values)[j - begin].loss;
                surface.acc[k] = (*values)[j - begin].acc;
                surface.computed[k] = 1;
            }
            done += static_cast<int64_t>(end - begin);
            if (end == idx.size()) finishedStride = plan.strides[level];
            if (run.progress) run.progress(done, total, surface, finishedStride);
        }
    }
    return surface;
}

// Points per call: batched Linear chains, enough for every pool worker to get a few passes; layer programs,
// one point per worker, so progress and cancel come every few seconds; per point, one.
int64_t gridChunk(bool mlp, bool program, int64_t mlpChunk, bool usePool) {
    const int64_t workers = usePool ? ThreadPool::global().workerCount() : 1;
    return mlp ? mlpChunk * 4 * workers : program ? workers : 1;
}

} // namespace

Expected<Surface> SurfaceEvaluator::evaluateGrid(const GridSpec& grid, const GridRunOptions& run) {
    const int64_t chunk = gridChunk(m_batched != nullptr, m_program != nullptr, m_batched ? pointChunk() : 1,
                                    m_options.usePool);
    return runGrid(grid, run, m_dirs.is2d(), chunk, [this](const auto& points) { return evaluate(points); });
}

std::unique_ptr<DetachedSurfaceEvaluator> SurfaceEvaluator::detach() {
    if (!batched()) return nullptr;
    auto d = std::unique_ptr<DetachedSurfaceEvaluator>(new DetachedSurfaceEvaluator());
    d->m_chunk = m_batched ? pointChunk() : 1;
    d->m_usePool = m_options.usePool;
    d->m_twoD = m_dirs.is2d();
    d->m_mlp = std::move(m_batched);
    d->m_program = std::move(m_program);
    m_fallbackReason = "the batched path was detached";
    return d;
}

DetachedSurfaceEvaluator::~DetachedSurfaceEvaluator() = default;

Expected<Surface> DetachedSurfaceEvaluator::evaluateGrid(const GridSpec& grid, const GridRunOptions& run) const {
    const int64_t chunk = gridChunk(m_mlp != nullptr, m_program != nullptr, m_chunk, m_usePool);
    return runGrid(grid, run, m_twoD, chunk,
                   [this](const std::vector<std::array<double, 2>>& points) -> Expected<std::vector<PointValue>> {
                       try {
                           if (m_program) return m_program->evaluate(points, m_usePool);
                           return m_mlp->evaluate(points, m_chunk, m_usePool);
                       } catch (const std::exception& e) {
                           return makeError(ErrorKind::Failed,
                                            "batched landscape evaluation failed: " + oneLineReason(e.what()));
                       }
                   });
}

} // namespace ts::landscape
