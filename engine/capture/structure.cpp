// describeNetwork(): the layer DAG of a Model from one probe forward pass and the model's layer links.
#include "engine/capture/structure.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <functional>
#include <map>
#include <set>

namespace ts::capture {

namespace {

std::vector<int64_t> perSample(const torch::Tensor& t) {
    std::vector<int64_t> s;
    for (int64_t d = 1; d < t.dim(); ++d)
        s.push_back(t.size(d));
    return s;
}

int64_t product(const std::vector<int64_t>& s) {
    int64_t n = 1;
    for (auto d : s)
        n *= d;
    return n;
}

bool contains(const std::string& s, const char* what) {
    return s.find(what) != std::string::npos;
}

} // namespace

std::string embeddingHint(bool integralInputs, const std::string& error) {
    if (integralInputs || !contains(error, "'indices'")) return {};
    return "; an nn.Embedding takes integer token indices: give them as an int64 or int32 array (.npy) or "
           "tensor (.pt)";
}

Expected<Network> describeNetwork(Model& model, const std::vector<int64_t>& inputShape,
                                  torch::ScalarType inputType) {
    const bool integral = c10::isIntegralType(inputType, false);
    std::vector<int64_t> shape = {2};
    shape.insert(shape.end(), inputShape.begin(), inputShape.end());
    ForwardCapture fc;
    {
        // Gradients stay enabled: modules with a no-grad fast path (nn.TransformerEncoderLayer,
        // nn.MultiheadAttention in eval mode) would otherwise skip the layers training shows.
        const bool wasTraining = model.isTraining();
        model.setTraining(false);
        auto gen = at::detail::createCPUGenerator(7);
        try {
            fc = model.forwardCapture(integral ? at::zeros(shape, at::kLong) : at::rand(shape, gen));
        } catch (const std::exception& e) {
            model.setTraining(wasTraining);
            std::string what = e.what();
            return makeError(ErrorKind::Usage,
                             "model '" + model.name() + "' fails on input " + shapeString(inputShape) + ": " +
                                 oneLineReason(what) +
                                 embeddingHint(integral, what));
        }
        model.setTraining(wasTraining);
    }

    Network net;
    net.modelName = model.name();
    net.outputOnly = model.outputOnly();
    const CaptureCoverage cov = model.coverage();
    net.usedParams = cov.params;
    net.capturedParams = cov.captured;
    net.unusedParams = cov.unused;
    net.uncaptured = cov.missing;
    LayerNode in;
    in.name = "input";
    in.type = "Input";
    in.outputShape = inputShape;
    in.neurons = product(inputShape);
    in.grid = foldToGrid(inputShape);
    net.nodes.push_back(in);

    // Layer links by name; activations the model did not return (dropped) are bridged to their own inputs.
    std::vector<Model::LayerInfo> infos = model.layerInfo();
    std::map<std::string, int> infoIndex;
    for (size_t i = 0; i < infos.size(); ++i)
        infoIndex[infos[i].name] = static_cast<int>(i);
    std::map<std::string, uint32_t> nodeOf; // activation name -> node index
    for (size_t a = 0; a < fc.activations.size(); ++a)
        nodeOf[fc.activations[a].first] = static_cast<uint32_t>(a + 1);

    std::function<void(int, std::set<uint32_t>&, int)> resolve = [&](int info, std::set<uint32_t>& out,
                                                                     int depth) {
        if (info < 0) {
            out.insert(0);
            return;
        }
        if (depth > 64 || info >= static_cast<int>(infos.size())) return;
        auto it = nodeOf.find(infos[info].name);
        if (it != nodeOf.end()) {
            out.insert(it->second);
            return;
        }
        for (int src : infos[info].inputs)
            resolve(src, out, depth + 1);
    };

    const auto params = model.namedParameters();
    for (size_t a = 0; a < fc.activations.size(); ++a) {
        const auto& [name, t] = fc.activations[a];
        LayerNode node;
        node.name = name;
        node.activation = static_cast<int32_t>(a);
        node.outputShape = perSample(batchFirst(t, fc.batchDim(a)));
        node.neurons = product(node.outputShape);
        node.grid = foldToGrid(node.outputShape);
        const uint32_t self = static_cast<uint32_t>(a + 1);
        std::set<uint32_t> sources;
        auto ii = infoIndex.find(name);
        if (ii != infoIndex.end()) {
            const auto& info = infos[ii->second];
            node.type = info.type;
            node.module = info.module;
            for (int src : info.inputs)
                resolve(src, sources, 0);
        } else {
            node.type = "Layer";
            sources.insert(self - 1); // unknown links: a chain in forward order
        }
        sources.erase(self);
        for (uint32_t s : sources) {
            if (s >= self) continue; // links only run forward
            net.edges.push_back({s, self, self > s + 1});
            node.inputShapes.push_back(net.nodes[s].outputShape);
        }

        // Parameters owned directly by the module (its own names, not its children's).
        const torch::Tensor* weight = nullptr;
        bool bias = false;
        if (!node.module.empty()) {
            const std::string prefix = node.module + ".";
            for (const auto& [pname, p] : params) {
                if (pname.rfind(prefix, 0) != 0 || pname.find('.', prefix.size()) != std::string::npos)
                    continue;
                node.paramCount += p.numel();
                const std::string leaf = pname.substr(prefix.size());
                if (leaf == "weight" && p.dim() >= 2) weight = &p;
                if (leaf == "bias") bias = true;
            }
        }
        if (weight && weight->size(0) > 0) {
            const int64_t positions = node.neurons / weight->size(0); // Linear: 1, Conv: output pixels
            node.flops = 2 * weight->numel() * positions + (bias ? node.neurons : 0);
        } else if (contains(node.type, "Pool") || contains(node.type, "pool")) {
            int64_t inputs = 0;
            for (const auto& s : node.inputShapes)
                inputs += product(s);
            node.flops = inputs;
        } else {
            node.flops = node.neurons;
        }
        net.nodes.push_back(std::move(node));
    }
    return net;
}

} // namespace ts::capture
