// Neuron tracing over a few hops, in the manner of DGMTracker's neuron-level analysis: forward, where a
// neuron's signal goes (credit |w * a| of the source activation); backward, which neurons it draws on (credit
// |w * g|: the share of the neuron's gradient that flows back to each input).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/scene/edges.hpp"
#include "engine/scene/network.hpp"

namespace ts::scene {

struct TraceOptions {
    std::uint32_t hops = 3; // layer edges followed
    std::uint32_t topK = 5; // contributors kept per hop (they seed the next hop)
};

struct TracedNeuron {
    std::uint32_t neuron = 0; // global id
    float credit = 0;         // share of the hop's largest credit, in (0, 1]
    std::uint32_t via = 0;    // neuron of the previous hop that gave it the most credit
};

struct TraceResult {
    std::vector<std::vector<TracedNeuron>> hops; // hops[h] sorted by credit, descending
    std::vector<NeuronEdge> edges;               // via -> neuron of every traced neuron (signed w), to highlight
};

// One hop follows every layer edge out of (forward) or into (backward) the current frontier's layers:
//  - with DenseWeights: forward credit(k) += score(j) * |W[k,j] * a_j|, backward credit(j) += score(k) * |W[k,j] * g_k|
//    (a, g: LayerStats::activation / gradient; taken as 1 where absent);
//  - without weights, between layers of equal size (activations, norms): neuron i maps to neuron i;
//  - other connections (pooling, convolution) end the trace on that path.
// Errors: the start neuron is out of range.
Expected<TraceResult> traceForward(const NetworkDesc& desc, const NetworkData& data, std::uint32_t neuron,
                                   const TraceOptions& opt = {});
Expected<TraceResult> traceBackward(const NetworkDesc& desc, const NetworkData& data, std::uint32_t neuron,
                                    const TraceOptions& opt = {});

} // namespace ts::scene
