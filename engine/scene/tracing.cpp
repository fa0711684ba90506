// Credit tracing over the layer DAG (see tracing.hpp).
#include "engine/scene/tracing.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace ts::scene {

namespace {

Expected<TraceResult> trace(const NetworkDesc& desc, const NetworkData& data, std::uint32_t neuron,
                            const TraceOptions& opt, bool forward) {
    const auto off = neuronOffsets(desc);
    if (neuron >= off.back())
        return makeError(ErrorKind::Usage, "scene: cannot trace neuron " + std::to_string(neuron) + ": the network has " +
                                               std::to_string(off.back()) + " neurons");
    auto layerOf = [&](std::uint32_t n) {
        return static_cast<std::uint32_t>(std::upper_bound(off.begin(), off.end(), n) - off.begin() - 1);
    };
    auto stat = [&](std::uint32_t layer, bool grad, std::uint32_t local) {
        if (layer >= data.layers.size()) return 1.0f;
        const auto& v = grad ? data.layers[layer].gradient : data.layers[layer].activation;
        return v.empty() ? 1.0f : v[local];
    };
    auto weightsOf = [&](std::uint32_t from, std::uint32_t to) -> const DenseWeights* {
        for (const auto& d : data.dense)
            if (d.from == from && d.to == to) return &d;
        return nullptr;
    };

    TraceResult res;
    std::vector<std::pair<std::uint32_t, float>> frontier{{neuron, 1.0f}};
    for (std::uint32_t hop = 0; hop < opt.hops && !frontier.empty(); ++hop) {
        struct Acc {
            float credit = 0, best = -1, bestW = 0;
            std::uint32_t via = 0;
        };
        std::unordered_map<std::uint32_t, Acc> acc;
        auto add = [&](std::uint32_t target, std::uint32_t from, float credit, float w) {
            if (!(credit > 0) || !std::isfinite(credit)) return;
            auto& a = acc[target];
            a.credit += credit;
            if (credit > a.best) a.best = credit, a.via = from, a.bestW = w;
        };
        for (const auto& [n, score] : frontier) {
            const auto l = layerOf(n);
            const auto local = n - off[l];
            for (const auto& e : desc.edges) {
                if ((forward ? e.from : e.to) != l) continue;
                const auto other = forward ? e.to : e.from;
                const auto nOther = off[other + 1] - off[other];
                if (const DenseWeights* w = weightsOf(e.from, e.to)) {
                    const auto nIn = off[e.from + 1] - off[e.from];
                    if (forward) {
                        const float a = stat(l, false, local);
                        for (std::uint32_t k = 0; k < nOther; ++k) {
                            const float wk = w->w[std::size_t(k) * nIn + local];
                            add(off[other] + k, n, score * std::fabs(wk * a), wk);
                        }
                    } else {
                        const float g = stat(l, true, local);
                        for (std::uint32_t j = 0; j < nOther; ++j) {
                            const float wk = w->w[std::size_t(local) * nIn + j];
                            add(off[other] + j, n, score * std::fabs(wk * g), wk);
                        }
                    }
                } else if (nOther == off[l + 1] - off[l]) {
                    add(off[other] + local, n, score, 1.0f);
                }
            }
        }
        std::vector<TracedNeuron> hopList;
        for (const auto& [t, a] : acc) hopList.push_back({t, a.credit, a.via});
        std::sort(hopList.begin(), hopList.end(), [](const TracedNeuron& p, const TracedNeuron& q) {
            return p.credit > q.credit || (p.credit == q.credit && p.neuron < q.neuron);
        });
        if (hopList.size() > opt.topK) hopList.resize(opt.topK);
        const float top = hopList.empty() ? 1.0f : hopList.front().credit;
        frontier.clear();
        for (auto& t : hopList) {
            t.credit /= top;
            frontier.push_back({t.neuron, t.credit});
            const auto& a = acc[t.neuron];
            res.edges.push_back(forward ? NeuronEdge{t.via, t.neuron, a.bestW} : NeuronEdge{t.neuron, t.via, a.bestW});
        }
        res.hops.push_back(std::move(hopList));
    }
    return res;
}

} // namespace

Expected<TraceResult> traceForward(const NetworkDesc& desc, const NetworkData& data, std::uint32_t neuron,
                                   const TraceOptions& opt) {
    return trace(desc, data, neuron, opt, true);
}

Expected<TraceResult> traceBackward(const NetworkDesc& desc, const NetworkData& data, std::uint32_t neuron,
                                    const TraceOptions& opt) {
    return trace(desc, data, neuron, opt, false);
}

} // namespace ts::scene
