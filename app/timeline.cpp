// Timeline thinning and lookups.
#include "app/timeline.hpp"

#include <algorithm>

namespace ts::app {

const std::vector<std::string>& neuronStatisticNames() {
    static const std::vector<std::string> names = {"mean activation", "mean |gradient|", "activation std",
                                                   "dead (zero fraction)", "relevance (LRP)"};
    return names;
}

const std::vector<float>& LayerSummary::statistic(NeuronStatistic s) const {
    switch (s) {
    case NeuronStatistic::MeanAbsGradient:
        return meanAbsGradient;
    case NeuronStatistic::ActivationStd:
        return activationStd;
    case NeuronStatistic::DeadFraction:
        return zeroFraction;
    case NeuronStatistic::Relevance: {
        static const std::vector<float> none;
        return none;
    }
    default:
        return meanActivation;
    }
}

size_t SnapshotSummary::neuronBytes() const {
    size_t n = 0;
    for (const auto& l : layers)
        n += (l.meanActivation.size() + l.meanAbsGradient.size() + l.activationStd.size() +
              l.zeroFraction.size()) *
             sizeof(float);
    return n;
}

Timeline::Timeline(size_t capacity, size_t budget)
    : m_capacity(std::max<size_t>(capacity, 4)), m_budget(budget) {}

void Timeline::push(SnapshotSummary snapshot) {
    auto entry = std::make_shared<const SnapshotSummary>(std::move(snapshot));
    std::lock_guard lock(m_mutex);
    m_entries.push_back(std::move(entry));
    ++m_version;
    if (m_entries.size() > m_capacity) {
        // Drop every second entry of the older half: recent history stays dense.
        size_t half = m_entries.size() / 2;
        std::vector<std::shared_ptr<const SnapshotSummary>> kept;
        for (size_t i = 0; i < m_entries.size(); ++i)
            if (i >= half || i % 2 == 0) kept.push_back(m_entries[i]);
        m_entries.swap(kept);
    }
    // Keep per-neuron arrays only for the newest entries within the byte budget (always the newest one).
    size_t used = 0;
    for (size_t i = m_entries.size(); i-- > 0;) {
        size_t bytes = m_entries[i]->neuronBytes();
        if (bytes == 0) continue;
        if (used + bytes > m_budget && i + 1 != m_entries.size()) {
            auto slim = std::make_shared<SnapshotSummary>(*m_entries[i]);
            for (auto& l : slim->layers) {
                l.meanActivation = {};
                l.meanAbsGradient = {};
                l.activationStd = {};
                l.zeroFraction = {};
            }
            m_entries[i] = std::move(slim);
        } else {
            used += bytes;
        }
    }
}

size_t Timeline::size() const {
    std::lock_guard lock(m_mutex);
    return m_entries.size();
}

std::shared_ptr<const SnapshotSummary> Timeline::at(size_t index) const {
    std::lock_guard lock(m_mutex);
    return index < m_entries.size() ? m_entries[index] : nullptr;
}

std::shared_ptr<const SnapshotSummary> Timeline::latest() const {
    std::lock_guard lock(m_mutex);
    return m_entries.empty() ? nullptr : m_entries.back();
}

void Timeline::setCapacity(size_t capacity) {
    std::lock_guard lock(m_mutex);
    m_capacity = std::max<size_t>(capacity, 4);
}

void Timeline::setNeuronBudget(size_t bytes) {
    std::lock_guard lock(m_mutex);
    m_budget = bytes;
}

void Timeline::setNeuronLoader(NeuronLoader loader) {
    std::lock_guard lock(m_mutex);
    m_loader = std::move(loader);
}

namespace {
bool hasNeuronData(const SnapshotSummary& e) {
    return std::any_of(e.layers.begin(), e.layers.end(), [](const LayerSummary& l) { return l.hasNeuronData(); });
}
} // namespace

std::shared_ptr<const SnapshotSummary> Timeline::withNeuronData(size_t index) const {
    NeuronLoader loader;
    std::shared_ptr<const SnapshotSummary> exact;
    {
        std::lock_guard lock(m_mutex);
        if (m_entries.empty()) return nullptr;
        exact = m_entries[std::min(index, m_entries.size() - 1)];
        if (m_loader && !hasNeuronData(*exact)) {
            if (m_loaded && m_loaded->step == exact->step) return m_loaded;
            loader = m_loader;
        }
    }
    if (loader) {
        if (auto full = loader(exact->step)) {
            std::lock_guard lock(m_mutex);
            m_loaded = full;
            return full;
        }
    }
    std::lock_guard lock(m_mutex);
    if (m_entries.empty()) return nullptr;
    for (size_t i = std::min(index, m_entries.size() - 1) + 1; i-- > 0;) {
        const auto& e = m_entries[i];
        if (!e->layers.empty() && std::any_of(e->layers.begin(), e->layers.end(),
                                              [](const LayerSummary& l) { return l.hasNeuronData(); }))
            return e;
    }
    return nullptr;
}

size_t Timeline::indexOfStep(int64_t step) const {
    std::lock_guard lock(m_mutex);
    auto it = std::upper_bound(m_entries.begin(), m_entries.end(), step,
                               [](int64_t s, const std::shared_ptr<const SnapshotSummary>& e) { return s < e->step; });
    return it == m_entries.begin() ? 0 : size_t(it - m_entries.begin()) - 1;
}

uint64_t Timeline::version() const {
    std::lock_guard lock(m_mutex);
    return m_version;
}

} // namespace ts::app
