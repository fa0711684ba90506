// --input and its image options for every command that takes real inputs (input_flags.hpp).
#include "app/input_flags.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <tuple>

namespace ts::app {

namespace {

Expected<std::vector<float>> parseFloats(const std::string& flag, const std::string& text) {
    std::vector<float> out;
    for (const std::string& item : splitCommas(text)) {
        char* stop = nullptr;
        float v = std::strtof(item.c_str(), &stop);
        if (item.empty() || *stop || !std::isfinite(v))
            return makeError(ErrorKind::Usage, "--" + flag + " expects numbers separated by commas, got '" + text + "'");
        out.push_back(v);
    }
    return out;
}

Expected<int64_t> parseCount(const std::string& flag, const std::string& text, int64_t lo, int64_t hi) {
    char* stop = nullptr;
    long long v = std::strtoll(text.c_str(), &stop, 10);
    if (text.empty() || *stop || v < lo || v > hi)
        return makeError(ErrorKind::Usage, "--" + flag + " expects a whole number in " + std::to_string(lo) + ".." +
                                               std::to_string(hi) + ", got '" + text + "'");
    return int64_t(v);
}

} // namespace

Expected<capture::InputOptions> inputOptions(const InputSpec& in, int64_t count, uint64_t seed) {
    capture::InputOptions o;
    if (!in.preset.empty()) {
        if (in.preset != "imagenet")
            return makeError(ErrorKind::Usage, "unknown --preset '" + in.preset + "' (imagenet)");
        o = capture::imagenetPreset();
    }
    o.path = in.path;
    o.count = count;
    o.seed = seed;
    if (!in.shape.empty()) {
        auto shape = capture::parseShape(in.shape);
        if (!shape) return shape.error();
        o.shape = *shape;
    }
    for (auto [flag, text, dst, lo, hi] : {std::tuple{"resize", in.resize, &o.resize, 1L, 16384L},
                                          std::tuple{"crop", in.crop, &o.crop, 1L, 16384L},
                                          std::tuple{"channels", in.channels, &o.channels, 1L, 3L}}) {
        if (text.empty()) continue;
        auto v = parseCount(flag, text, lo, hi);
        if (!v) return v.error();
        *dst = *v;
    }
    if (o.channels == 2) return makeError(ErrorKind::Usage, "--channels is 1 (grey) or 3 (RGB)");
    for (auto [flag, text, dst] : {std::tuple{"mean", in.mean, &o.mean}, std::tuple{"std", in.std, &o.std}}) {
        if (text.empty()) continue;
        auto v = parseFloats(flag, text);
        if (!v) return v.error();
        *dst = *v;
    }
    return o;
}


std::vector<FlagSpec> inputFlags(bool probe) {
    return {
        {"input", "FILE|DIR", "real inputs: a PNG/JPEG/BMP image or a folder of them, a .npy array, or a .pt tensor "
                              "saved with torch.save ([N, ...])", ""},
        {"input-shape", "C,H,W", probe ? "a seeded random probe of this per-sample shape (e.g. 3,224,224 or T,F); "
                                         "with --input, the shape each sample must have"
                                       : "with --input: the shape each sample must have (e.g. 3,224,224)", ""},
        {"preset", "NAME", "image preprocessing preset: imagenet (resize 256, crop 224, ImageNet mean/std); the "
                           "flags below change it", ""},
        {"resize", "N", "images: shorter side resized to N", ""},
        {"crop", "N", "images: centre crop N x N", ""},
        {"channels", "N", "images: 3 (RGB) or 1 (grey)", "3"},
        {"mean", "A,B,C", "images: per-channel mean subtracted after scaling to [0, 1]", ""},
        {"std", "A,B,C", "images: per-channel standard deviation divided by", ""},
    };
}

CommandSpec withInputFlags(CommandSpec spec, bool probe, size_t at) {
    const auto flags = inputFlags(probe);
    spec.flags.insert(spec.flags.begin() + std::ptrdiff_t(std::min(at, spec.flags.size())), flags.begin(), flags.end());
    return spec;
}

InputSpec inputSpecOf(const Args& args) {
    InputSpec in;
    in.path = args.get("input");
    in.shape = args.get("input-shape");
    in.preset = args.get("preset");
    in.resize = args.get("resize");
    in.crop = args.get("crop");
    in.channels = args.get("channels");
    in.mean = args.get("mean");
    in.std = args.get("std");
    return in;
}

} // namespace ts::app
