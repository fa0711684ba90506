// Agreement of the CPU statistics backend with LibTorch ops on the same tensor (LibTorch only in this file).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "engine/stats/reducer.hpp"

using namespace ts::stats;

namespace {

TensorView viewOf(const torch::Tensor& t, const char* name) {
    TensorView v;
    v.data = t.data_ptr();
    v.dtype = t.scalar_type() == torch::kFloat32   ? DType::Float32
              : t.scalar_type() == torch::kFloat64 ? DType::Float64
                                                   : DType::Other;
    v.rows = t.size(0);
    v.cols = t.size(1);
    v.rowStride = t.stride(0);
    v.colStride = t.stride(1);
    v.name = name;
    return v;
}

torch::Tensor column(const NeuronStats& s, Statistic st) {
    return torch::from_blob(const_cast<float*>(s.stat(st)), {s.neurons}, torch::kFloat32).clone();
}

void expectClose(const torch::Tensor& got, const torch::Tensor& want, double rtol, double atol,
                 const char* what) {
    auto g = got.to(torch::kFloat64), w = want.to(torch::kFloat64);
    auto bad = ((g - w).abs() > (atol + rtol * w.abs())).sum().item<std::int64_t>();
    EXPECT_EQ(bad, 0) << what << ": max abs diff " << (g - w).abs().max().item<double>();
}

} // namespace

TEST(StatsTorch, PerNeuronAgreesWithTorchOps) {
    torch::manual_seed(1234);
    auto reducer = makeReducer(Backend::Cpu);
    ASSERT_TRUE(reducer);
    for (auto shape : {std::pair<int64_t, int64_t>{64, 1000}, {512, 33}, {7, 4097}}) {
        auto x = torch::randn({shape.first, shape.second}) * 2.0 + 0.5;
        x.masked_fill_(torch::rand_like(x) < 0.25, 0.0); // planted exact zeros (dead-ReLU style)
        NeuronStats s;
        auto layer = (*reducer)->reduce(viewOf(x, "x"), s);
        ASSERT_TRUE(layer) << layer.error().message;
        auto xd = x.to(torch::kFloat64);
        expectClose(column(s, Statistic::Mean), xd.mean(0), 1e-5, 1e-6, "mean");
        expectClose(column(s, Statistic::MeanAbs), xd.abs().mean(0), 1e-5, 1e-6, "abs().mean");
        expectClose(column(s, Statistic::Variance), xd.var(0, /*unbiased=*/false), 1e-5, 1e-6, "var");
        expectClose(column(s, Statistic::Min), x.amin(0), 0, 0, "amin");
        expectClose(column(s, Statistic::Max), x.amax(0), 0, 0, "amax");
        expectClose(column(s, Statistic::ZeroFraction), (x == 0).to(torch::kFloat64).mean(0), 0, 1e-7,
                    "(x==0).mean");
        expectClose(column(s, Statistic::NanCount), x.isnan().sum(0), 0, 0, "isnan().sum");
        expectClose(column(s, Statistic::InfCount), x.isinf().sum(0), 0, 0, "isinf().sum");
        // Tiles accumulate in float, layers combine in double: ~1e-7 relative.
        EXPECT_NEAR(layer->l2Norm, xd.norm().item<double>(), 1e-7 * xd.norm().item<double>());
        EXPECT_NEAR(layer->mean, xd.mean().item<double>(), 1e-7);
        EXPECT_NEAR(layer->std, xd.std(/*unbiased=*/false).item<double>(), 1e-7);
    }
}

// torch.histc uses the same bin rule (lower edge inclusive, hi in the last bin); away from edges it must
// agree.
TEST(StatsTorch, HistogramAgreesWithHistc) {
    torch::manual_seed(99);
    auto x = torch::randn({128, 515});
    ReduceOptions o;
    o.histogram.bins = 50;
    o.histogram.lo = -3.0f;
    o.histogram.hi = 3.0f;
    NeuronStats s;
    auto reducer = makeReducer(Backend::Cpu);
    ASSERT_TRUE(reducer);
    auto layer = (*reducer)->reduce(viewOf(x, "x"), s, o);
    ASSERT_TRUE(layer);
    auto inRange = x.masked_select((x >= -3.0) & (x <= 3.0));
    auto ref = torch::histc(inRange, 50, -3.0, 3.0).to(torch::kInt64);
    std::int64_t diff = 0, total = 0;
    for (int b = 0; b < 50; ++b) {
        diff +=
            std::llabs(static_cast<std::int64_t>(layer->histogram.counts[b]) - ref[b].item<std::int64_t>());
        total += static_cast<std::int64_t>(layer->histogram.counts[b]);
    }
    EXPECT_EQ(total, inRange.numel());
    EXPECT_LE(diff, 2)
        << "values within an ulp of an edge may land on either side in histc's float arithmetic";
    EXPECT_EQ(layer->histogram.underflow, static_cast<std::uint64_t>((x < -3.0).sum().item<std::int64_t>()));
    EXPECT_EQ(layer->histogram.overflow, static_cast<std::uint64_t>((x > 3.0).sum().item<std::int64_t>()));
}

TEST(StatsTorch, NonContiguousAndWrongDtypeAreRejected) {
    auto made = makeReducer(Backend::Cpu);
    ASSERT_TRUE(made);
    Reducer* reducer = made->get();
    NeuronStats s;
    auto x = torch::randn({16, 8});
    auto t = x.t(); // column stride 8
    auto r1 = reducer->reduce(viewOf(t, "x.t()"), s);
    ASSERT_FALSE(r1);
    EXPECT_NE(r1.error().message.find("x.t() is not contiguous"), std::string::npos) << r1.error().message;
    auto d = x.to(torch::kFloat64);
    auto r2 = reducer->reduce(viewOf(d, "x64"), s);
    ASSERT_FALSE(r2);
    EXPECT_NE(r2.error().message.find("x64 is float64"), std::string::npos) << r2.error().message;
    // The documented conversion gives the same answer as float32 data.
    auto fixed = t.contiguous();
    auto r3 = reducer->reduce(viewOf(fixed, "x.t().contiguous()"), s);
    ASSERT_TRUE(r3);
    expectClose(column(s, Statistic::Mean), fixed.to(torch::kFloat64).mean(0), 1e-5, 1e-6, "mean");
    // A column slice keeps stride 1 along neurons with a padded row stride: accepted as is.
    auto slice = x.narrow(1, 2, 5);
    auto r4 = reducer->reduce(viewOf(slice, "slice"), s);
    ASSERT_TRUE(r4) << r4.error().message;
    expectClose(column(s, Statistic::Max), slice.amax(0), 0, 0, "amax of slice");
}
