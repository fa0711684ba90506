// Test-local implementations of the capture::Model contract (a torch::nn::Sequential, a TorchScript module),
// so the landscape tests do not depend on capture's built-in models.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <string>

#include "engine/capture/model.hpp"

namespace ts::landscape::testing {

class SequentialModel : public capture::Model {
  public:
    explicit SequentialModel(torch::nn::Sequential seq, std::string name = "test-sequential")
        : m_seq(std::move(seq)), m_name(std::move(name)) {}
    std::string name() const override { return m_name; }
    torch::Tensor forward(const torch::Tensor& input) override { return m_seq->forward(input); }
    capture::ForwardCapture forwardCapture(const torch::Tensor& input) override {
        return {forward(input), {}};
    }
    capture::NamedTensors namedParameters() override {
        capture::NamedTensors out;
        for (auto& p : m_seq->named_parameters(true))
            out.emplace_back(p.key(), p.value());
        return out;
    }
    capture::NamedTensors namedBuffers() override {
        capture::NamedTensors out;
        for (auto& b : m_seq->named_buffers(true))
            out.emplace_back(b.key(), b.value());
        return out;
    }
    void setTraining(bool on) override { m_seq->train(on); }
    bool isTraining() const override { return m_seq->is_training(); }
    torch::nn::Sequential& module() { return m_seq; }

  private:
    torch::nn::Sequential m_seq;
    std::string m_name;
};

class TorchScriptModel : public capture::Model {
  public:
    explicit TorchScriptModel(const std::string& path) : m_module(torch::jit::load(path)), m_path(path) {}
    std::string name() const override { return m_path; }
    torch::Tensor forward(const torch::Tensor& input) override {
        return m_module.forward({input}).toTensor();
    }
    capture::ForwardCapture forwardCapture(const torch::Tensor& input) override {
        return {forward(input), {}};
    }
    capture::NamedTensors namedParameters() override {
        capture::NamedTensors out;
        for (const auto& p : m_module.named_parameters(true))
            out.emplace_back(p.name, p.value);
        return out;
    }
    capture::NamedTensors namedBuffers() override {
        capture::NamedTensors out;
        for (const auto& b : m_module.named_buffers(true))
            out.emplace_back(b.name, b.value);
        return out;
    }
    void setTraining(bool on) override { on ? m_module.train() : m_module.eval(); }

  private:
    torch::jit::Module m_module;
    std::string m_path;
};

// Flatten -> Linear chain with `act` between layers (the shape of the built-in MLPs).
inline torch::nn::Sequential makeMlp(const std::vector<int64_t>& widths, const std::string& act = "relu") {
    torch::nn::Sequential seq;
    seq->push_back(torch::nn::Flatten());
    for (size_t i = 0; i + 1 < widths.size(); ++i) {
        seq->push_back(torch::nn::Linear(widths[i], widths[i + 1]));
        if (i + 2 < widths.size()) {
            if (act == "relu")
                seq->push_back(torch::nn::ReLU());
            else if (act == "tanh")
                seq->push_back(torch::nn::Tanh());
            else
                seq->push_back(torch::nn::GELU());
        }
    }
    return seq;
}

// A small CNN with BatchNorm: not a Linear chain, so the evaluator must fall back to the per-point path.
inline torch::nn::Sequential makeCnn() {
    torch::nn::Sequential seq;
    seq->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3).padding(1)));
    seq->push_back(torch::nn::BatchNorm2d(4));
    seq->push_back(torch::nn::ReLU());
    seq->push_back(torch::nn::Flatten());
    seq->push_back(torch::nn::Linear(4 * 6 * 6, 3));
    return seq;
}

} // namespace ts::landscape::testing
