// Glue from capture's torch-free network description and the timeline's statistics to the scene module's
// input (layer DAG, per-neuron values, dense weights for edges).
#pragma once

#include <vector>

#include "app/timeline.hpp"
#include "engine/capture/network.hpp"
#include "engine/scene/network.hpp"

namespace ts::app {

// Layer kinds from module classes / op names ("Linear" -> Dense, "Conv2d" -> Conv, "relu" -> Act, ...).
scene::LayerKind layerKindOf(const std::string& type);

// One scene layer per capture node (node 0, the input, included); edges as captured, skips kept.
scene::NetworkDesc toSceneDesc(const capture::Network& net);

// Per-neuron values for the scene from one snapshot: `shown` colours the neurons; activation and
// activeFraction feed edge contributions and dead-neuron outliers. Layers without data stay empty. With
// normalisePerLayer, shown values are scaled per layer into [-1, 1] (dead fraction is already in [0, 1]).
// Per layer name, one value per neuron in the layer's output order (C, H, W flattened): relevance of a sample.
using LayerValues = std::vector<std::pair<std::string, std::vector<float>>>;

// With shown == Relevance the neurons show `relevance` (layers not in it stay empty), normalised per layer like
// the signed statistics; the snapshot still feeds the edges.
scene::NetworkData toSceneData(const capture::Network& net, const SnapshotSummary* snapshot,
                               NeuronStatistic shown, bool normalisePerLayer = true,
                               const LayerValues* relevance = nullptr);

// The node whose activations a layer summary describes (by name), or -1.
int nodeIndexOf(const capture::Network& net, const std::string& layerName);

} // namespace ts::app
