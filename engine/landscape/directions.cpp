// Directions in parameter space: seeded Gaussian + normalisation, checkpoint differences, PCA, projection.
#include "engine/landscape/directions.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

namespace ts::landscape {

const char* normName(Norm n) {
    switch (n) {
    case Norm::Filter:
        return "filter";
    case Norm::Layer:
        return "layer";
    case Norm::Weight:
        return "weight";
    case Norm::DFilter:
        return "dfilter";
    case Norm::DLayer:
        return "dlayer";
    case Norm::None:
        return "none";
    }
    return "?";
}
const char* ignoreName(Ignore i) {
    return i == Ignore::BiasBn ? "biasbn" : "none";
}
const char* dirTypeName(DirType t) {
    return t == DirType::Weights ? "weights" : "states";
}

Expected<Norm> parseNorm(const std::string& s) {
    for (Norm n : {Norm::Filter, Norm::Layer, Norm::Weight, Norm::DFilter, Norm::DLayer, Norm::None})
        if (s == normName(n)) return n;
    if (s.empty()) return Norm::None; // the reference scripts' default --xnorm '' means no normalisation
    return makeError(ErrorKind::Usage, "unknown --norm '" + s + "' (expected filter, layer, weight or none)");
}
Expected<Ignore> parseIgnore(const std::string& s) {
    if (s == "biasbn") return Ignore::BiasBn;
    if (s.empty() || s == "none") return Ignore::None;
    return makeError(ErrorKind::Usage, "unknown --ignore '" + s + "' (expected biasbn or none)");
}
Expected<DirType> parseDirType(const std::string& s) {
    if (s == "weights") return DirType::Weights;
    if (s == "states") return DirType::States;
    return makeError(ErrorKind::Usage, "unknown --dir-type '" + s + "' (expected weights or states)");
}

TensorList ParameterSpace::snapshot() const {
    TensorList out;
    out.reserve(live.size());
    for (const auto& t : live)
        out.push_back(t.detach().clone());
    return out;
}

namespace {

std::string modulePrefix(const std::string& name) {
    const size_t dot = name.rfind('.');
    return dot == std::string::npos ? std::string() : name.substr(0, dot);
}

std::string shapeText(const torch::Tensor& t) {
    std::ostringstream os;
    os << '[';
    for (int64_t i = 0; i < t.dim(); ++i)
        os << (i ? ", " : "") << t.size(i);
    os << ']';
    return os.str();
}

} // namespace

ParameterSpace parameterSpace(capture::Model& model, DirType type) {
    ParameterSpace space;
    space.type = type;
    auto params = model.namedParameters();
    if (type == DirType::Weights) {
        for (auto& [n, t] : params) {
            space.names.push_back(n);
            space.live.push_back(t);
        }
        return space;
    }
    // state_dict order: each module's own parameters, then its own buffers, then its children. Buffers of
    // modules without parameters are placed before the next module (in buffer order) that has parameters.
    auto buffers = model.namedBuffers();
    std::map<std::string, std::vector<size_t>> buffersOf;
    std::vector<std::string> bufferModules;
    for (size_t i = 0; i < buffers.size(); ++i) {
        const auto m = modulePrefix(buffers[i].first);
        if (!buffersOf.count(m)) bufferModules.push_back(m);
        buffersOf[m].push_back(i);
    }
    std::map<std::string, bool> hasParams;
    for (auto& p : params)
        hasParams[modulePrefix(p.first)] = true;
    std::map<std::string, std::vector<std::string>> before; // buffer-only modules emitted before a module
    std::vector<std::string> pending, trailing;
    for (const auto& m : bufferModules) {
        if (hasParams.count(m)) {
            before[m] = pending;
            pending.clear();
        } else {
            pending.push_back(m);
        }
    }
    trailing = pending;
    const auto emitBuffers = [&](const std::string& m) {
        for (size_t i : buffersOf[m]) {
            space.names.push_back(buffers[i].first);
            space.live.push_back(buffers[i].second);
        }
    };
    std::string current;
    bool any = false;
    for (auto& [n, t] : params) {
        const auto m = modulePrefix(n);
        if (!any || m != current) {
            if (any) emitBuffers(current);
            for (const auto& b : before[m])
                emitBuffers(b);
            current = m;
            any = true;
        }
        space.names.push_back(n);
        space.live.push_back(t);
    }
    if (any) emitBuffers(current);
    for (const auto& b : trailing)
        emitBuffers(b);
    if (!any)
        for (const auto& m : bufferModules)
            emitBuffers(m);
    return space;
}

TensorList gaussianLike(const TensorList& weights, torch::Generator& gen) {
    TensorList out;
    out.reserve(weights.size());
    for (const auto& w : weights)
        out.push_back(torch::randn(w.sizes(), gen, torch::kFloat32));
    return out;
}

void normalizeDirection(TensorList& direction, const TensorList& weights, const DirectionOptions& opt) {
    TORCH_CHECK(direction.size() == weights.size(), "direction and weights differ in length");
    torch::NoGradGuard noGrad;
    for (size_t i = 0; i < direction.size(); ++i) {
        auto& d = direction[i];
        const auto w = weights[i].detach();
        // Normalise in the weights' floating type (the reference: float32 directions, float32 weights).
        if (w.is_floating_point() && d.scalar_type() != w.scalar_type()) d = d.to(w.scalar_type());
        if (d.dim() <= 1) {
            if (opt.ignore == Ignore::BiasBn)
                d.zero_();
            else
                d.copy_(w);
            continue;
        }
        switch (opt.norm) {
        case Norm::Filter: {
            const auto dn = d.flatten(1).norm(2, {1});
            const auto wn = w.flatten(1).to(d.scalar_type()).norm(2, {1});
            std::vector<int64_t> shape(static_cast<size_t>(d.dim()), 1);
            shape[0] = d.size(0);
            d.mul_((wn / (dn + 1e-10)).view(shape));
            break;
        }
        case Norm::Layer:
            d.mul_(w.norm() / d.norm());
            break;
        case Norm::Weight:
            d.mul_(w);
            break;
        case Norm::DFilter: {
            std::vector<int64_t> shape(static_cast<size_t>(d.dim()), 1);
            shape[0] = d.size(0);
            d.div_((d.flatten(1).norm(2, {1}) + 1e-10).view(shape));
            break;
        }
        case Norm::DLayer:
            d.div_(d.norm());
            break;
        case Norm::None:
            break;
        }
    }
}

Directions randomDirections(const TensorList& weights, const DirectionOptions& opt, uint64_t seed,
                            bool twoD) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    Directions dirs;
    dirs.x = gaussianLike(weights, gen);
    normalizeDirection(dirs.x, weights, opt);
    if (twoD) {
        dirs.y = gaussianLike(weights, gen);
        normalizeDirection(dirs.y, weights, opt);
    }
    return dirs;
}

Expected<TensorList> targetDirection(const TensorList& from, const TensorList& to) {
    if (from.size() != to.size())
        return makeError(ErrorKind::Usage, "checkpoints differ: " + std::to_string(from.size()) + " vs " +
                                               std::to_string(to.size()) + " tensors");
    TensorList out;
    for (size_t i = 0; i < from.size(); ++i) {
        if (!from[i].sizes().equals(to[i].sizes()))
            return makeError(ErrorKind::Usage, "checkpoints differ at tensor " + std::to_string(i) + ": " +
                                                   shapeText(from[i]) + " vs " + shapeText(to[i]));
        out.push_back((to[i].detach() - from[i].detach()).to(torch::kFloat32));
    }
    return out;
}

torch::Tensor flatten(const TensorList& list) {
    std::vector<torch::Tensor> parts;
    for (const auto& t : list)
        if (t.dim() >= 1) parts.push_back(t.detach().reshape({-1}).to(torch::kFloat64));
    if (parts.empty()) return torch::zeros({0}, torch::kFloat64);
    return torch::cat(parts);
}

namespace {

TensorList unflattenLike(const torch::Tensor& v, const TensorList& like) {
    TensorList out;
    int64_t off = 0;
    for (const auto& w : like) {
        if (w.dim() == 0) {
            out.push_back(torch::zeros({}, torch::kFloat32));
            continue;
        }
        out.push_back(v.narrow(0, off, w.numel()).view(w.sizes()).to(torch::kFloat32).clone());
        off += w.numel();
    }
    return out;
}

void zeroBiasBn(TensorList& list) {
    for (auto& t : list)
        if (t.dim() <= 1) t.zero_();
}

} // namespace

Expected<Directions> pcaDirections(const std::vector<TensorList>& trajectory, const TensorList& finalWeights,
                                   Ignore ignore) {
    if (trajectory.size() < 2)
        return makeError(ErrorKind::Usage, "PCA directions need at least 2 checkpoints, got " +
                                               std::to_string(trajectory.size()));
    std::vector<torch::Tensor> rows;
    for (size_t t = 0; t < trajectory.size(); ++t) {
        auto check = targetDirection(finalWeights, trajectory[t]); // shape check with a readable error
        if (!check)
            return makeError(ErrorKind::Usage,
                             "checkpoint " + std::to_string(t) + ": " + check.error().message);
        // Differences in float64 for the decomposition (the reference goes through numpy float32 rows).
        TensorList d64;
        for (size_t i = 0; i < finalWeights.size(); ++i)
            d64.push_back(trajectory[t][i].detach().to(torch::kFloat64) -
                          finalWeights[i].detach().to(torch::kFloat64));
        if (ignore == Ignore::BiasBn) zeroBiasBn(d64);
        rows.push_back(flatten(d64));
    }
    auto m = torch::stack(rows);         // [T, P]
    m = m - m.mean(0, /*keepdim=*/true); // PCA centres the rows
    auto [u, s, vh] = torch::linalg::svd(m, /*full_matrices=*/false, c10::nullopt);
    // scikit-learn's svd_flip (u-based): the largest-|u| entry of each component is positive.
    const auto idx = u.abs().argmax(0);
    const auto signs = u.gather(0, idx.unsqueeze(0)).squeeze(0).sign();
    vh = vh * torch::where(signs == 0, torch::ones_like(signs), signs).unsqueeze(1);

    Directions dirs;
    dirs.x = unflattenLike(vh[0], finalWeights);
    dirs.y = vh.size(0) > 1 ? unflattenLike(vh[1], finalWeights)
                            : unflattenLike(torch::zeros_like(vh[0]), finalWeights);
    if (ignore == Ignore::BiasBn) {
        zeroBiasBn(dirs.x);
        zeroBiasBn(dirs.y);
    }
    const double denom = static_cast<double>(trajectory.size() - 1);
    const auto ev = (s * s / denom);
    const double total = ev.sum().item<double>();
    for (int64_t k = 0; k < std::min<int64_t>(2, s.size(0)); ++k) {
        dirs.singularValues.push_back(s[k].item<double>());
        dirs.explainedVariance.push_back(ev[k].item<double>());
        dirs.explainedVarianceRatio.push_back(total > 0 ? ev[k].item<double>() / total : 0.0);
    }
    return dirs;
}

Expected<std::vector<std::array<double, 2>>> projectTrajectory(const std::vector<TensorList>& trajectory,
                                                               const TensorList& origin,
                                                               const Directions& dirs, Projection method) {
    if (!dirs.is2d()) return makeError(ErrorKind::Usage, "projecting a trajectory needs two directions");
    const auto dx = flatten(dirs.x), dy = flatten(dirs.y);
    const double nx = dx.norm().item<double>(), ny = dy.norm().item<double>();
    if (!(nx > 0) || !(ny > 0)) return makeError(ErrorKind::Failed, "a direction has zero length");
    std::vector<std::array<double, 2>> out;
    for (size_t t = 0; t < trajectory.size(); ++t) {
        if (trajectory[t].size() != origin.size())
            return makeError(ErrorKind::Usage, "checkpoint " + std::to_string(t) + " has " +
                                                   std::to_string(trajectory[t].size()) +
                                                   " tensors, expected " + std::to_string(origin.size()));
        TensorList diff;
        for (size_t i = 0; i < origin.size(); ++i) {
            if (!trajectory[t][i].sizes().equals(origin[i].sizes()))
                return makeError(ErrorKind::Usage, "checkpoint " + std::to_string(t) + " tensor " +
                                                       std::to_string(i) + " has shape " +
                                                       shapeText(trajectory[t][i]) + ", expected " +
                                                       shapeText(origin[i]));
            diff.push_back(trajectory[t][i].detach().to(torch::kFloat64) -
                           origin[i].detach().to(torch::kFloat64));
        }
        const auto d = flatten(diff);
        if (d.numel() != dx.numel())
            return makeError(ErrorKind::Usage, "directions do not match the checkpoints");
        const double pdx = d.dot(dx).item<double>(), pdy = d.dot(dy).item<double>();
        if (method == Projection::Cos) {
            out.push_back({pdx / nx, pdy / ny});
        } else {
            // Normal equations of the 2-column least-squares problem [dx dy] c = d.
            const double a = nx * nx, b = dx.dot(dy).item<double>(), c = ny * ny;
            const double det = a * c - b * b;
            if (std::abs(det) <= 1e-300) return makeError(ErrorKind::Failed, "directions are parallel");
            out.push_back({(c * pdx - b * pdy) / det, (a * pdy - b * pdx) / det});
        }
    }
    return out;
}

Status checkDirectionShapes(const TensorList& direction, const ParameterSpace& space,
                            const std::string& source, const char* axis) {
    if (direction.size() != space.live.size())
        return makeError(ErrorKind::Usage, source + ": " + axis + " has " + std::to_string(direction.size()) +
                                               " arrays but the model has " +
                                               std::to_string(space.live.size()) + " " +
                                               dirTypeName(space.type) + " tensors");
    for (size_t i = 0; i < direction.size(); ++i)
        if (!direction[i].sizes().equals(space.live[i].sizes()))
            return makeError(ErrorKind::Usage, source + ": " + axis + "/" + std::to_string(i) +
                                                   " has shape " + shapeText(direction[i]) + " but '" +
                                                   space.names[i] + "' has " + shapeText(space.live[i]));
    return Status::ok();
}

} // namespace ts::landscape
