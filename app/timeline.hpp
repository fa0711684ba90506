// A bounded in-memory history of snapshot statistics, for scrubbing back through training and replaying it.
//
// Contract: push() is called by the training thread, everything else by the UI thread; all calls lock.
// Memory stays bounded two ways: (1) at most `capacity` snapshots are kept; when full, every second snapshot
// of the older half is dropped, so recent history stays dense and older history thins out; (2) per-neuron
// arrays (the expensive part for million-neuron models) are kept only for the newest snapshots that fit in
// `neuronBytesBudget`; older entries keep their per-layer summaries (histograms, norms, loss).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/ui/panels.hpp"

namespace ts::app {

// Per-neuron statistics the view can colour by (names for the UI in neuronStatisticNames()).
// Relevance is not a snapshot statistic: it is the relevance of each neuron for the Explain view's sample and
// class (LRP), shown on the neurons; a layer summary has none.
enum class NeuronStatistic { MeanActivation = 0, MeanAbsGradient, ActivationStd, DeadFraction, Relevance, Count };
const std::vector<std::string>& neuronStatisticNames();

struct LayerSummary {
    std::string name;
    // Per neuron (empty when dropped for memory, or gradient absent).
    std::vector<float> meanActivation, meanAbsGradient, activationStd, zeroFraction;
    ui::Histogram activations, gradients, weights;
    double gradientNorm = 0.0, weightNorm = 0.0, updateRatio = 0.0; // ||dW|| / ||W|| of its weight
    float deadFraction = 0.0f; // neurons with zero activation on every sample of the batch
    int64_t samples = 0;       // rows (samples) the activation statistics are over; 0: not known
    uint64_t nonFinite = 0;    // NaN + Inf in activations and gradients
    bool hasGradient = false;  // the output got a gradient (gradientNorm is meaningful)
    bool hasNeuronData() const { return !meanActivation.empty(); }
    const std::vector<float>& statistic(NeuronStatistic s) const;
};

struct SnapshotSummary {
    int64_t step = 0;
    double loss = 0.0, accuracy = 0.0, learningRate = 0.0;
    std::string health; // "healthy" or the capture health description
    std::vector<LayerSummary> layers;
    size_t neuronBytes() const;
};

class Timeline {
  public:
    explicit Timeline(size_t capacity = 256, size_t neuronBytesBudget = size_t(512) << 20);

    void push(SnapshotSummary snapshot);
    size_t size() const;
    // A shared, immutable entry (stays valid while the UI holds it, even if the timeline thins).
    std::shared_ptr<const SnapshotSummary> at(size_t index) const;
    std::shared_ptr<const SnapshotSummary> latest() const;
    // The newest entry at or before `index` that still has per-neuron data.
    std::shared_ptr<const SnapshotSummary> withNeuronData(size_t index) const;
    uint64_t version() const; // increments on every push
    // Index of the newest entry whose step is <= `step` (0 when all are later; 0 when empty). Positions in
    // the UI are kept as steps and resolved here each frame, because indices move when the timeline thins.
    size_t indexOfStep(int64_t step) const;

    // Recorded runs keep every snapshot (capacity = the run's length) and reload per-neuron arrays that the
    // byte budget dropped: withNeuronData(i) of such an entry asks `loader` for the full snapshot of its step
    // (called without the lock held, from the UI thread; the last one is cached).
    using NeuronLoader = std::function<std::shared_ptr<const SnapshotSummary>(int64_t step)>;
    void setCapacity(size_t capacity);
    void setNeuronBudget(size_t bytes);
    void setNeuronLoader(NeuronLoader loader);

  private:
    mutable std::mutex m_mutex;
    std::vector<std::shared_ptr<const SnapshotSummary>> m_entries;
    size_t m_capacity, m_budget;
    NeuronLoader m_loader;
    mutable std::shared_ptr<const SnapshotSummary> m_loaded; // the loader's last answer
    uint64_t m_version = 0;
};

// Loss and accuracy curves per step (all steps, not only snapshots), for the charts.
struct Curves {
    std::vector<float> trainLoss, trainAcc, valLoss, valAcc;
    std::vector<int64_t> valSteps;
};

} // namespace ts::app
