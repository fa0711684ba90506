// Validation, neuron numbering and name-derived groups for the scene's network description.
#include "engine/scene/network.hpp"

#include <set>

#include <algorithm>
#include <cctype>
#include <map>

namespace ts::scene {

const char* layerKindName(LayerKind kind) {
    switch (kind) {
    case LayerKind::Input: return "input";
    case LayerKind::Dense: return "dense";
    case LayerKind::Conv: return "conv";
    case LayerKind::Pool: return "pool";
    case LayerKind::Norm: return "norm";
    case LayerKind::Act: return "act";
    case LayerKind::Other: return "other";
    }
    return "other";
}

std::uint64_t neuronCount(const LayerSpec& layer) {
    if (layer.shape.empty()) return 0;
    std::uint64_t n = 1;
    for (auto d : layer.shape) n *= d > 0 ? static_cast<std::uint64_t>(d) : 0;
    return n;
}

Chw foldShape(const LayerSpec& layer) {
    Chw r;
    const auto& s = layer.shape;
    if (s.size() == 1) {
        r.w = static_cast<std::uint32_t>(s[0]);
    } else if (s.size() == 2) {
        r.c = static_cast<std::uint32_t>(s[0]);
        r.w = static_cast<std::uint32_t>(s[1]);
    } else if (s.size() == 3 && layer.channelsLast) {
        r.c = static_cast<std::uint32_t>(s[2]);
        r.h = static_cast<std::uint32_t>(s[0]);
        r.w = static_cast<std::uint32_t>(s[1]);
        r.channelsLast = true;
    } else if (s.size() >= 3) {
        std::uint64_t c = 1;
        for (std::size_t i = 0; i + 2 < s.size(); ++i) c *= static_cast<std::uint64_t>(s[i]);
        r.c = static_cast<std::uint32_t>(c);
        r.h = static_cast<std::uint32_t>(s[s.size() - 2]);
        r.w = static_cast<std::uint32_t>(s[s.size() - 1]);
    }
    return r;
}

std::vector<std::uint32_t> neuronOffsets(const NetworkDesc& desc) {
    std::vector<std::uint32_t> off(desc.layers.size() + 1, 0);
    for (std::size_t l = 0; l < desc.layers.size(); ++l)
        off[l + 1] = off[l] + static_cast<std::uint32_t>(neuronCount(desc.layers[l]));
    return off;
}

Expected<std::vector<std::uint32_t>> topologicalOrder(std::uint32_t nodeCount,
                                                      const std::vector<LayerEdge>& edges) {
    std::vector<std::uint32_t> indeg(nodeCount, 0);
    std::vector<std::vector<std::uint32_t>> out(nodeCount);
    for (const auto& e : edges) {
        out[e.from].push_back(e.to);
        ++indeg[e.to];
    }
    std::vector<std::uint32_t> order, stack;
    for (std::uint32_t v = 0; v < nodeCount; ++v)
        if (indeg[v] == 0) stack.push_back(v);
    // Pop the smallest index first so the order is deterministic and close to the input order.
    std::reverse(stack.begin(), stack.end());
    while (!stack.empty()) {
        auto v = stack.back();
        stack.pop_back();
        order.push_back(v);
        for (auto w : out[v])
            if (--indeg[w] == 0) stack.push_back(w);
    }
    if (order.size() != nodeCount) {
        for (std::uint32_t v = 0; v < nodeCount; ++v)
            if (indeg[v] > 0)
                return makeError(ErrorKind::Usage,
                                 "scene: the layer graph has a cycle through node " + std::to_string(v));
    }
    return order;
}

namespace {
Status checkSize(const std::vector<float>& v, std::uint64_t expected, const LayerSpec& layer,
                 const char* what) {
    if (v.empty() || v.size() == expected) return Status::ok();
    return makeError(ErrorKind::Usage, "scene: layer '" + layer.name + "' " + what + " has " +
                                           std::to_string(v.size()) + " entries, expected " +
                                           std::to_string(expected));
}
} // namespace

Status validate(const NetworkDesc& desc, const NetworkData& data) {
    const auto L = static_cast<std::uint32_t>(desc.layers.size());
    if (L == 0) return makeError(ErrorKind::Usage, "scene: the network has no layers");
    std::uint64_t total = 0;
    for (const auto& layer : desc.layers) {
        if (layer.shape.empty() || neuronCount(layer) == 0)
            return makeError(ErrorKind::Usage, "scene: layer '" + layer.name + "' has an empty shape");
        total += neuronCount(layer);
    }
    if (total >= (1ull << 31))
        return makeError(ErrorKind::Usage, "scene: " + std::to_string(total) +
                                               " neurons exceed the 2^31 the scene indexes");
    for (const auto& e : desc.edges)
        if (e.from >= L || e.to >= L || e.from == e.to)
            return makeError(ErrorKind::Usage, "scene: edge " + std::to_string(e.from) + " -> " +
                                                   std::to_string(e.to) + " is invalid for " +
                                                   std::to_string(L) + " layers");
    auto order = topologicalOrder(L, desc.edges);
    if (!order) {
        return order.status();
    }
    if (!data.layers.empty() && data.layers.size() != L)
        return makeError(ErrorKind::Usage, "scene: statistics for " + std::to_string(data.layers.size()) +
                                               " layers, the network has " + std::to_string(L));
    for (std::uint32_t l = 0; l < data.layers.size(); ++l) {
        const auto& s = data.layers[l];
        const auto& layer = desc.layers[l];
        const auto n = neuronCount(layer);
        TS_TRY(checkSize(s.value, n, layer, "value"));
        TS_TRY(checkSize(s.activation, n, layer, "activation"));
        TS_TRY(checkSize(s.gradient, n, layer, "gradient"));
        TS_TRY(checkSize(s.activeFraction, n, layer, "activeFraction"));
        if (!s.profile.empty() && (s.probeCount == 0 || s.profile.size() != n * s.probeCount))
            return makeError(ErrorKind::Usage, "scene: layer '" + layer.name + "' profile has " +
                                                   std::to_string(s.profile.size()) + " entries, expected " +
                                                   std::to_string(n) + " x probeCount " +
                                                   std::to_string(s.probeCount));
    }
    for (const auto& d : data.dense) {
        if (d.from >= L || d.to >= L)
            return makeError(ErrorKind::Usage, "scene: dense weights name layer " +
                                                   std::to_string(std::max(d.from, d.to)) + " of " +
                                                   std::to_string(L));
        const auto expected = neuronCount(desc.layers[d.to]) * neuronCount(desc.layers[d.from]);
        if (d.w.size() != expected)
            return makeError(ErrorKind::Usage, "scene: dense weights '" + desc.layers[d.from].name + "' -> '" +
                                                   desc.layers[d.to].name + "' have " +
                                                   std::to_string(d.w.size()) + " entries, expected " +
                                                   std::to_string(expected));
    }
    for (const auto& k : data.kernels) {
        if (k.from >= L || k.to >= L)
            return makeError(ErrorKind::Usage, "scene: kernel norms name layer " +
                                                   std::to_string(std::max(k.from, k.to)) + " of " +
                                                   std::to_string(L));
        const auto expected =
            std::uint64_t(foldShape(desc.layers[k.to]).c) * foldShape(desc.layers[k.from]).c;
        if (k.norms.size() != expected)
            return makeError(ErrorKind::Usage, "scene: kernel norms '" + desc.layers[k.from].name + "' -> '" +
                                                   desc.layers[k.to].name + "' have " +
                                                   std::to_string(k.norms.size()) + " entries, expected " +
                                                   std::to_string(expected));
    }
    for (const auto& c : data.conv) {
        if (c.from >= L || c.to >= L)
            return makeError(ErrorKind::Usage, "scene: conv weights name layer " + std::to_string(std::max(c.from, c.to)) +
                                                   " of " + std::to_string(L));
        const Chw in = foldShape(desc.layers[c.from]), out = foldShape(desc.layers[c.to]);
        const std::uint64_t groups = std::max(c.groups, 1u);
        const auto expected = std::uint64_t(out.c) * (in.c / groups) * c.kh * c.kw;
        if (c.w.size() != expected || in.c % groups || out.c % groups || c.strideH == 0 || c.strideW == 0)
            return makeError(ErrorKind::Usage, "scene: conv weights '" + desc.layers[c.from].name + "' -> '" +
                                                   desc.layers[c.to].name + "' have " + std::to_string(c.w.size()) +
                                                   " entries, expected " + std::to_string(expected));
    }
    return Status::ok();
}

std::vector<LayerGroup> groupsFromNames(const NetworkDesc& desc) {
    // Count layers per dotted prefix (excluding the full name itself).
    std::map<std::string, std::vector<std::uint32_t>> byPrefix;
    for (std::uint32_t l = 0; l < desc.layers.size(); ++l) {
        const auto& name = desc.layers[l].name;
        for (std::size_t pos = name.find('.'); pos != std::string::npos; pos = name.find('.', pos + 1))
            byPrefix[name.substr(0, pos)].push_back(l);
    }
    std::vector<LayerGroup> groups;
    std::map<std::string, std::int32_t> index;
    // std::map iterates shorter prefixes of a name before longer ones, so parents come first.
    for (auto& [prefix, layers] : byPrefix) {
        if (layers.size() < 2) continue;
        LayerGroup g;
        g.name = prefix;
        g.layers = layers;
        for (std::size_t pos = prefix.rfind('.'); pos != std::string::npos;
             pos = pos == 0 ? std::string::npos : prefix.rfind('.', pos - 1)) {
            auto it = index.find(prefix.substr(0, pos));
            if (it != index.end()) {
                g.parent = it->second;
                g.depth = groups[it->second].depth + 1;
                break;
            }
        }
        index[prefix] = static_cast<std::int32_t>(groups.size());
        groups.push_back(std::move(g));
    }
    return groups;
}

std::vector<std::string> stagesOf(const NetworkDesc& desc) {
    auto prefix = [](const std::string& name, int depth) {
        size_t pos = 0;
        for (int d = 0; d < depth; ++d) {
            pos = name.find('.', pos);
            if (pos == std::string::npos) return name;
            ++pos;
        }
        return pos ? name.substr(0, pos - 1) : name;
    };
    std::vector<std::string> out(desc.layers.size());
    for (int depth = 1; depth <= 6; ++depth) {
        std::set<std::string> parts;
        for (size_t l = 0; l < desc.layers.size(); ++l) {
            out[l] = prefix(desc.layers[l].name, depth);
            if (out[l] != desc.layers[l].name) parts.insert(out[l]);
        }
        if (parts.size() >= 4) break;
    }
    return out;
}

std::string stageLabelPrefix(const std::vector<std::string>& stages) {
    std::vector<const std::string*> dotted;
    for (const auto& s : stages)
        if (s.find('.') != std::string::npos) dotted.push_back(&s);
    if (dotted.size() < 2) return {};
    // The longest prefix ending in '.' that every dotted name starts with and none equals.
    std::string prefix = dotted[0]->substr(0, dotted[0]->rfind('.') + 1);
    for (const std::string* s : dotted)
        while (!prefix.empty() && s->compare(0, prefix.size(), prefix) != 0) {
            prefix.pop_back();
            const auto dot = prefix.rfind('.');
            prefix.resize(dot == std::string::npos ? 0 : dot + 1);
        }
    if (prefix.empty()) return {};
    for (const std::string* s : dotted)
        if (s->size() <= prefix.size() || !std::isalpha(static_cast<unsigned char>((*s)[prefix.size()])))
            return {};
    return prefix;
}

} // namespace ts::scene
