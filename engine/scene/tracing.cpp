// Credit tracing over the layer DAG (see tracing.hpp): dense, convolution, pooling and identity hops.
#include "engine/scene/tracing.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

namespace ts::scene {

namespace {

struct Acc {
    float credit = 0, best = -1, bestW = 0;
    std::uint32_t via = 0;
    bool spatial = false; // reached through a convolution or pooling (part of a receptive field)
};

class Tracer {
  public:
    Tracer(const NetworkDesc& desc, const NetworkData& data, bool forward)
        : m_desc(desc), m_data(data), m_forward(forward), m_off(neuronOffsets(desc)) {}

    const std::vector<std::uint32_t>& offsets() const { return m_off; }
    std::uint32_t layerOf(std::uint32_t n) const {
        return static_cast<std::uint32_t>(std::upper_bound(m_off.begin(), m_off.end(), n) - m_off.begin() - 1);
    }

    // Credits of one hop out of `frontier` (neuron, score).
    std::unordered_map<std::uint32_t, Acc> hop(const std::vector<std::pair<std::uint32_t, float>>& frontier) {
        m_acc.clear();
        for (const auto& [n, score] : frontier) {
            const auto l = layerOf(n);
            const auto local = n - m_off[l];
            for (const auto& e : m_desc.edges)
                if ((m_forward ? e.from : e.to) == l) follow(e, n, local, score);
        }
        return std::move(m_acc);
    }

  private:
    float stat(std::uint32_t layer, bool grad, std::uint32_t local) const {
        if (layer >= m_data.layers.size()) return 1.0f;
        const auto& v = grad ? m_data.layers[layer].gradient : m_data.layers[layer].activation;
        return v.empty() ? 1.0f : v[local];
    }
    std::uint32_t size(std::uint32_t layer) const { return m_off[layer + 1] - m_off[layer]; }

    void add(std::uint32_t target, std::uint32_t from, float credit, float w, bool spatial) {
        if (!(credit > 0) || !std::isfinite(credit)) return;
        auto& a = m_acc[target];
        a.credit += credit;
        a.spatial = a.spatial || spatial;
        if (credit > a.best) a.best = credit, a.via = from, a.bestW = w;
    }

    void follow(const LayerEdge& e, std::uint32_t n, std::uint32_t local, float score) {
        const auto l = m_forward ? e.from : e.to;
        const auto other = m_forward ? e.to : e.from;
        for (const auto& d : m_data.dense)
            if (d.from == e.from && d.to == e.to) return dense(d, n, l, local, other, score);
        for (const auto& c : m_data.conv)
            if (c.from == e.from && c.to == e.to) return conv(c, n, l, local, score);
        if (size(other) == size(l)) return add(m_off[other] + local, n, score, 1.0f, false);
        const Chw in = foldShape(m_desc.layers[e.from]), out = foldShape(m_desc.layers[e.to]);
        if (in.c == out.c && out.h <= in.h && out.w <= in.w && (out.h < in.h || out.w < in.w))
            pool(e, in, out, n, local, score);
    }

    void dense(const DenseWeights& w, std::uint32_t n, std::uint32_t l, std::uint32_t local, std::uint32_t other,
               float score) {
        const auto nIn = size(w.from), nOther = size(other);
        if (m_forward) {
            const float a = stat(l, false, local);
            for (std::uint32_t k = 0; k < nOther; ++k) {
                const float wk = w.w[std::size_t(k) * nIn + local];
                add(m_off[other] + k, n, score * std::fabs(wk * a), wk, false);
            }
        } else {
            const float g = stat(l, true, local);
            for (std::uint32_t j = 0; j < nOther; ++j) {
                const float wk = w.w[std::size_t(local) * nIn + j];
                add(m_off[other] + j, n, score * std::fabs(wk * g), wk, false);
            }
        }
    }

    void conv(const ConvWeights& c, std::uint32_t n, std::uint32_t l, std::uint32_t local, float score) {
        const Chw in = foldShape(m_desc.layers[c.from]), out = foldShape(m_desc.layers[c.to]);
        const std::uint32_t groups = std::max(c.groups, 1u), cinG = in.c / groups, coutG = out.c / groups;
        if (cinG == 0 || coutG == 0 || c.w.size() != std::size_t(out.c) * cinG * c.kh * c.kw) return;
        auto weight = [&](std::uint32_t co, std::uint32_t ciLocal, std::uint32_t dy, std::uint32_t dx) {
            return c.w[((std::size_t(co) * cinG + ciLocal) * c.kh + dy) * c.kw + dx];
        };
        if (!m_forward) { // output (co, y, x) <- its window in the input
            const std::uint32_t co = local / (out.h * out.w), y = (local / out.w) % out.h, x = local % out.w;
            const std::uint32_t g = co / coutG;
            const float grad = stat(l, true, local);
            for (std::uint32_t ci = 0; ci < cinG; ++ci)
                for (std::uint32_t dy = 0; dy < c.kh; ++dy)
                    for (std::uint32_t dx = 0; dx < c.kw; ++dx) {
                        const long iy = long(y) * c.strideH - long(c.padH) + dy, ix = long(x) * c.strideW - long(c.padW) + dx;
                        if (iy < 0 || ix < 0 || iy >= long(in.h) || ix >= long(in.w)) continue;
                        const std::uint32_t j = ((g * cinG + ci) * in.h + std::uint32_t(iy)) * in.w + std::uint32_t(ix);
                        const float wk = weight(co, ci, dy, dx);
                        add(m_off[c.from] + j, n, score * std::fabs(wk * grad), wk, true);
                    }
            return;
        }
        // input (ci, iy, ix) -> every output whose window holds it
        const std::uint32_t ci = local / (in.h * in.w), iy = (local / in.w) % in.h, ix = local % in.w;
        const std::uint32_t g = ci / cinG, ciLocal = ci % cinG;
        const float a = stat(l, false, local);
        for (std::uint32_t co = g * coutG; co < (g + 1) * coutG; ++co)
            for (std::uint32_t dy = 0; dy < c.kh; ++dy)
                for (std::uint32_t dx = 0; dx < c.kw; ++dx) {
                    const long ty = long(iy) + c.padH - dy, tx = long(ix) + c.padW - dx;
                    if (ty < 0 || tx < 0 || ty % c.strideH || tx % c.strideW) continue;
                    const long y = ty / c.strideH, x = tx / c.strideW;
                    if (y >= long(out.h) || x >= long(out.w)) continue;
                    const std::uint32_t k = (co * out.h + std::uint32_t(y)) * out.w + std::uint32_t(x);
                    const float wk = weight(co, ciLocal, dy, dx);
                    add(m_off[c.to] + k, n, score * std::fabs(wk * a), wk, true);
                }
    }

    void pool(const LayerEdge& e, Chw in, Chw out, std::uint32_t n, std::uint32_t local, float score) {
        const std::uint32_t sy = (in.h + out.h - 1) / out.h, sx = (in.w + out.w - 1) / out.w;
        if (m_forward) {
            const std::uint32_t c = local / (in.h * in.w), iy = (local / in.w) % in.h, ix = local % in.w;
            const std::uint32_t y = std::min(iy / sy, out.h - 1), x = std::min(ix / sx, out.w - 1);
            add(m_off[e.to] + (c * out.h + y) * out.w + x, n, score, 1.0f, true);
            return;
        }
        const std::uint32_t c = local / (out.h * out.w), y = (local / out.w) % out.h, x = local % out.w;
        std::vector<std::pair<std::uint32_t, float>> window;
        float total = 0;
        for (std::uint32_t iy = y * sy; iy < std::min(in.h, (y + 1) * sy); ++iy)
            for (std::uint32_t ix = x * sx; ix < std::min(in.w, (x + 1) * sx); ++ix) {
                const std::uint32_t j = (c * in.h + iy) * in.w + ix;
                const float a = std::fabs(stat(e.from, false, j));
                window.push_back({j, std::isfinite(a) ? a : 0.0f});
                total += window.back().second;
            }
        for (const auto& [j, a] : window) // max-pool picks the large ones; with no activations, equal shares
            add(m_off[e.from] + j, n, score * (total > 0 ? a / total : 1.0f / float(window.size())), 1.0f, true);
    }

    const NetworkDesc& m_desc;
    const NetworkData& m_data;
    bool m_forward;
    std::vector<std::uint32_t> m_off;
    std::unordered_map<std::uint32_t, Acc> m_acc;
};

// The strongest channels among the hop's spatial credits, each with the window the hop touched.
std::vector<ChannelCredit> strongestChannels(const NetworkDesc& desc, const Tracer& t,
                                             const std::unordered_map<std::uint32_t, Acc>& acc, std::uint32_t count) {
    std::map<std::pair<std::uint32_t, std::uint32_t>, ChannelCredit> byChannel;
    float total = 0;
    for (const auto& [id, a] : acc) {
        total += a.credit;
        if (!a.spatial) continue;
        const std::uint32_t l = t.layerOf(id), local = id - t.offsets()[l];
        const Chw s = foldShape(desc.layers[l]);
        const std::uint32_t c = local / (s.h * s.w), y = (local / s.w) % s.h, x = local % s.w;
        auto [it, fresh] = byChannel.try_emplace({l, c}, ChannelCredit{l, c, 0.0f, y, y, x, x});
        ChannelCredit& cc = it->second;
        cc.share += a.credit;
        cc.y0 = std::min(cc.y0, y), cc.y1 = std::max(cc.y1, y), cc.x0 = std::min(cc.x0, x), cc.x1 = std::max(cc.x1, x);
    }
    std::vector<ChannelCredit> out;
    for (auto& [key, cc] : byChannel) {
        cc.share = total > 0 ? cc.share / total : 0.0f;
        out.push_back(cc);
    }
    std::sort(out.begin(), out.end(), [](const ChannelCredit& a, const ChannelCredit& b) {
        return a.share > b.share || (a.share == b.share && (a.layer < b.layer || (a.layer == b.layer && a.channel < b.channel)));
    });
    if (out.size() > count) out.resize(count);
    return out;
}

Expected<TraceResult> trace(const NetworkDesc& desc, const NetworkData& data, std::uint32_t neuron,
                            const TraceOptions& opt, bool forward) {
    Tracer tracer(desc, data, forward);
    const auto& off = tracer.offsets();
    if (neuron >= off.back())
        return makeError(ErrorKind::Usage, "scene: cannot trace neuron " + std::to_string(neuron) + ": the network has " +
                                               std::to_string(off.back()) + " neurons");
    TraceResult res;
    std::vector<std::pair<std::uint32_t, float>> frontier{{neuron, 1.0f}};
    for (std::uint32_t hop = 0; hop < opt.hops && !frontier.empty(); ++hop) {
        auto acc = tracer.hop(frontier);
        std::vector<TracedNeuron> hopList;
        for (const auto& [t, a] : acc)
            hopList.push_back({t, a.credit, a.via});
        std::sort(hopList.begin(), hopList.end(), [](const TracedNeuron& p, const TracedNeuron& q) {
            return p.credit > q.credit || (p.credit == q.credit && p.neuron < q.neuron);
        });
        const float top = hopList.empty() ? 1.0f : hopList.front().credit;
        // The receptive field in the strongest channels, whole (before the top-k cut).
        auto channels = strongestChannels(desc, tracer, acc, opt.fieldChannels);
        for (const auto& t : hopList) {
            const std::uint32_t l = tracer.layerOf(t.neuron), local = t.neuron - off[l];
            const Chw s = foldShape(desc.layers[l]);
            for (const auto& cc : channels)
                if (cc.layer == l && cc.channel == local / (s.h * s.w)) res.field.push_back(t.neuron);
        }
        if (hopList.size() > opt.topK) hopList.resize(opt.topK);
        frontier.clear();
        for (auto& t : hopList) {
            t.credit /= top;
            frontier.push_back({t.neuron, t.credit});
            const auto& a = acc[t.neuron];
            res.edges.push_back(forward ? NeuronEdge{t.via, t.neuron, a.bestW} : NeuronEdge{t.neuron, t.via, a.bestW});
        }
        res.hops.push_back(std::move(hopList));
        res.channels.push_back(std::move(channels));
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
