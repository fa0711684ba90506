// Directions files <-> tensors.
#include "engine/landscape/tensor_io.hpp"

namespace ts::landscape {

HostArray toHostArray(const torch::Tensor& t) {
    HostArray a;
    const auto c = t.detach().to(torch::kFloat64).contiguous();
    a.shape.assign(c.sizes().begin(), c.sizes().end());
    a.data.assign(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
    a.float64 = t.scalar_type() == torch::kFloat64;
    return a;
}

torch::Tensor fromHostArray(const HostArray& a) {
    auto t = torch::empty(a.shape, torch::kFloat64);
    std::copy(a.data.begin(), a.data.end(), t.data_ptr<double>());
    return a.float64 ? t : t.to(torch::kFloat32);
}

Status saveDirections(const std::string& path, const Directions& dirs,
                      const std::map<std::string, std::string>& attributes) {
    DirectionsFile f;
    for (const auto& t : dirs.x)
        f.x.push_back(toHostArray(t.to(torch::kFloat32)));
    for (const auto& t : dirs.y)
        f.y.push_back(toHostArray(t.to(torch::kFloat32)));
    f.explainedVarianceRatio = dirs.explainedVarianceRatio;
    f.singularValues = dirs.singularValues;
    f.explainedVariance = dirs.explainedVariance;
    f.attributes = attributes;
    return writeDirectionsFile(path, f);
}

Expected<Directions> loadDirections(const std::string& path) {
    auto f = readDirectionsFile(path);
    if (!f) return f.error();
    Directions d;
    for (const auto& a : f->x)
        d.x.push_back(fromHostArray(a));
    for (const auto& a : f->y)
        d.y.push_back(fromHostArray(a));
    d.explainedVarianceRatio = f->explainedVarianceRatio;
    d.singularValues = f->singularValues;
    d.explainedVariance = f->explainedVariance;
    return d;
}

} // namespace ts::landscape
