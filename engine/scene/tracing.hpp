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
    std::uint32_t hops = 3;          // layer edges followed
    std::uint32_t topK = 5;          // contributors kept per hop (they seed the next hop)
    std::uint32_t fieldChannels = 2; // through a convolution or pooling: the receptive field is shown whole in
                                     // this many of the strongest channels
};

struct TracedNeuron {
    std::uint32_t neuron = 0; // global id
    float credit = 0;         // share of the hop's largest credit, in (0, 1]
    std::uint32_t via = 0;    // neuron of the previous hop that gave it the most credit
};

// A channel of a feature map reached through a convolution or pooling: its share of the hop's credit and the
// window (rows y0..y1, columns x0..x1, inclusive) of it that the hop touched.
struct ChannelCredit {
    std::uint32_t layer = 0, channel = 0;
    float share = 0; // of the hop's total credit, in (0, 1]
    std::uint32_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;
};

struct TraceResult {
    std::vector<std::vector<TracedNeuron>> hops; // hops[h] sorted by credit, descending
    std::vector<NeuronEdge> edges;               // via -> neuron of every traced neuron (signed w), to highlight
    // Per hop, the strongest channels reached through convolutions and pooling (empty for dense hops).
    std::vector<std::vector<ChannelCredit>> channels;
    // Neurons of the receptive fields in those channels (highlighted; not all seed the next hop).
    std::vector<std::uint32_t> field;
};

// One hop follows every layer edge out of (forward) or into (backward) the current frontier's layers:
//  - with DenseWeights: forward credit(k) += score(j) * |W[k,j] * a_j|, backward credit(j) += score(k) * |W[k,j] * g_k|
//    (a, g: LayerStats::activation / gradient; taken as 1 where absent);
//  - with ConvWeights: the kernel window, credit as above per (input channel, offset) with W[co, ci, dy, dx];
//  - without weights, between layers of equal size (activations, norms): neuron i maps to neuron i;
//  - without weights, between maps of the same channels and smaller size (pooling, including global pooling):
//    output (c, y, x) draws on the window of stride s = ceil(H / H') in channel c, backward credit split by |a|;
//  - other connections (upsampling, reshapes) end the trace on that path.
// Errors: the start neuron is out of range.
Expected<TraceResult> traceForward(const NetworkDesc& desc, const NetworkData& data, std::uint32_t neuron,
                                   const TraceOptions& opt = {});
Expected<TraceResult> traceBackward(const NetworkDesc& desc, const NetworkData& data, std::uint32_t neuron,
                                    const TraceOptions& opt = {});

} // namespace ts::scene
