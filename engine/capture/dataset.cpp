// Datasets as tensors: toy sets, IDX image folders (Fashion-MNIST), splits and the --data spec parser.
#include "engine/capture/dataset.hpp"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>

#include "engine/capture/idx.hpp"

namespace ts::capture {

namespace fs = std::filesystem;

namespace {

const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// "<dir>/<stem>.gz" or "<dir>/<stem>", whichever exists ("" if neither).
std::string findIdx(const fs::path& dir, const std::string& stem) {
    std::error_code ec;
    for (const std::string& name : {stem + ".gz", stem})
        if (fs::is_regular_file(dir / name, ec)) return (dir / name).string();
    return {};
}

Dataset limitTo(const Dataset& d, int64_t limit) {
    if (limit <= 0 || limit >= d.size()) return d;
    return d.slice(0, limit);
}

} // namespace

Dataset Dataset::slice(int64_t begin, int64_t count) const {
    Dataset out = *this;
    out.inputs = inputs.narrow(0, begin, count);
    out.labels = labels.narrow(0, begin, count);
    return out;
}

const std::vector<std::string>& fashionMnistClasses() {
    static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                   "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                   "Bag",         "Ankle boot"};
    return names;
}

Dataset toyDataset(ToyKind kind, const ToyOptions& options) {
    ToyData t = generateToy(kind, options);
    Dataset d;
    d.name = toyKindName(kind);
    const int64_t n = static_cast<int64_t>(t.labels.size());
    d.inputs = torch::from_blob(t.points.data(), {n, 2}, torch::kFloat32).clone();
    d.labels = torch::from_blob(t.labels.data(), {n}, torch::kInt64).clone();
    d.sampleShape = {2};
    d.numClasses = t.classes;
    return d;
}

Expected<Dataset> loadIdxDataset(const std::string& imagesPath, const std::string& labelsPath,
                                 const std::string& name) {
    auto pair = readIdxPair(imagesPath, labelsPath, 256);
    if (!pair) return pair.error();
    const auto& dims = pair->images.dims;
    const int64_t n = dims[0], h = dims[1], w = dims[2];
    Dataset d;
    d.name = name;
    d.inputs = torch::from_blob(pair->images.data.data(), {n, 1, h, w}, torch::kUInt8)
                   .to(torch::kFloat32)
                   .div_(255.0f);
    d.labels = torch::from_blob(pair->labels.data.data(), {n}, torch::kUInt8).to(torch::kInt64);
    d.sampleShape = {1, h, w};
    d.numClasses = n > 0 ? d.labels.max().item<int64_t>() + 1 : 0;
    return d;
}

DataSplit splitDataset(const Dataset& all, double validationFraction, uint64_t seed) {
    const int64_t n = all.size();
    int64_t nVal = static_cast<int64_t>(std::llround(double(n) * std::clamp(validationFraction, 0.0, 1.0)));
    nVal = std::clamp<int64_t>(nVal, 0, n);
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(seed ^ 0x5851F42D4C957F2Dull);
    std::shuffle(order.begin(), order.end(), rng);
    const torch::Tensor idx = torch::tensor(order, torch::kInt64);
    DataSplit s;
    s.train = all;
    s.validation = all;
    s.train.inputs = all.inputs.index_select(0, idx.narrow(0, 0, n - nVal)).contiguous();
    s.train.labels = all.labels.index_select(0, idx.narrow(0, 0, n - nVal)).contiguous();
    s.validation.inputs = all.inputs.index_select(0, idx.narrow(0, n - nVal, nVal)).contiguous();
    s.validation.labels = all.labels.index_select(0, idx.narrow(0, n - nVal, nVal)).contiguous();
    return s;
}

Expected<DataSplit> loadDataset(const std::string& spec, const DataOptions& o) {
    if (auto kind = parseToyKind(spec)) {
        if (o.samples < 2)
            return makeError(ErrorKind::Usage, "data '" + spec + "': at least 2 samples are needed");
        ToyOptions t;
        t.samples = o.samples;
        t.noise = o.noise;
        t.seed = o.seed;
        DataSplit s = splitDataset(toyDataset(*kind, t), o.validationFraction, o.seed);
        s.train = limitTo(s.train, o.limit);
        s.validation = limitTo(s.validation, o.limit);
        return s;
    }
    std::string dir = spec;
    std::string name = fs::path(spec).filename().string();
    if (spec == "fashion-mnist" || spec == "fashion_mnist" || spec == "builtin:fashion-mnist") {
        dir = kFashionMnistDir;
        name = "fashion-mnist";
    }
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        if (dir == kFashionMnistDir)
            return makeError(ErrorKind::Environment,
                             "data 'fashion-mnist': folder " + dir +
                                 " not found (install the dataset-fashion-mnist package)");
        return makeError(ErrorKind::Usage,
                         "data '" + spec +
                             "' is neither a built-in set (spirals, circles, xor, gaussians, "
                             "fashion-mnist) nor a folder of IDX files");
    }
    const std::string trainImages = findIdx(dir, "train-images-idx3-ubyte");
    const std::string trainLabels = findIdx(dir, "train-labels-idx1-ubyte");
    if (trainImages.empty() || trainLabels.empty())
        return makeError(ErrorKind::Usage, "data folder '" + dir + "' holds no " +
                                               (trainImages.empty() ? "train-images-idx3-ubyte[.gz]"
                                                                    : "train-labels-idx1-ubyte[.gz]"));
    auto train = loadIdxDataset(trainImages, trainLabels, name);
    if (!train) return train.error();
    if (name == "fashion-mnist") train->classNames = fashionMnistClasses();
    DataSplit s;
    const std::string testImages = findIdx(dir, "t10k-images-idx3-ubyte");
    const std::string testLabels = findIdx(dir, "t10k-labels-idx1-ubyte");
    if (!testImages.empty() && !testLabels.empty()) {
        auto val = loadIdxDataset(testImages, testLabels, name);
        if (!val) return val.error();
        if (val->sampleShape != train->sampleShape)
            return makeError(ErrorKind::Usage,
                             "IDX file '" + testImages + "': image size differs from '" + trainImages + "'");
        val->classNames = train->classNames;
        val->numClasses = train->numClasses = std::max(train->numClasses, val->numClasses);
        s.train = std::move(train.value());
        s.validation = std::move(val.value());
    } else {
        s = splitDataset(train.value(), o.validationFraction, o.seed);
    }
    s.train = limitTo(s.train, o.limit);
    s.validation = limitTo(s.validation, o.limit);
    return s;
}

} // namespace ts::capture
