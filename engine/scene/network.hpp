// The scene's own, torch-free description of a network: layers, the layer DAG, optional weights and
// per-neuron statistics. The app converts capture's structure into this; tests build it by hand.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/error.hpp"

namespace ts::scene {

enum class LayerKind : std::uint8_t { Input, Dense, Conv, Pool, Norm, Act, Other };

const char* layerKindName(LayerKind kind);

// One layer. `shape` is the per-sample output shape: [N] for vectors, [C, H, W] for feature maps ([C, L] is
// read as C maps of 1 x L; more than 3 dims fold the leading ones into C). Neuron i of the layer is element i
// of the flattened shape in PyTorch's row-major order, so neuron (c, h, w) has index (c * H + h) * W + w.
struct LayerSpec {
    std::string name; // as PyTorch spells it: "layer1.0.conv1"; dotted prefixes form groups
    LayerKind kind = LayerKind::Other;
    std::vector<std::int64_t> shape;
    std::int64_t paramCount = 0;
    // A rank-3 output laid out [H, W, C] (a permute to channels-last and the layers after it, as in ConvNeXt
    // and Swin blocks): drawn as C maps of H x W like a convolution's [C, H, W].
    bool channelsLast = false;
};

// Data flows from layer `from` to layer `to` (indices into NetworkDesc::layers).
struct LayerEdge {
    std::uint32_t from = 0, to = 0;
};

struct NetworkDesc {
    std::vector<LayerSpec> layers;
    std::vector<LayerEdge> edges;
};

// Dense weights of the connection from -> to: row-major [neurons(to) x neurons(from)], as nn.Linear stores
// them (a conv layer feeding a Linear through flatten has neurons(from) = C*H*W).
struct DenseWeights {
    std::uint32_t from = 0, to = 0;
    std::vector<float> w;
};

// Per channel pair of a conv connection: row-major [C(to) x C(from)], e.g. the L2 norm of each kh x kw kernel.
struct KernelNorms {
    std::uint32_t from = 0, to = 0;
    std::vector<float> norms;
};

// Weights of a 2-D convolution from -> to, row-major [C(to) x C(from)/groups x kh x kw] as nn.Conv2d stores
// them, with its geometry (dilation 1). The app infers stride and padding from the layers' shapes.
struct ConvWeights {
    std::uint32_t from = 0, to = 0;
    std::uint32_t kh = 1, kw = 1, strideH = 1, strideW = 1, padH = 0, padW = 0, groups = 1;
    std::vector<float> w;
};

// Per-neuron statistics of one layer; every vector is optional (empty) or has one entry per neuron.
struct LayerStats {
    std::vector<float> value;          // what neurons show (colour); falls back to `activation`
    std::vector<float> activation;     // mean activation over the probe batch (a in |w * a|)
    std::vector<float> gradient;       // mean gradient of the loss w.r.t. the neuron (g in |w * g|)
    std::vector<float> activeFraction; // share of probe samples with a non-zero activation (0: dead)
    std::vector<float> profile;        // row-major [neurons x probeCount]: activation per probe sample
    std::uint32_t probeCount = 0;
};

// Everything optional that comes with the structure. `layers` is empty or has one entry per layer.
struct NetworkData {
    std::vector<LayerStats> layers;
    std::vector<DenseWeights> dense;
    std::vector<KernelNorms> kernels;
    std::vector<ConvWeights> conv;
};

// Number of neurons of a layer (product of its shape).
std::uint64_t neuronCount(const LayerSpec& layer);

// The shape folded to [C, H, W] (a vector [N] becomes [1, 1, N]... see neuron_layout for how it is drawn); a
// channels-last layer's [H, W, C] gives c = C, h = H, w = W.
struct Chw {
    std::uint32_t c = 1, h = 1, w = 1;
    bool channelsLast = false; // neurons in [H, W, C] order (LayerSpec::channelsLast)
    // The layer's neuron index of position i (= y * w + x) of map c.
    std::uint32_t neuron(std::uint32_t channel, std::uint32_t i) const {
        return channelsLast ? i * c + channel : channel * h * w + i;
    }
};
Chw foldShape(const LayerSpec& layer);

// Global neuron ids: layer l owns [offsets[l], offsets[l + 1]).
std::vector<std::uint32_t> neuronOffsets(const NetworkDesc& desc);

// Checks indices, shapes, acyclicity and that every array in `data` has the size its layer implies.
// Errors name the layer (or edge) and the expected and actual sizes.
Status validate(const NetworkDesc& desc, const NetworkData& data);

// Kahn order of the layer DAG; an error names a layer on a cycle.
Expected<std::vector<std::uint32_t>> topologicalOrder(std::uint32_t nodeCount,
                                                      const std::vector<LayerEdge>& edges);

// Hierarchical groups of repeated blocks, from dotted name prefixes: "layer1.0.conv1" lies in groups
// "layer1" and "layer1.0". A group exists when at least two layers share its prefix.
struct LayerGroup {
    std::string name;
    std::int32_t parent = -1;          // enclosing group, -1 at top level
    std::vector<std::uint32_t> layers; // all layers inside, nested groups included
    std::uint32_t depth = 0;           // 0 for top-level groups
};
std::vector<LayerGroup> groupsFromNames(const NetworkDesc& desc);

// The stage of each layer: the prefix of its name at the shallowest module depth that splits the model into at
// least 4 parts ("layer1" for a ResNet, "features.denseblock2" for a DenseNet, "encoder.layers.encoder_layer_3"
// for a ViT); a layer with a shorter name is its own stage. Used to cut folds and to name stages in the scene.
std::vector<std::string> stagesOf(const NetworkDesc& desc);

// What names stages in the scene: the dotted prefix every stage name with a dot shares, when what remains of
// each starts with a letter ("encoder.layers." for a ViT's "encoder.layers.encoder_layer_3", which reads
// "encoder_layer_3"); "" when there is none or a remainder would be a bare number ("features.3" stays).
std::string stageLabelPrefix(const std::vector<std::string>& stages);

} // namespace ts::scene
