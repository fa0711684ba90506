#include "engine/explain/features.hpp"

#include <algorithm>
#include <cmath>

#include "engine/explain/detail.hpp"

namespace ts::explain {

namespace {

using detail::usage;

torch::Tensor activationOf(capture::Model& model, const UnitLayer& layer, const torch::Tensor& inputs) {
    if (layer.name.empty()) return model.forward(inputs);
    auto fc = model.forwardCapture(inputs);
    for (size_t i = 0; i < fc.activations.size(); ++i)
        if (fc.activations[i].first == layer.name) return capture::batchFirst(fc.activations[i].second, fc.batchDim(i));
    return {};
}

// Gaussian blur over the spatial axes of [N, C, H, W] or [N, C, L] (reflected borders); other shapes unchanged.
torch::Tensor gaussianBlur(const torch::Tensor& x, double sigma) {
    if (sigma <= 0 || x.dim() < 3) return x;
    const int64_t radius = std::max<int64_t>(1, int64_t(std::ceil(2.0 * sigma)));
    auto k = torch::arange(-radius, radius + 1, torch::kFloat32);
    k = torch::exp(-(k * k) / float(2 * sigma * sigma));
    k = k / k.sum();
    const int64_t c = x.size(1);
    namespace F = torch::nn::functional;
    if (x.dim() == 3) {
        if (x.size(2) <= radius) return x;
        auto p = F::pad(x, F::PadFuncOptions({radius, radius}).mode(torch::kReflect));
        return F::conv1d(p, k.view({1, 1, -1}).repeat({c, 1, 1}), F::Conv1dFuncOptions().groups(c));
    }
    if (x.dim() != 4 || x.size(2) <= radius || x.size(3) <= radius) return x;
    auto p = F::pad(x, F::PadFuncOptions({radius, radius, radius, radius}).mode(torch::kReflect));
    auto h = F::conv2d(p, k.view({1, 1, 1, -1}).repeat({c, 1, 1, 1}), F::Conv2dFuncOptions().groups(c));
    return F::conv2d(h, k.view({1, 1, -1, 1}).repeat({c, 1, 1, 1}), F::Conv2dFuncOptions().groups(c));
}

// Anisotropic total variation per image: the sum of |differences| between neighbours along each spatial axis.
torch::Tensor totalVariation(const torch::Tensor& x) {
    auto tv = torch::zeros({x.size(0)}, x.options());
    for (int64_t d = 2; d < x.dim(); ++d) {
        const int64_t n = x.size(d);
        if (n < 2) continue;
        tv = tv + (x.narrow(d, 1, n - 1) - x.narrow(d, 0, n - 1)).abs().flatten(1).sum(1);
    }
    return tv;
}

} // namespace

Expected<UnitLayer> findUnitLayer(capture::Model& model, const torch::Tensor& probe, const std::string& layer) {
    torch::NoGradGuard noGrad;
    const bool wasTraining = model.isTraining();
    model.setTraining(false);
    UnitLayer u;
    torch::Tensor a;
    std::vector<std::string> names;
    try {
        if (layer.empty() || layer == "output") {
            a = model.forward(probe);
            u.type = "output";
        } else {
            auto fc = model.forwardCapture(probe);
            for (size_t i = 0; i < fc.activations.size(); ++i) {
                names.push_back(fc.activations[i].first);
                if (fc.activations[i].first == layer) a = capture::batchFirst(fc.activations[i].second, fc.batchDim(i));
            }
            u.name = layer;
        }
    } catch (const std::exception& e) {
        model.setTraining(wasTraining);
        return usage("the model rejects the input: " + oneLineReason(e.what()));
    }
    model.setTraining(wasTraining);
    if (!a.defined()) {
        std::string list;
        for (size_t i = 0; i < names.size() && i < 12; ++i)
            list += (i ? ", " : "") + names[i];
        if (names.size() > 12) list += ", ... (" + std::to_string(names.size()) + " layers)";
        return usage("model '" + model.name() + "' has no layer '" + layer + "' (layers: " +
                     (list.empty() ? "none exposed" : list) + "; or 'output')");
    }
    if (a.dim() < 2 || !a.is_floating_point())
        return usage("layer '" + (layer.empty() ? std::string("output") : layer) + "' has no units to visualise (shape " +
                     c10::str(a.sizes()) + ")");
    if (u.type.empty())
        for (const auto& info : model.layerInfo())
            if (info.name == layer) u.type = info.type;
    u.unitDim = a.dim() == 3 && !detail::channelsFirst(u.type) ? 2 : 1;
    u.units = a.size(u.unitDim);
    u.shape.assign(a.sizes().begin() + 1, a.sizes().end());
    return u;
}

torch::Tensor unitValues(capture::Model& model, const UnitLayer& layer, const torch::Tensor& inputs) {
    torch::Tensor a = activationOf(model, layer, inputs);
    if (!a.defined()) return a;
    a = a.to(torch::kFloat32);
    if (a.dim() == 2) return a;
    if (layer.unitDim != 1) a = a.movedim(layer.unitDim, 1);
    return a.flatten(2).mean(2);
}

Expected<Maximised> maximiseActivation(capture::Model& model, const UnitLayer& layer, std::vector<int64_t> sampleShape,
                                       const MaximiseOptions& o) {
    if (o.units.empty()) return usage("no units to visualise");
    for (int64_t u : o.units)
        if (u < 0 || u >= layer.units)
            return usage("unit " + std::to_string(u) + " is out of range: layer '" +
                         (layer.name.empty() ? std::string("output") : layer.name) + "' has " +
                         std::to_string(layer.units) + " units");
    if (!(o.hi > o.lo)) return usage("the input range is empty (every input value is the same)");
    const int64_t n = int64_t(o.units.size());
    std::vector<int64_t> shape{n};
    shape.insert(shape.end(), sampleShape.begin(), sampleShape.end());
    const float range = o.hi - o.lo;
    auto gen = torch::make_generator<at::CPUGeneratorImpl>(o.seed);
    if (o.start.defined() && o.start.sizes().vec() != shape)
        return usage("the starting images have shape " + c10::str(o.start.sizes()) + ", not " + c10::str(shape));
    torch::Tensor x = (o.start.defined() ? o.start.to(torch::kFloat32).clone()
                                         : torch::full(shape, 0.5f * (o.lo + o.hi)) + 0.05f * range * torch::randn(shape, gen))
                          .clamp(o.lo, o.hi)
                          .set_requires_grad(true);
    const auto units = torch::tensor(o.units, torch::kInt64).view({n, 1});
    const bool wasTraining = model.isTraining();
    model.setTraining(false);
    Maximised r;
    auto score = [&](const torch::Tensor& in) { return unitValues(model, layer, in).gather(1, units).view({n}); };
    try {
        {
            torch::NoGradGuard g;
            auto s = score(x.detach());
            r.start.assign(s.data_ptr<float>(), s.data_ptr<float>() + n);
        }
        torch::optim::Adam adam({x}, torch::optim::AdamOptions(o.lr * range));
        const int spatial = int(x.dim()) - 2; // axes after [N, C]
        std::vector<int64_t> dims;
        for (int d = 0; d < std::min(spatial, 2); ++d)
            dims.push_back(x.dim() - 1 - d);
        for (int step = 0; step < o.steps; ++step) {
            torch::Tensor in = x;
            if (o.jitter > 0 && !dims.empty()) {
                std::vector<int64_t> shifts;
                for (size_t d = 0; d < dims.size(); ++d)
                    shifts.push_back(torch::randint(-o.jitter, o.jitter + 1, {1}, gen).item<int64_t>());
                in = torch::roll(x, shifts, dims);
            }
            auto value = score(in);
            if (!value.requires_grad()) {
                model.setTraining(wasTraining);
                return usage("layer '" + layer.name + "' does not depend on the input through a differentiable path");
            }
            auto gAct = torch::autograd::grad({value.sum()}, {x})[0];
            torch::Tensor g = gAct;
            if (o.tv > 0 && spatial > 0) {
                auto gTv = torch::autograd::grad({totalVariation(x).sum()}, {x})[0];
                auto normA = gAct.flatten(1).norm(2, 1), normT = gTv.flatten(1).norm(2, 1).clamp_min(1e-12);
                auto w = (float(o.tv) * normA / normT).view({n, 1}).expand({n, gAct[0].numel()}).reshape(gAct.sizes());
                g = gAct - w * gTv;
            }
            adam.zero_grad();
            x.mutable_grad() = -g.detach(); // ascent
            adam.step();
            torch::NoGradGuard ng;
            if (o.blurEvery > 0 && (step + 1) % o.blurEvery == 0) x.copy_(gaussianBlur(x, o.blurSigma));
            x.clamp_(o.lo, o.hi);
        }
        torch::NoGradGuard g;
        auto s = score(x.detach());
        r.activation.assign(s.data_ptr<float>(), s.data_ptr<float>() + n);
    } catch (const std::exception& e) {
        model.setTraining(wasTraining);
        return usage("activation maximisation failed: " + oneLineReason(e.what()));
    }
    model.setTraining(wasTraining);
    r.images = x.detach().clone();
    for (size_t i = 0; i < r.activation.size(); ++i)
        if (!std::isfinite(r.activation[i]))
            return makeError(ErrorKind::Failed, "activation maximisation of unit " + std::to_string(o.units[i]) +
                                                    " diverged (its value is not finite)");
    return r;
}

Expected<TopInputs> topInputs(capture::Model& model, const UnitLayer& layer, const torch::Tensor& pool,
                              const std::vector<int64_t>& units, int64_t k) {
    if (pool.size(0) == 0) return usage("no inputs to rank");
    for (int64_t u : units)
        if (u < 0 || u >= layer.units) return usage("unit " + std::to_string(u) + " is out of range");
    torch::NoGradGuard noGrad;
    const bool wasTraining = model.isTraining();
    model.setTraining(false);
    const auto idx = torch::tensor(units, torch::kInt64);
    std::vector<torch::Tensor> parts;
    try {
        for (int64_t b = 0; b < pool.size(0); b += 256) {
            const int64_t m = std::min<int64_t>(256, pool.size(0) - b);
            parts.push_back(unitValues(model, layer, pool.narrow(0, b, m)).index_select(1, idx));
        }
    } catch (const std::exception& e) {
        model.setTraining(wasTraining);
        return usage("the model rejects the inputs: " + oneLineReason(e.what()));
    }
    model.setTraining(wasTraining);
    auto all = torch::cat(parts, 0).to(torch::kFloat64); // [N, units]
    // Non-finite values rank last (NaN would otherwise sort first).
    all = torch::where(torch::isfinite(all), all, torch::full_like(all, -INFINITY));
    const int64_t kk = std::min<int64_t>(k, all.size(0));
    auto [values, order] = all.topk(kk, 0, true, true); // [k, units]
    TopInputs t;
    for (size_t u = 0; u < units.size(); ++u) {
        std::vector<int64_t> i(static_cast<size_t>(kk));
        std::vector<double> v(static_cast<size_t>(kk));
        for (int64_t j = 0; j < kk; ++j)
            i[size_t(j)] = order[j][int64_t(u)].item<int64_t>(), v[size_t(j)] = values[j][int64_t(u)].item<double>();
        t.index.push_back(std::move(i));
        t.value.push_back(std::move(v));
    }
    return t;
}

Expected<std::vector<int64_t>> parseUnits(const std::string& text, int64_t count, const std::string& layerName,
                                          int64_t maxUnits) {
    std::vector<int64_t> units;
    const std::string name = layerName.empty() ? "output" : layerName;
    auto outOfRange = [&](int64_t u) {
        return usage("unit " + std::to_string(u) + " is out of range: layer '" + name + "' has " +
                     std::to_string(count) + " units (0-" + std::to_string(count - 1) + ")");
    };
    if (text == "all") {
        for (int64_t u = 0; u < count; ++u)
            units.push_back(u);
    } else {
        size_t pos = 0;
        while (pos <= text.size()) {
            const size_t end = std::min(text.find(',', pos), text.size());
            const std::string item = text.substr(pos, end - pos);
            const size_t dash = item.find('-', 1);
            auto number = [&](const std::string& s) -> int64_t {
                if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos) return -1;
                return std::stoll(s);
            };
            const int64_t a = number(dash == std::string::npos ? item : item.substr(0, dash));
            const int64_t b = dash == std::string::npos ? a : number(item.substr(dash + 1));
            if (a < 0 || b < a)
                return usage("--units '" + text + "': give unit numbers and ranges such as 0-7,12, or all");
            if (b >= count) return outOfRange(b);
            for (int64_t u = a; u <= b && int64_t(units.size()) <= maxUnits; ++u)
                units.push_back(u);
            pos = end + 1;
        }
    }
    if (units.empty()) return usage("layer '" + name + "' has no units");
    if (int64_t(units.size()) > maxUnits)
        return usage("--units selects " + (text == "all" ? std::to_string(count) : "more than " + std::to_string(maxUnits)) +
                     " units of '" + name + "'; at most " + std::to_string(maxUnits) + " are drawn (choose some, e.g. 0-" +
                     std::to_string(std::min(count, maxUnits) - 1) + ")");
    return units;
}

} // namespace ts::explain
