// Torch-free, header-only description of a network as capture sees it: the layer DAG with shapes, parameter
// counts, FLOPs estimates and neuron counts. The scene lays it out; the UI prints it. Needs no library.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace ts::capture {

// One node of the layer DAG: the model input, a module call or a functional op whose output forwardCapture
// returns. Shapes are per sample (batch dimension dropped).
struct LayerNode {
    std::string name;   // "input", or the activation name: "fc1", "layer1.0.conv1", "layer1.0.add"
    std::string type;   // "Input", module class ("Linear", "Conv2d", "ReLU") or op ("relu", "add", "cat")
    std::string module; // module path whose own parameters belong to this node ("" when none)
    std::vector<std::vector<int64_t>> inputShapes;
    std::vector<int64_t> outputShape;
    int64_t paramCount = 0;               // parameters owned directly by `module`
    int64_t flops = 0;                    // forward FLOPs per sample (multiply-add = 2), an estimate
    int64_t neurons = 0;                  // product of outputShape; conv maps: C x H x W
    std::array<int64_t, 3> grid{1, 1, 1}; // outputShape folded to [C, H, W] ([N] -> [1, 1, N])
    int32_t activation = -1;              // index into ForwardCapture::activations; -1 for the input node
};

// Data flows from node `from` to node `to`. A skip edge bypasses at least one node in forward order
// (to > from + 1), e.g. the identity branch of a residual block.
struct DataEdge {
    uint32_t from = 0, to = 0;
    bool skip = false;
};

// Nodes are in forward (topological) order; node 0 is the input.
struct Network {
    std::string modelName;
    std::vector<LayerNode> nodes;
    std::vector<DataEdge> edges;
    bool outputOnly = false; // the model's activations could not be exposed; only its output is a layer
    // Coverage: parameters forward() uses, those owned by captured layers, parameters of modules it never
    // calls, and the modules whose outputs could not be captured ("'name' (why)").
    int64_t usedParams = 0, capturedParams = 0, unusedParams = 0;
    std::vector<std::string> uncaptured;
    double paramCoverage() const { return usedParams > 0 ? double(capturedParams) / double(usedParams) : 1.0; }

    int64_t totalParams() const {
        int64_t n = 0;
        for (const auto& node : nodes)
            n += node.paramCount;
        return n;
    }
    int64_t totalFlops() const {
        int64_t n = 0;
        for (const auto& node : nodes)
            n += node.flops;
        return n;
    }
    // Over every node but the input.
    int64_t totalNeurons() const {
        int64_t n = 0;
        for (size_t i = 1; i < nodes.size(); ++i)
            n += nodes[i].neurons;
        return n;
    }
    // Node index, or -1.
    int32_t find(const std::string& name) const {
        for (size_t i = 0; i < nodes.size(); ++i)
            if (nodes[i].name == name) return static_cast<int32_t>(i);
        return -1;
    }
};

// Per-sample shape folded to [C, H, W]: [] -> 1x1x1, [N] -> 1x1xN, [C, L] -> Cx1xL, [C, H, W] as is, more
// dims fold the leading ones into C.
inline std::array<int64_t, 3> foldToGrid(const std::vector<int64_t>& shape) {
    if (shape.empty()) return {1, 1, 1};
    if (shape.size() == 1) return {1, 1, shape[0]};
    if (shape.size() == 2) return {shape[0], 1, shape[1]};
    int64_t c = 1;
    for (size_t i = 0; i + 2 < shape.size(); ++i)
        c *= shape[i];
    return {c, shape[shape.size() - 2], shape[shape.size() - 1]};
}

// "[1, 28, 28]"
inline std::string shapeString(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

// A printable table, one line per node: name, type, output shape, neurons, params, FLOPs, inputs.
inline std::string summary(const Network& net) {
    std::ostringstream out;
    char line[512];
    std::snprintf(line, sizeof line, "%-28s %-18s %-18s %12s %10s %14s  %s\n", "layer", "type", "output",
                  "neurons", "params", "FLOPs", "inputs");
    out << net.modelName << (net.outputOnly ? " (output only)" : "") << "\n" << line;
    for (size_t i = 0; i < net.nodes.size(); ++i) {
        const auto& n = net.nodes[i];
        std::string inputs;
        for (const auto& e : net.edges) {
            if (e.to != i) continue;
            if (!inputs.empty()) inputs += ", ";
            inputs += net.nodes[e.from].name + (e.skip ? " (skip)" : "");
        }
        std::snprintf(line, sizeof line, "%-28s %-18s %-18s %12lld %10lld %14lld  %s\n", n.name.c_str(),
                      n.type.c_str(), shapeString(n.outputShape).c_str(), static_cast<long long>(n.neurons),
                      static_cast<long long>(n.paramCount), static_cast<long long>(n.flops), inputs.c_str());
        out << line;
    }
    std::snprintf(line, sizeof line, "total: %lld neurons, %lld parameters, %lld FLOPs per sample\n",
                  static_cast<long long>(net.totalNeurons()), static_cast<long long>(net.totalParams()),
                  static_cast<long long>(net.totalFlops()));
    out << line;
    return out.str();
}

} // namespace ts::capture
