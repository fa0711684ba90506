// Built-in models (MLP, small CNN) defined in C++, and loadModel(), which dispatches built-in specs and
// TorchScript files.
#include "engine/capture/model.hpp"

#include <filesystem>

#include "engine/capture/script_model.hpp"

namespace ts::capture {

void onGradient(const ForwardCapture& fc, size_t i, std::function<void(const torch::Tensor&)> fn) {
    const torch::Tensor& act = fc.activations[i].second;
    if (i >= fc.parts.size() || fc.parts[i].tensors.empty()) {
        if (act.requires_grad()) act.register_hook(std::move(fn));
        return;
    }
    // Iteration t's gradient fills [:, t] of one buffer shaped like the stacked activation.
    // A second backward pass through the same graph (retain_graph) gathers anew.
    struct Gather {
        std::vector<int64_t> shape;
        torch::TensorOptions options;
        torch::Tensor buffer;
        int total = 0, remaining = 0;
        std::function<void(const torch::Tensor&)> fn;
    };
    auto gather = std::make_shared<Gather>();
    gather->fn = std::move(fn);
    gather->shape.assign(act.sizes().begin(), act.sizes().end());
    gather->options = act.options().requires_grad(false);
    const auto& p = fc.parts[i];
    for (const auto& t : p.tensors)
        gather->total += t.requires_grad() ? 1 : 0;
    if (gather->total == 0) return;
    for (size_t t = 0; t < p.tensors.size(); ++t) {
        if (!p.tensors[t].requires_grad()) continue;
        const int bd = t < p.batchDims.size() ? p.batchDims[t] : 0;
        p.tensors[t].register_hook([gather, t, bd](const torch::Tensor& grad) {
            if (!gather->buffer.defined()) {
                gather->buffer = torch::zeros(gather->shape, gather->options);
                gather->remaining = gather->total;
            }
            gather->buffer.select(1, int64_t(t)).copy_(batchFirst(grad, bd));
            if (--gather->remaining == 0) {
                gather->fn(gather->buffer);
                gather->buffer = torch::Tensor(); // the consumer holds it now
            }
        });
    }
}

namespace {

Error usage(std::string message) {
    return makeError(ErrorKind::Usage, std::move(message));
}

// Parses "64,32" into widths; empty text gives the defaults.
Expected<std::vector<int64_t>> parseWidths(const std::string& spec, const std::string& text,
                                           std::vector<int64_t> defaults) {
    if (text.empty()) return defaults;
    std::vector<int64_t> out;
    size_t pos = 0;
    while (pos <= text.size()) {
        const size_t comma = text.find(',', pos);
        const std::string item =
            text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        char* end = nullptr;
        const long long v = std::strtoll(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || v <= 0 || v > (1 << 20))
            return usage("model '" + spec + "': '" + item +
                         "' is not a positive width (expected e.g. 64,32)");
        out.push_back(v);
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    return out;
}

// A Sequential-like stack of named layers; each layer's output except flatten's is captured.
class BuiltinModel final : public Model {
  public:
    BuiltinModel(std::string name)
        : m_name(std::move(name)), m_net(std::make_shared<torch::nn::Module>("Builtin")) {}

    template <class M> void add(const std::string& name, const std::string& type, M module) {
        m_net->register_module(name, module.ptr());
        m_layers.push_back({name, type, torch::nn::AnyModule(module)});
    }

    std::string name() const override { return m_name; }

    torch::Tensor forward(const torch::Tensor& input) override {
        torch::Tensor x = input;
        for (auto& l : m_layers)
            x = l.module.forward(x);
        return x;
    }

    ForwardCapture forwardCapture(const torch::Tensor& input) override {
        ForwardCapture out;
        out.activations.reserve(m_layers.size());
        torch::Tensor x = input;
        for (auto& l : m_layers) {
            x = l.module.forward(x);
            if (l.type != "Flatten") out.activations.emplace_back(l.name, x);
        }
        out.output = x;
        return out;
    }

    NamedTensors namedParameters() override {
        NamedTensors out;
        for (const auto& p : m_net->named_parameters(true))
            out.emplace_back(p.key(), p.value());
        return out;
    }

    NamedTensors namedBuffers() override {
        NamedTensors out;
        for (const auto& b : m_net->named_buffers(true))
            out.emplace_back(b.key(), b.value());
        return out;
    }

    void setTraining(bool on) override { m_net->train(on); }
    bool isTraining() const override { return m_net->is_training(); }
    torch::Device device() const override { return m_device; }
    Status toDevice(const torch::Device& target) override {
        try {
            m_net->to(target);
        } catch (const std::exception& e) {
            return makeError(ErrorKind::Environment,
                             "model '" + m_name + "' cannot move to " + target.str() + ": " + oneLineReason(e.what()));
        }
        m_device = target;
        return Status::ok();
    }

    std::vector<LayerInfo> layerInfo() override {
        std::vector<LayerInfo> out;
        int previous = -1;
        for (const auto& l : m_layers) {
            if (l.type == "Flatten") continue;
            const bool hasParams = !l.module.ptr()->parameters(false).empty();
            out.push_back({l.name, l.type, hasParams ? l.name : std::string(), {previous}});
            previous = static_cast<int>(out.size()) - 1;
        }
        return out;
    }

    Expected<Program> inferenceProgram() override {
        const auto dims = [](const torch::ExpandingArray<2>& a) { return std::vector<int64_t>(a->begin(), a->end()); };
        Program program;
        int value = 0;
        for (const auto& l : m_layers) {
            ProgramOp op;
            op.where = l.name;
            op.inputs = {value};
            if (l.type == "Flatten") {
                op.kind = ProgramOp::Kind::Flatten;
            } else if (l.type == "ReLU") {
                op.kind = ProgramOp::Kind::Relu;
            } else if (auto* lin = l.module.ptr()->as<torch::nn::LinearImpl>()) {
                op.kind = ProgramOp::Kind::Linear;
                op.weight = l.name + ".weight";
                if (lin->bias.defined()) op.bias = l.name + ".bias";
            } else if (auto* conv = l.module.ptr()->as<torch::nn::Conv2dImpl>()) {
                const auto& o = conv->options;
                op.kind = ProgramOp::Kind::Conv2d;
                op.weight = l.name + ".weight";
                if (conv->bias.defined()) op.bias = l.name + ".bias";
                op.stride = dims(o.stride());
                op.padding = dims(c10::get<torch::ExpandingArray<2>>(o.padding()));
                op.dilation = dims(o.dilation());
                op.groups = o.groups();
            } else if (auto* pool = l.module.ptr()->as<torch::nn::MaxPool2dImpl>()) {
                const auto& o = pool->options;
                op.kind = ProgramOp::Kind::MaxPool2d;
                op.kernel = dims(o.kernel_size());
                op.stride = dims(o.stride());
                op.padding = dims(o.padding());
                op.dilation = dims(o.dilation());
                op.ceilMode = o.ceil_mode();
            } else {
                return usage("model '" + m_name + "': layer '" + l.name + "' (" + l.type + ") is not a program op");
            }
            op.output = ++value;
            program.ops.push_back(std::move(op));
        }
        program.output = value;
        program.valueCount = value + 1;
        return program;
    }

    Expected<torch::Tensor> callModule(const std::string& path, const torch::Tensor& input,
                                       const NamedTensors& overrides) override {
        for (auto& l : m_layers) {
            if (l.name != path) continue;
            auto param = [&](const char* key, const torch::Tensor& own) {
                for (const auto& [k, t] : overrides)
                    if (k == key) return t;
                return own;
            };
            if (auto* lin = l.module.ptr()->as<torch::nn::LinearImpl>())
                return torch::nn::functional::linear(input, param("weight", lin->weight), param("bias", lin->bias));
            if (auto* conv = l.module.ptr()->as<torch::nn::Conv2dImpl>()) {
                const auto& o = conv->options;
                return torch::conv2d(input, param("weight", conv->weight), param("bias", conv->bias), o.stride(),
                                     c10::get<torch::ExpandingArray<2>>(o.padding()), o.dilation(), o.groups());
            }
            if (!overrides.empty())
                return usage("module '" + path + "' of '" + m_name + "' has no parameters to replace");
            return l.module.forward(input);
        }
        return usage("model '" + m_name + "' has no module '" + path + "'");
    }

    Expected<torch::Tensor> forwardOverriding(const std::string& path, const NamedTensors& overrides,
                                              const torch::Tensor& input) override {
        torch::Tensor *weight = nullptr, *bias = nullptr;
        for (auto& l : m_layers) {
            if (l.name != path) continue;
            if (auto* lin = l.module.ptr()->as<torch::nn::LinearImpl>()) weight = &lin->weight, bias = &lin->bias;
            if (auto* conv = l.module.ptr()->as<torch::nn::Conv2dImpl>()) weight = &conv->weight, bias = &conv->bias;
        }
        if (!weight) return usage("model '" + m_name + "' has no Linear or Conv2d module '" + path + "'");
        // The modules' forward() reads these members: swap the handles (not the tensors' contents), put them back.
        std::vector<std::pair<torch::Tensor*, torch::Tensor>> saved;
        auto restore = [&] {
            for (auto it = saved.rbegin(); it != saved.rend(); ++it)
                *it->first = it->second;
        };
        for (const auto& [key, t] : overrides) {
            torch::Tensor* slot = key == "weight" ? weight : key == "bias" ? bias : nullptr;
            if (!slot || !slot->defined()) {
                restore();
                return usage("module '" + path + "' of '" + m_name + "' has no tensor '" + key + "'");
            }
            saved.emplace_back(slot, *slot);
            *slot = t;
        }
        try {
            torch::Tensor out = forward(input);
            restore();
            return out;
        } catch (const std::exception& e) {
            restore();
            return usage("module '" + path + "' of '" + m_name + "': " + oneLineReason(e.what()));
        }
    }

    Expected<torch::Tensor> forwardReplacing(const std::string& layer, const torch::Tensor& value,
                                             const torch::Tensor& input) override {
        bool found = false;
        for (const auto& l : m_layers)
            found = found || (l.name == layer && l.type != "Flatten");
        if (!found) return usage("model '" + m_name + "' has no layer '" + layer + "'");
        try {
            torch::Tensor x = input;
            for (auto& l : m_layers) {
                x = l.module.forward(x);
                if (l.name == layer) x = value.to(x.scalar_type()).expand_as(x);
            }
            return x;
        } catch (const std::exception& e) {
            return usage("layer '" + layer + "' of '" + m_name + "': " + oneLineReason(e.what()));
        }
    }

  private:
    struct Layer {
        std::string name, type;
        torch::nn::AnyModule module;
    };
    std::string m_name;
    std::shared_ptr<torch::nn::Module> m_net;
    std::vector<Layer> m_layers;
    torch::Device m_device = torch::kCPU;
};

Expected<std::unique_ptr<Model>> makeMlp(const std::string& spec, const std::string& args,
                                         const std::vector<int64_t>& inputShape, int64_t numClasses) {
    auto widths = parseWidths(spec, args, {64, 32});
    if (!widths) return widths.error();
    int64_t in = 1;
    for (auto d : inputShape)
        in *= d;
    if (inputShape.empty() || in <= 0)
        return usage("model '" + spec + "' needs the per-sample input shape (e.g. [2] or [1, 28, 28])");
    auto model = std::make_unique<BuiltinModel>(spec);
    model->add("flatten", "Flatten", torch::nn::Flatten());
    int64_t width = in;
    for (size_t i = 0; i < widths->size(); ++i) {
        const int64_t w = (*widths)[i];
        model->add("fc" + std::to_string(i + 1), "Linear", torch::nn::Linear(width, w));
        model->add("relu" + std::to_string(i + 1), "ReLU", torch::nn::ReLU());
        width = w;
    }
    model->add("out", "Linear", torch::nn::Linear(width, numClasses));
    return std::unique_ptr<Model>(std::move(model));
}

Expected<std::unique_ptr<Model>> makeCnn(const std::string& spec, const std::string& args,
                                         const std::vector<int64_t>& inputShape, int64_t numClasses) {
    auto channels = parseWidths(spec, args, {8, 16});
    if (!channels) return channels.error();
    if (inputShape.size() != 3)
        return usage("model '" + spec + "' needs image inputs [C, H, W], got " +
                     std::to_string(inputShape.size()) + "-d samples (use builtin:mlp for 2D toy sets)");
    const int64_t k = static_cast<int64_t>(channels->size());
    int64_t h = inputShape[1], w = inputShape[2];
    if (h % (int64_t(1) << k) != 0 || w % (int64_t(1) << k) != 0)
        return usage("model '" + spec + "': input " + std::to_string(h) + "x" + std::to_string(w) +
                     " is not divisible by 2^" + std::to_string(k) + " (one 2x2 max-pool per conv block)");
    auto model = std::make_unique<BuiltinModel>(spec);
    int64_t c = inputShape[0];
    for (int64_t i = 0; i < k; ++i) {
        const std::string n = std::to_string(i + 1);
        const int64_t co = (*channels)[i];
        model->add("conv" + n, "Conv2d", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, co, 3).padding(1)));
        model->add("relu" + n, "ReLU", torch::nn::ReLU());
        model->add("pool" + n, "MaxPool2d", torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
        c = co;
        h /= 2;
        w /= 2;
    }
    model->add("flatten", "Flatten", torch::nn::Flatten());
    model->add("fc1", "Linear", torch::nn::Linear(c * h * w, 64));
    model->add("relu_fc", "ReLU", torch::nn::ReLU());
    model->add("out", "Linear", torch::nn::Linear(64, numClasses));
    return std::unique_ptr<Model>(std::move(model));
}

} // namespace

Expected<std::unique_ptr<Model>> loadModel(const std::string& spec, const std::vector<int64_t>& inputShape,
                                           int64_t numClasses) {
    std::string builtin;
    if (spec.rfind("builtin:", 0) == 0) {
        builtin = spec.substr(8);
    } else if ((spec == "mlp" || spec == "cnn" || spec.rfind("mlp:", 0) == 0 || spec.rfind("cnn:", 0) == 0) &&
               !std::filesystem::exists(spec)) {
        builtin = spec;
    }
    if (!builtin.empty() || spec.rfind("builtin:", 0) == 0) {
        if (numClasses < 1) return usage("model '" + spec + "' needs at least one class");
        const size_t colon = builtin.find(':');
        const std::string kind = builtin.substr(0, colon);
        const std::string args = colon == std::string::npos ? std::string() : builtin.substr(colon + 1);
        try {
            if (kind == "mlp") return makeMlp(spec, args, inputShape, numClasses);
            if (kind == "cnn") return makeCnn(spec, args, inputShape, numClasses);
        } catch (const std::exception& e) {
            return usage("model '" + spec + "': " + oneLineReason(e.what()));
        }
        return usage("unknown built-in model '" + spec +
                     "' (expected builtin:mlp[:64,32] or builtin:cnn[:8,16])");
    }
    return detail::loadScriptModel(spec, inputShape);
}

} // namespace ts::capture
