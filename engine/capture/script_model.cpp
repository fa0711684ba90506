// TorchScript models: load any architecture, and expose its intermediate activations by graph surgery on a
// copy of forward()'s graph (inline every call, functionalise in-place ops, return the values of interest).
//
// Sections: 1. ops of interest  2. graph surgery (inline with ownership, in-place ops, candidates, edges)
//           3. ScriptModel  4. loadScriptModel
#include "engine/capture/script_model.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/lower_tuples.h>
#include <torch/script.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "engine/core/log.hpp"

namespace ts::capture::detail {

namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
namespace prim = c10::prim;

// ---------------------------------------------------------------------------------------------------------
// 1. Ops of interest: functional calls whose outputs are layer-like (a forward hook in Python would not see
// them, but a viewer should: F.relu(...) in forward, the residual add, torch.cat of branches).

const std::set<std::string>& activationOps() {
    static const std::set<std::string> ops = {"relu",
                                              "sigmoid",
                                              "tanh",
                                              "gelu",
                                              "silu",
                                              "leaky_relu",
                                              "elu",
                                              "selu",
                                              "hardtanh",
                                              "hardswish",
                                              "hardsigmoid",
                                              "softplus",
                                              "mish",
                                              "relu6",
                                              "softmax",
                                              "log_softmax",
                                              "add",
                                              "sub",
                                              "mul",
                                              "cat",
                                              "linear",
                                              "conv1d",
                                              "conv2d",
                                              "conv3d",
                                              "_convolution",
                                              "matmul",
                                              "mm",
                                              "addmm",
                                              "bmm",
                                              "max_pool1d",
                                              "max_pool2d",
                                              "avg_pool1d",
                                              "avg_pool2d",
                                              "adaptive_avg_pool1d",
                                              "adaptive_avg_pool2d",
                                              "adaptive_max_pool2d",
                                              "batch_norm",
                                              "layer_norm",
                                              "group_norm",
                                              "instance_norm"};
    return ops;
}

bool isTensor(const Value* v) {
    return v->type()->cast<c10::TensorType>() != nullptr;
}

// Binary ops count only between two tensors (x + identity), not x * 0.5.
bool isOpOfInterest(const Node* n) {
    const auto kind = n->kind();
    if (!kind.is_aten() || n->outputs().size() != 1 || !isTensor(n->output())) return false;
    const std::string name = kind.toUnqualString();
    if (!activationOps().count(name)) return false;
    if (name == "add" || name == "sub" || name == "mul")
        return n->inputs().size() >= 2 && isTensor(n->input(0)) && isTensor(n->input(1));
    return true;
}

// ---------------------------------------------------------------------------------------------------------
// 2. Graph surgery.

struct Candidate {
    Value* value = nullptr;
    std::string name, type, module;
    size_t order = 0; // position of the producing node in the top-level block
};

struct Surgery {
    std::shared_ptr<Graph> graph;
    std::vector<Model::LayerInfo> layers;
    std::vector<std::string> notes; // why some values are not exposed
    // Module paths forward() calls, with whether one of the call's outputs is captured, and why not.
    std::map<std::string, std::pair<bool, std::string>> calls;
};

std::string lastComponent(const std::string& qualified) {
    const size_t dot = qualified.rfind('.');
    return dot == std::string::npos ? qualified : qualified.substr(dot + 1);
}

// Module path of an object value: the chain of prim::GetAttr from `self` ("layer1.0.conv1"), or nothing.
std::optional<std::string> modulePath(Value* v, const Value* self) {
    std::vector<std::string> parts;
    while (v != self) {
        Node* n = v->node();
        if (n->kind() != prim::GetAttr) return std::nullopt;
        parts.push_back(n->s(c10::attr::name));
        v = n->input(0);
    }
    std::string path;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it)
        path += (path.empty() ? "" : ".") + *it;
    return path;
}

void forEachNode(Block* b, const std::function<void(Node*)>& fn) {
    for (Node* n : b->nodes()) {
        fn(n);
        for (Block* sub : n->blocks())
            forEachNode(sub, fn);
    }
}

bool isTensorOrOptional(const Value* v) {
    if (isTensor(v)) return true;
    auto opt = v->type()->cast<c10::OptionalType>();
    return opt && opt->getElementType()->cast<c10::TensorType>();
}

// Replaces an in-place op (relu_, add_) of the top-level block by its functional form when that is provably
// equivalent: the mutated tensor is freshly produced by an op that returns new memory, and none of its uses
// create aliases (views) that could observe the mutation. Otherwise the value stays shared and a note says
// so.
bool functionalise(Graph& graph, Node* n) {
    const std::string name = n->kind().toUnqualString();
    if (name.size() < 2 || name.back() != '_' || n->inputs().empty() || n->outputs().size() != 1)
        return false;
    const std::string base = name.substr(0, name.size() - 1);
    Value* x = n->input(0);
    if (!isTensor(x) || x->node()->kind() == prim::Param) return false;
    const c10::FunctionSchema* producer = x->node()->maybeSchema();
    if (!producer || producer->returns().size() <= x->offset() ||
        producer->returns()[x->offset()].alias_info())
        return false;
    for (const auto& use : x->uses()) {
        if (use.user == n) continue;
        const c10::FunctionSchema* s = use.user->maybeSchema();
        if (use.user->kind() == prim::Return) continue;
        if (!s || use.offset >= s->arguments().size() || s->arguments()[use.offset].alias_info())
            return false;
    }
    Node* f = graph.create(c10::Symbol::aten(base), n->inputs(), 1);
    f->insertBefore(n);
    f->output()->setType(n->output()->type());
    if (!f->maybeSchema()) { // no functional twin with this signature
        f->destroy();
        return false;
    }
    n->output()->replaceAllUsesWith(f->output());
    x->replaceAllUsesDominatedByNodeWith(n, f->output());
    n->destroy();
    return true;
}

// Names of the extra tensors of modules that return tuples, as their documentation names them; other
// modules' extra outputs are "out1", "out2", ...
std::string tupleElementName(const std::string& type, size_t index) {
    static const std::map<std::string, std::vector<std::string>> known = {
        {"LSTM", {"", "h_n", "c_n"}},           {"GRU", {"", "h_n"}}, {"RNN", {"", "h_n"}}, {"LSTMCell", {"", "c"}},
        {"MultiheadAttention", {"", "attn_weights"}}};
    auto it = known.find(type);
    if (it != known.end() && index < it->second.size()) return it->second[index];
    return index == 0 ? "" : "out" + std::to_string(index);
}

// The tensors of a module call's result: the value itself, or the leaves of a (nested) tuple, unpacked
// right after it is made.
void tensorLeaves(Graph& g, Value* v, std::vector<Value*>& out) {
    if (isTensorOrOptional(v)) {
        out.push_back(v);
        return;
    }
    if (!v->type()->cast<c10::TupleType>()) {
        out.push_back(nullptr); // a non-tensor leaf keeps its position in the numbering
        return;
    }
    std::vector<Value*> elements;
    if (v->node()->kind() == prim::TupleConstruct) {
        elements.assign(v->node()->inputs().begin(), v->node()->inputs().end());
    } else {
        Node* unpack = g.createTupleUnpack(v);
        unpack->insertAfter(v->node());
        elements.assign(unpack->outputs().begin(), unpack->outputs().end());
    }
    for (Value* e : elements)
        tensorLeaves(g, e, out);
}

// Tensors, optional tensors and lists of them (what hoist() makes of a value inside branches and loops).
bool isTensorLike(const c10::TypePtr& t) {
    if (t->cast<c10::TensorType>()) return true;
    if (auto o = t->cast<c10::OptionalType>()) return isTensorLike(o->getElementType());
    if (auto l = t->cast<c10::ListType>()) return isTensorLike(l->getElementType());
    return false;
}

// Makes a value computed inside if-blocks or loop bodies visible in the top-level block.
// - Through a prim::If, the if gets an extra Optional output: the value in its block, None in the other, so
//   the capture holds the tensor whenever that branch ran.
// - Through a prim::Loop, a list made before the loop collects the value of every iteration (aten::append
//   right after it is computed); ScriptModel stacks the list after the batch dimension ([N, iterations, ...]).
//   A value inside two nested loops is not hoisted (nullptr).
Value* hoist(Graph& g, Value* v) {
    bool collected = false;
    while (v->node()->owningBlock() != g.block()) {
        Block* b = v->node()->owningBlock();
        Node* owner = b->owningNode();
        if (!owner) return nullptr;
        if (owner->kind() == prim::If) {
            const c10::TypePtr type =
                v->type()->cast<c10::OptionalType>() ? v->type() : c10::OptionalType::create(v->type());
            for (Block* sub : owner->blocks()) {
                if (sub == b) {
                    sub->registerOutput(v);
                } else {
                    torch::jit::WithInsertPoint guard(sub->return_node());
                    sub->registerOutput(g.insertConstant(c10::IValue()));
                }
            }
            v = owner->addOutput()->setType(type);
        } else if (owner->kind() == prim::Loop && !collected && v->node()->kind() != prim::Param) {
            Node* list = g.createList(v->type(), {});
            list->insertBefore(owner);
            torch::jit::WithInsertPoint guard(v->node()->next());
            g.insert(c10::aten::append, {list->output(), v});
            v = list->output();
            collected = true;
        } else {
            return nullptr;
        }
    }
    return v;
}

// The value a loop's collecting list (made by hoist) appends on each iteration, or nullptr.
Value* appendedTo(Value* list) {
    if (!list->type()->cast<c10::ListType>()) return nullptr;
    for (const auto& use : list->uses())
        if (use.user->kind() == c10::aten::append && use.offset == 0) return use.user->input(1);
    return nullptr;
}

// Replaces reads of non-tensor module attributes (use_res_connect, stride, memory_efficient, ...) by their
// values so that branches on them fold away and the layers inside reach the top-level block. `training` is
// specialised too (ScriptModel keeps one graph per set of training flags); attributes that forward() assigns
// (prim::SetAttr) are left alone. Branches on run-time values (torch.is_grad_enabled(), shapes) stay and
// their layers are hoisted.
void specialiseAttributes(Graph& g, const torch::jit::Module& module, Value* self) {
    std::set<std::string> assigned;
    std::vector<Node*> reads;
    forEachNode(g.block(), [&](Node* n) {
        if (n->kind() == prim::SetAttr) assigned.insert(n->s(c10::attr::name));
        if (n->kind() == prim::GetAttr) reads.push_back(n);
    });
    auto primitive = [](const c10::IValue& v) {
        return v.isBool() || v.isInt() || v.isDouble() || v.isString() || v.isNone() || v.isIntList() ||
               v.isDoubleList() || v.isBoolList();
    };
    for (Node* n : reads) {
        const std::string name = n->s(c10::attr::name);
        if (assigned.count(name)) continue;
        const auto type = n->output()->type();
        if (type->cast<c10::ClassType>() || type->cast<c10::TensorType>()) continue;
        auto path = modulePath(n->input(0), self);
        if (!path) continue;
        torch::jit::Module m = module;
        bool found = true;
        std::stringstream parts(*path);
        for (std::string part; found && !path->empty() && std::getline(parts, part, '.');) {
            found = m.hasattr(part) && m.attr(part).isModule();
            if (found) m = m.attr(part).toModule();
        }
        if (!found || !m.hasattr(name)) continue;
        const c10::IValue value = m.attr(name);
        bool ok = primitive(value);
        if (value.isTuple()) {
            ok = true;
            for (const auto& e : value.toTupleRef().elements())
                ok = ok && primitive(e);
        }
        if (!ok) continue;
        torch::jit::WithInsertPoint guard(n);
        auto c = torch::jit::tryInsertConstant(g, value);
        if (!c) continue;
        (*c)->setType(type);
        n->output()->replaceAllUsesWith(*c);
    }
}

// nn.TransformerEncoderLayer and torchvision's ViT call their attention with need_weights=False; the viewer
// wants the maps of every head, so the call asks for them (need_weights=True, average_attn_weights=False).
// The output is computed the same way either way (PyTorch 1.13 forms the weights and drops them); callers
// that ignore the second element of the result are unaffected.
void askForAttentionMaps(Graph& g, Node* call, torch::jit::GraphFunction& callee) {
    const auto& args = callee.getSchema().arguments();
    for (size_t i = 0; i < args.size() && i < call->inputs().size(); ++i) {
        const bool value = args[i].name() == "need_weights" ? true : false;
        if (args[i].name() != "need_weights" && args[i].name() != "average_attn_weights") continue;
        torch::jit::WithInsertPoint guard(call);
        call->replaceInput(i, g.insertConstant(value));
    }
}

struct Record {
    std::string path, type, name;
    Value* value; // nullptr once dropped
};

// Inlines every method and function call, in nested blocks too, first to last, remembering which module owns
// each new node and the tensors each module call returned.
Status inlineCalls(Graph& g, Value* self, std::unordered_map<const Node*, std::string>& owner,
                   std::vector<Record>& records, std::map<std::string, std::pair<bool, std::string>>& calls) {
    forEachNode(g.block(), [&](Node* n) { owner[n] = ""; });
    for (int guard = 0;; ++guard) {
        if (guard > 200000) return makeError(ErrorKind::Failed, "inlining did not terminate");
        Node* call = nullptr;
        std::function<bool(Block*)> findCall = [&](Block* b) {
            for (Node* n : b->nodes()) {
                if (n->kind() == prim::CallMethod || n->kind() == prim::CallFunction) {
                    call = n;
                    return true;
                }
                for (Block* sub : n->blocks())
                    if (findCall(sub)) return true;
            }
            return false;
        };
        if (!findCall(g.block())) break;
        std::string path = owner[call];
        torch::jit::GraphFunction* callee = nullptr;
        bool isModuleForward = false;
        std::string type;
        if (call->kind() == prim::CallMethod) {
            auto cls = call->input(0)->type()->cast<c10::ClassType>();
            if (!cls) return makeError(ErrorKind::Failed, "a method call on a non-module value");
            callee = torch::jit::tryToGraphFunction(cls->getMethod(call->s(c10::attr::name)));
            auto p = modulePath(call->input(0), self);
            if (p) path = *p;
            // Traced modules called twice get methods forward, forward1, ...; overloads (nn.LSTM's) are
            // forward__0, forward__1.
            const std::string method = call->s(c10::attr::name);
            isModuleForward = p.has_value() && method.rfind("forward", 0) == 0 &&
                              method.find_first_not_of("_0123456789", 7) == std::string::npos;
            type = cls->name() ? lastComponent(cls->name()->qualifiedName()) : "Module";
        } else {
            auto fnType = call->input(0)->type()->cast<c10::FunctionType>();
            if (!fnType) return makeError(ErrorKind::Failed, "a function call without a function constant");
            callee = torch::jit::tryToGraphFunction(*fnType->function());
            if (callee) call->removeInput(0);
        }
        if (!callee) return makeError(ErrorKind::Failed, "a call to a non-graph function cannot be inlined");
        if (isModuleForward && type == "MultiheadAttention") askForAttentionMaps(g, call, *callee);
        Node* before = call->prev();
        Node* after = call->next();
        std::vector<Value*> oldOutputs(call->outputs().begin(), call->outputs().end());
        // false: the callee's own graph; true would take its optimized graph, already inlined (names lost).
        auto newOutputs = torch::jit::inlineCallTo(call, callee, false);
        for (auto& r : records)
            for (size_t i = 0; i < oldOutputs.size() && i < newOutputs.size(); ++i)
                if (r.value == oldOutputs[i]) r.value = newOutputs[i];
        for (Node* n = before->next(); n != after; n = n->next()) {
            owner[n] = path;
            for (Block* b : n->blocks())
                forEachNode(b, [&](Node* inner) { owner[inner] = path; });
        }
        if (!isModuleForward || newOutputs.size() != 1) continue;
        calls.emplace(path, std::make_pair(false, std::string("its output is not a tensor")));
        std::vector<Value*> leaves;
        tensorLeaves(g, newOutputs[0], leaves);
        for (size_t i = 0; i < leaves.size(); ++i) {
            if (!leaves[i]) continue;
            const std::string suffix = tupleElementName(type, i);
            records.push_back({path, type, suffix.empty() ? path : path + "." + suffix, leaves[i]});
        }
    }
    return Status::ok();
}

using Owners = std::unordered_map<const Node*, std::string>;
using Calls = std::map<std::string, std::pair<bool, std::string>>;

// Values computed inside if-blocks become outputs of their if-nodes; those inside loop bodies are collected
// into lists, one element per iteration. A value two loops deep is dropped, with the reason in `calls`.
void hoistRecords(Graph& g, std::vector<Record>& records, Calls& calls) {
    for (auto& r : records) {
        Value* h = hoist(g, r.value);
        if (!h) {
            calls[r.path].second = "its output is computed inside nested loops";
            r.value = nullptr;
            continue;
        }
        r.value = h;
    }
}

// Specialises the graph on the module's configuration, constant-folds it, and makes in-place ops functional,
// keeping `records` pointing at the values they mean (they ride along as temporary graph outputs, which the
// passes keep up to date).
void simplifyGraph(std::shared_ptr<Graph>& graph, const torch::jit::Module& module, Value* self, Owners& owner,
                   std::vector<Record>& records, std::vector<std::string>& notes) {
    Graph& g = *graph;
    const size_t firstTemp = g.outputs().size();
    std::vector<size_t> slot(records.size(), SIZE_MAX);
    for (size_t i = 0; i < records.size(); ++i)
        if (records[i].value) {
            slot[i] = g.outputs().size();
            g.registerOutput(records[i].value);
        }
    auto refresh = [&] {
        for (size_t i = 0; i < records.size(); ++i)
            if (slot[i] != SIZE_MAX) records[i].value = g.outputs()[slot[i]];
    };

    // Specialise on the module's configuration, then constant-fold: branches such as `if self.stride == 1`,
    // `if self.use_res_connect` and F.relu's `if inplace:` disappear and their layers reach the top level.
    specialiseAttributes(g, module, self);
    torch::jit::ConstantPropagation(graph);
    refresh();

    // Functionalise in-place ops so that a captured tensor is not overwritten later (ReLU(inplace=True),
    // out += identity). The temporary outputs follow replaced values.
    std::vector<Node*> inplace;
    for (Node* n : g.nodes()) {
        const std::string op = n->kind().is_aten() ? n->kind().toUnqualString() : "";
        if (op.size() > 1 && op.front() != '_' && op.back() == '_') inplace.push_back(n);
    }
    for (Node* n : inplace) {
        Value* oldOut = n->output();
        const std::string path = owner[n];
        Node* prev = n->prev();
        Value* mutated = n->input(0);
        // Records of the mutated value mean its value before the op (a BatchNorm's output before the in-place
        // ReLU after it); functionalise() would point every later use at the op's result.
        std::vector<size_t> keep;
        for (size_t i = firstTemp; i < g.outputs().size(); ++i)
            if (g.outputs()[i] == mutated) keep.push_back(i);
        if (functionalise(g, n)) {
            owner[prev->next()] = path;
            for (size_t i : keep)
                g.return_node()->replaceInput(i, mutated);
        } else if (isTensor(oldOut) &&
                   (isOpOfInterest(mutated->node()) ||
                    std::any_of(records.begin(), records.end(), [&](const Record& r) { return r.value == mutated; }))) {
            notes.push_back(std::string("in-place ") + oldOut->node()->kind().toQualString() + " in '" + path +
                            "' kept: the activation before it may show values after it");
        }
    }
    refresh();
    torch::jit::EliminateDeadCode(graph);
    refresh();
    while (g.outputs().size() > firstTemp)
        g.eraseOutput(g.outputs().size() - 1);
}

// The layers to expose, in forward order with unique names: module outputs (one name per value: the module
// that computed it) and ops of interest in non-leaf modules, all in the top-level block, and the model's
// output. `calls` learns which module calls were captured and why others were not.
std::vector<Candidate> collectCandidates(Graph& g, const torch::jit::Module& module, const std::vector<Record>& records,
                                         Owners& owner, Calls& calls) {
    std::unordered_map<std::string, bool> isLeaf; // module path -> has no submodules
    for (const auto& m : module.named_modules())
        isLeaf[m.name] = m.value.named_children().size() == 0;
    std::unordered_map<const Node*, size_t> position;
    size_t pos = 0;
    for (Node* n : g.nodes())
        position[n] = pos++;
    std::unordered_map<Value*, Candidate> byValue;
    auto inTopBlock = [&](Value* v) {
        return v->node()->owningBlock() == g.block() && position.count(v->node());
    };
    for (const auto& r : records) {
        if (!r.value) continue;
        if (!isTensorLike(r.value->type()) || !inTopBlock(r.value)) {
            if (r.value->node()->kind() == prim::Constant)
                calls[r.path].second = "never runs for this configuration";
            continue;
        }
        const std::string& producer = owner[r.value->node()];
        // Prefer the record whose module produced the value, then the deepest enclosing one.
        auto score = [&](const std::string& path) -> long {
            if (path == producer) return 1 << 20;
            if (path.empty() || producer.rfind(path + ".", 0) == 0) return static_cast<long>(path.size());
            return -1;
        };
        auto it = byValue.find(r.value);
        if (it != byValue.end() && score(it->second.module) >= score(r.path)) continue;
        // The module's parameters belong to its main output; its other outputs (an LSTM's h_n, c_n) own none,
        // so parameter counts are not repeated.
        byValue[r.value] = Candidate{r.value, r.name, r.type, r.name == r.path ? r.path : std::string(),
                                     position[r.value->node()]};
    }
    for (const auto& r : records)
        if (r.value && byValue.count(r.value)) calls[r.path].first = true;
    for (auto& [path, call] : calls)
        if (!call.first && call.second == "its output is not a tensor")
            for (const auto& r : records)
                if (r.path == path && r.value && !inTopBlock(r.value)) call.second = "its output is inside a branch";
    for (Node* n : g.nodes()) {
        if (!isOpOfInterest(n) || byValue.count(n->output())) continue;
        const std::string& o = owner[n];
        if (!o.empty() && isLeaf.count(o) && isLeaf[o]) continue; // internals of a leaf module
        const std::string op = n->kind().toUnqualString();
        byValue[n->output()] = Candidate{n->output(), (o.empty() ? "" : o + ".") + op, op, "", position[n]};
    }
    Value* result = g.outputs()[0];
    if (result->node()->kind() == prim::TupleConstruct && result->node()->inputs().size() > 0)
        result = result->node()->input(0);
    if (isTensor(result) && inTopBlock(result) && !byValue.count(result))
        byValue[result] = Candidate{result, "output", "output", "", position[result->node()]};

    std::vector<Candidate> cands;
    for (auto& [v, c] : byValue)
        cands.push_back(c);
    std::sort(cands.begin(), cands.end(),
              [](const Candidate& a, const Candidate& b) { return a.order < b.order; });
    // Unique names as torch.fx spells repeats: relu, relu_1, relu_2.
    std::map<std::string, int> seen;
    std::set<std::string> taken;
    for (auto& c : cands) {
        std::string name = c.name;
        int& k = seen[c.name];
        while (taken.count(name))
            name = c.name + "_" + std::to_string(++k);
        taken.insert(name);
        c.name = name;
    }
    return cands;
}

// Edges: the captured values (or the input, -1) each candidate's producer depends on through uncaptured ops.
// A loop layer is its list and, for the ops after it in the loop body, the value appended each iteration.
std::vector<Model::LayerInfo> connectCandidates(const std::vector<Candidate>& cands, Value* input) {
    std::vector<Model::LayerInfo> layers;
    std::unordered_map<Value*, int> index;
    for (size_t i = 0; i < cands.size(); ++i) {
        index[cands[i].value] = static_cast<int>(i);
        if (Value* each = appendedTo(cands[i].value)) index.emplace(each, static_cast<int>(i));
    }
    std::unordered_map<Value*, std::set<int>> memo;
    std::function<const std::set<int>&(Value*)> sources;
    // Lists are mutable: a list read by n holds what was appended to it before n (DenseNet's blocks append
    // each layer's output to the list the next layer concatenates).
    auto mutatesList = [](const Node* m) {
        static const std::set<std::string> ops = {"append", "insert", "extend", "_set_item", "add_"};
        return m->kind().is_aten() && ops.count(m->kind().toUnqualString()) > 0;
    };
    std::function<void(Node*, std::set<int>&)> nodeSources = [&](Node* n, std::set<int>& acc) {
        for (Value* in : n->inputs()) {
            const auto& s = sources(in);
            acc.insert(s.begin(), s.end());
            if (!in->type()->cast<c10::ListType>() || index.count(in)) continue;
            for (const auto& use : in->uses()) {
                Node* m = use.user;
                if (m == n || use.offset != 0 || !mutatesList(m) || !m->isBefore(n)) continue;
                for (size_t k = 1; k < m->inputs().size(); ++k) {
                    const auto& e = sources(m->input(k));
                    acc.insert(e.begin(), e.end());
                }
            }
        }
        for (Block* b : n->blocks())
            for (Node* inner : b->nodes())
                nodeSources(inner, acc);
        for (Block* b : n->blocks())
            for (Value* r : b->outputs()) {
                const auto& s = sources(r);
                acc.insert(s.begin(), s.end());
            }
    };
    sources = [&](Value* v) -> const std::set<int>& {
        auto it = memo.find(v);
        if (it != memo.end()) return it->second;
        std::set<int> acc;
        auto ci = index.find(v);
        if (ci != index.end()) {
            acc.insert(ci->second);
        } else if (v == input) {
            acc.insert(-1);
        } else if (v->node()->kind() == prim::Param) {
            // A loop body's carried value: its first iteration's value comes from the loop's inputs (body input
            // k >= 1 is loop input k + 1: trip count and condition come first).
            Node* loop = v->node()->owningBlock()->owningNode();
            const size_t k = v->offset();
            if (loop && loop->kind() == prim::Loop && k >= 1 && k + 1 < loop->inputs().size()) {
                memo[v] = {};
                const auto& s = sources(loop->input(k + 1));
                acc.insert(s.begin(), s.end());
            }
        } else {
            memo[v] = {}; // cycle guard (loops carry values back)
            nodeSources(v->node(), acc);
        }
        return memo[v] = std::move(acc);
    };
    for (const auto& c : cands) {
        std::set<int> deps;
        Value* each = appendedTo(c.value);
        nodeSources(each ? each->node() : c.value->node(), deps);
        deps.erase(index[c.value]); // a block applied k times feeds itself
        Model::LayerInfo info{c.name, c.type, c.module, {}, {}};
        info.inputs.assign(deps.begin(), deps.end());
        if (const Node* n = c.value->node(); n->kind().is_aten()) info.op = n->kind().toUnqualString();
        layers.push_back(std::move(info));
    }
    return layers;
}

// The graph returns (original output, captured values...) as one tuple.
void exposeCandidates(Graph& g, const std::vector<Candidate>& cands) {
    std::vector<Value*> values = {g.outputs()[0]};
    for (const auto& c : cands)
        values.push_back(c.value);
    Node* tuple = g.createTuple(values);
    tuple->insertBefore(g.return_node());
    g.eraseOutput(0);
    g.registerOutput(tuple->output());
    g.lint();
}

Expected<Surgery> buildCaptureGraph(const torch::jit::Module& module) {
    auto& forward = torch::jit::toGraphFunction(module.get_method("forward").function());
    Surgery out;
    out.graph = forward.graph()->copy();
    Graph& g = *out.graph;
    if (g.inputs().size() != 2 || !isTensor(g.inputs()[1]))
        return makeError(ErrorKind::Usage, "forward() takes " + std::to_string(g.inputs().size() - 1) +
                                               " arguments; capture needs exactly one tensor input");
    Value* self = g.inputs()[0];
    Value* input = g.inputs()[1];
    Owners owner;
    std::vector<Record> records;
    TS_TRY(inlineCalls(g, self, owner, records, out.calls));
    hoistRecords(g, records, out.calls);
    simplifyGraph(out.graph, module, self, owner, records, out.notes);
    const std::vector<Candidate> cands = collectCandidates(g, module, records, owner, out.calls);
    if (cands.empty()) return makeError(ErrorKind::Failed, "no tensor of forward() could be exposed");
    out.layers = connectCandidates(cands, input);
    exposeCandidates(g, cands);
    // TS_DUMP_CAPTURE_GRAPH=1 prints the whole capture graph (too long for a log line) to stderr.
    if (std::getenv("TS_DUMP_CAPTURE_GRAPH")) std::fprintf(stderr, "capture graph:\n%s\n", g.toString().c_str());
    return out;
}

// buildCaptureGraph with LibTorch's exceptions (a pass that throws) as errors.
Expected<Surgery> tryCaptureGraph(const torch::jit::Module& module) {
    try {
        return buildCaptureGraph(module);
    } catch (const std::exception& e) {
        return makeError(ErrorKind::Failed, oneLineReason(e.what()));
    }
}

// ---------------------------------------------------------------------------------------------------------
// 2b. Layer programs: forward()'s graph, inlined and specialised on the current flags, read as Program ops.

class ProgramReader {
  public:
    ProgramReader(const torch::jit::Module& module, Value* self) : m_module(module), m_self(self) {
        for (const auto& p : module.named_parameters(true))
            m_params.insert(p.name);
    }

    Status read(Graph& g, Value* input, Program& out) {
        m_ids[input] = 0;
        for (Node* n : g.nodes()) {
            bool anyTensorOut = false;
            for (Value* o : n->outputs())
                anyTensorOut = anyTensorOut || isTensorLike(o->type());
            // Scalar logic (shape checks, constants, attribute reads, lists) is read on demand by the ops
            // that take it as an argument; a branch with no outputs is a check that raises.
            if (!anyTensorOut) {
                if (n->kind() == prim::Loop || (n->kind() == prim::If && !n->outputs().empty() && !condition(n->input(0))))
                    return fail(n, "control flow on run-time values");
                continue;
            }
            if (n->kind() == prim::GetAttr || n->kind() == prim::Constant || n->kind() == prim::NumToTensor ||
                n->kind() == prim::ListConstruct || n->kind() == prim::unchecked_cast || n->kind() == c10::aten::append ||
                n->kind() == c10::aten::chunk ||
                (n->kind() == prim::If && condition(n->input(0))))
                continue; // parameters, buffers, lists, casts and decided branches are read where an op uses them
            if (n->kind() == prim::ListUnpack) {
                TS_TRY(readChunk(n, out));
                continue;
            }
            TS_TRY(readOp(n, out));
        }
        Value* result = g.outputs().size() == 1 ? g.outputs()[0] : nullptr;
        // A tuple's first element is the logits, as for forward() itself (GoogLeNet's outputs).
        if (result && result->node()->kind() == prim::TupleConstruct && result->node()->inputs().size() > 0)
            result = result->node()->input(0);
        if (result) result = resolve(result);
        if (!result || !m_ids.count(result)) return makeError(ErrorKind::Usage, "forward() does not return one tensor");
        out.output = m_ids[result];
        out.valueCount = m_next;
        return Status::ok();
    }

  private:
    Status fail(const Node* n, const std::string& why) const {
        return makeError(ErrorKind::Usage, std::string(n->kind().toQualString()) + ": " + why);
    }
    // The value `v` stands for: through type refinements (prim::unchecked_cast) and through branches whose
    // condition is known here (`if stride is None: stride = []`, which F.max_pool2d keeps when the module's
    // stride is a list built in the graph).
    Value* resolve(Value* v) const {
        for (int guard = 0; guard < 64; ++guard) {
            Node* n = v->node();
            if (n->kind() == prim::unchecked_cast) {
                v = n->input(0);
                continue;
            }
            if (n->kind() == prim::If) {
                const auto c = condition(n->input(0));
                if (!c) return v;
                size_t index = 0;
                while (index < n->outputs().size() && n->outputs()[index] != v)
                    ++index;
                Block* taken = n->blocks()[*c ? 0 : 1];
                if (index >= taken->outputs().size()) return v;
                v = taken->outputs()[index];
                continue;
            }
            return v;
        }
        return v;
    }
    // A branch condition known without running the graph: constants, `x is None` / `x is not None` for values
    // that cannot be None (lists built here, tensors, non-None constants), and their negation.
    std::optional<bool> condition(Value* c) const {
        c = resolve(c);
        auto k = torch::jit::toIValue(c);
        if (k && k->isBool()) return k->toBool();
        Node* n = c->node();
        if (n->kind() == c10::aten::__not__) {
            auto inner = condition(n->input(0));
            if (inner) return !*inner;
            return std::nullopt;
        }
        if ((n->kind() == c10::aten::__is__ || n->kind() == c10::aten::__isnot__) && n->inputs().size() == 2) {
            auto notNone = [&](Value* v) {
                v = resolve(v);
                if (v->node()->kind() == prim::ListConstruct || isTensor(v)) return true;
                auto cv = torch::jit::toIValue(v);
                return cv.has_value() && !cv->isNone();
            };
            auto isNoneConst = [&](Value* v) {
                auto cv = torch::jit::toIValue(resolve(v));
                return cv.has_value() && cv->isNone();
            };
            std::optional<bool> same;
            if ((isNoneConst(n->input(1)) && notNone(n->input(0))) || (isNoneConst(n->input(0)) && notNone(n->input(1))))
                same = false;
            if (!same) return std::nullopt;
            return n->kind() == c10::aten::__is__ ? *same : !*same;
        }
        return std::nullopt;
    }
    // (Not `return toIValue(v)`: IValue converts from c10::optional, so an absent value would become None.)
    std::optional<c10::IValue> constant(Value* v) const {
        v = resolve(v);
        auto c = torch::jit::toIValue(v);
        if (!c) return std::nullopt;
        return *c;
    }
    // True for x.size(0) (through int/tensor conversions, as traced graphs spell it).
    bool isBatch(Value* v) const {
        Node* n = v->node();
        if (n->kind() == prim::NumToTensor || n->kind() == c10::aten::Int || n->kind() == c10::aten::ScalarImplicit)
            return isBatch(n->input(0));
        if (n->kind() != c10::aten::size || n->inputs().size() != 2) return false;
        auto d = constant(n->input(1));
        return d && d->isInt() && d->toInt() == 0;
    }
    // A size read from a tensor at run time: x.size(d), the d-th of `a, b, c, d = x.size()`, and either divided
    // by a constant (`channels // groups`). {tensor, dimension, divisor}.
    struct SizeRef {
        Value* tensor;
        int64_t dim, divisor;
    };
    std::optional<SizeRef> sizeRef(Value* e) const {
        e = resolve(e);
        Node* n = e->node();
        if (n->kind() == prim::NumToTensor || n->kind() == c10::aten::Int || n->kind() == c10::aten::ScalarImplicit)
            return sizeRef(n->input(0));
        if (n->kind() == c10::aten::floordiv && n->inputs().size() == 2) {
            auto k = constant(n->input(1));
            auto inner = sizeRef(n->input(0));
            if (!k || !k->isInt() || k->toInt() <= 0 || !inner) return std::nullopt;
            inner->divisor *= k->toInt();
            return inner;
        }
        if (n->kind() == c10::aten::size && n->inputs().size() == 2 && isTensor(n->input(0))) {
            auto d = constant(n->input(1));
            if (!d || !d->isInt()) return std::nullopt;
            return SizeRef{n->input(0), d->toInt(), 1};
        }
        if (n->kind() == prim::ListUnpack) {
            Node* list = resolve(n->input(0))->node();
            if (list->kind() != c10::aten::size || list->inputs().size() != 1 || !isTensor(list->input(0)))
                return std::nullopt;
            for (size_t i = 0; i < n->outputs().size(); ++i)
                if (n->outputs()[i] == e) return SizeRef{list->input(0), static_cast<int64_t>(i), 1};
        }
        return std::nullopt;
    }
    // A reshape's size list into op.shape (constants, kBatch, kSizeOf with op.sizeOf and the tensors it reads
    // added to op.inputs).
    Status shapeArgument(const Node* node, Value* v, ProgramOp& op) {
        if (auto c = ints(v)) {
            op.shape = *c;
            return Status::ok();
        }
        Node* n = resolve(v)->node();
        if (n->kind() != prim::ListConstruct) return fail(node, "a size argument that is not a constant");
        op.shape.clear();
        for (Value* e : n->inputs()) {
            if (auto c = constant(e); c && c->isInt()) {
                op.shape.push_back(c->toInt());
                continue;
            }
            auto r = sizeRef(e);
            if (!r) return fail(node, "a size argument that is not a constant");
            auto id = tensorId(node, r->tensor);
            if (!id) return id.error();
            auto at = std::find(op.inputs.begin(), op.inputs.end(), *id);
            if (at == op.inputs.end()) at = op.inputs.insert(op.inputs.end(), *id);
            op.shape.push_back(ProgramOp::kSizeOf);
            op.sizeOf.push_back({static_cast<int64_t>(at - op.inputs.begin()), r->dim, r->divisor});
        }
        return Status::ok();
    }
    std::optional<std::vector<int64_t>> ints(Value* v) const {
        if (auto c = constant(v)) {
            if (c->isIntList()) return c->toIntVector();
            if (c->isInt()) return std::vector<int64_t>{c->toInt()};
            if (c->isTuple()) {
                std::vector<int64_t> out;
                for (const auto& e : c->toTupleRef().elements()) {
                    if (!e.isInt()) return std::nullopt;
                    out.push_back(e.toInt());
                }
                return out;
            }
            return std::nullopt;
        }
        Node* n = resolve(v)->node();
        if (n->kind() != prim::ListConstruct) return std::nullopt;
        std::vector<int64_t> out;
        for (Value* e : n->inputs()) {
            if (isBatch(e)) {
                out.push_back(ProgramOp::kBatch);
                continue;
            }
            auto c = constant(e);
            if (!c || !c->isInt()) return std::nullopt;
            out.push_back(c->toInt());
        }
        return out;
    }
    std::optional<double> number(Value* v) const {
        auto c = constant(v);
        if (c && c->isDouble()) return c->toDouble();
        if (c && c->isInt()) return static_cast<double>(c->toInt());
        return std::nullopt;
    }
    std::optional<bool> flag(Value* v) const {
        auto c = constant(v);
        if (c && c->isBool()) return c->toBool();
        return std::nullopt;
    }
    bool isNone(Value* v) const {
        auto c = constant(v);
        return c && c->isNone();
    }
    // The module attribute `v` reads ("layer1.0.conv1.weight"), or nothing.
    std::optional<std::string> attributePath(Value* v) const {
        Node* n = v->node();
        if (n->kind() != prim::GetAttr) return std::nullopt;
        auto owner = modulePath(n->input(0), m_self);
        if (!owner) return std::nullopt;
        return owner->empty() ? n->s(c10::attr::name) : *owner + "." + n->s(c10::attr::name);
    }
    // A weight or bias argument: a parameter's name, "" for None.
    Expected<std::string> parameter(const Node* n, Value* v) const {
        if (isNone(v)) return std::string();
        auto path = attributePath(v);
        if (!path || !m_params.count(*path))
            return fail(n, "a weight that is not one of the model's parameters");
        return *path;
    }
    Expected<torch::Tensor> buffer(const Node* n, Value* v) const {
        auto path = attributePath(v);
        if (!path) return fail(n, "running statistics that are not buffers");
        torch::jit::Module m = m_module;
        std::stringstream parts(*path);
        std::vector<std::string> names;
        for (std::string part; std::getline(parts, part, '.');)
            names.push_back(part);
        for (size_t i = 0; i + 1 < names.size(); ++i) {
            if (!m.hasattr(names[i]) || !m.attr(names[i]).isModule()) return fail(n, "a buffer path that is not a module");
            m = m.attr(names[i]).toModule();
        }
        if (!m.hasattr(names.back()) || !m.attr(names.back()).isTensor()) return fail(n, "a buffer that is not a tensor");
        return m.attr(names.back()).toTensor();
    }
    Expected<int> tensorId(const Node* n, Value* v) const {
        auto it = m_ids.find(resolve(v));
        if (it == m_ids.end()) return fail(n, "an input computed outside the supported ops");
        return it->second;
    }

    // An op's weight and bias arguments (inputs `wi` and `bi`: parameters or None) into op.weight / op.bias.
    Status weightAndBias(Node* n, size_t wi, size_t bi, ProgramOp& op) const {
        auto w = parameter(n, n->input(wi));
        if (!w) return w.error();
        auto b = parameter(n, n->input(bi));
        if (!b) return b.error();
        op.weight = *w;
        op.bias = *b;
        return Status::ok();
    }

    // `x1, x2 = x.chunk(2, dim=1)`: one op per part.
    Status readChunk(Node* n, Program& out) {
        Node* chunk = resolve(n->input(0))->node();
        if (chunk->kind() != c10::aten::chunk || chunk->inputs().size() != 3)
            return fail(n, "a list of tensors taken apart that is not a chunk");
        auto x = tensorId(n, chunk->input(0));
        if (!x) return x.error();
        auto parts = constant(chunk->input(1));
        auto dim = constant(chunk->input(2));
        if (!parts || !parts->isInt() || !dim || !dim->isInt() || parts->toInt() != int64_t(n->outputs().size()))
            return fail(n, "a chunk into a number of parts that is not a constant");
        for (size_t i = 0; i < n->outputs().size(); ++i) {
            ProgramOp op;
            op.kind = ProgramOp::Kind::ChunkPart;
            op.where = "chunk";
            op.inputs = {*x};
            op.groups = parts->toInt();
            op.dim = dim->toInt();
            op.endDim = static_cast<int64_t>(i);
            op.output = m_next++;
            m_ids[n->outputs()[i]] = op.output;
            out.ops.push_back(std::move(op));
        }
        return Status::ok();
    }

    // Reads one node as a layer op: the op's kind and arguments by group, then its output's id.
    Status readOp(Node* n, Program& out) {
        using K = ProgramOp::Kind;
        if (!n->kind().is_aten() || n->outputs().size() != 1)
            return fail(n, "not a layer op the batched path knows");
        std::string name = n->kind().toUnqualString();
        const bool inplace = name.size() > 1 && name.back() == '_' && name.front() != '_';
        if (inplace) {
            name.pop_back();
            // The mutated tensor must not be read after this op (it would see the new values).
            for (const auto& use : n->input(0)->uses())
                if (use.user != n && n->isBefore(use.user)) return fail(n, "an in-place op on a tensor read later");
        }
        ProgramOp op;
        op.where = name;
        auto first = tensorId(n, n->input(0));
        // cat reads a list; mul may read a parameter first (layer scale): both look at their inputs themselves.
        if (name != "cat" && name != "mul" && !first) return first.error();
        if (first && name != "cat") op.inputs = {*first};
        bool known = false;
        for (auto group : {&ProgramReader::readParameterLayer, &ProgramReader::readActivation,
                           &ProgramReader::readPooling, &ProgramReader::readJoin, &ProgramReader::readShapeOp}) {
            TS_TRY((this->*group)(n, name, op, known));
            if (known) break;
        }
        if (!known) return fail(n, "not a layer op the batched path knows");
        if (op.kind != K::Cat && op.kind != K::Add && op.kind != K::Mul && op.kind != K::Reshape &&
            op.inputs.size() != 1)
            return fail(n, "unexpected inputs");
        op.output = m_next++;
        m_ids[n->output()] = op.output;
        out.ops.push_back(std::move(op));
        return Status::ok();
    }

    // Constant arguments of node n, or a one-line failure naming the op.
    Status needInts(Node* n, size_t i, std::vector<int64_t>& dst) {
        auto v = ints(n->input(i));
        if (!v) return fail(n, "a size argument that is not a constant");
        dst = *v;
        return Status::ok();
    }
    Status needNumber(Node* n, size_t i, double& dst) {
        auto v = number(n->input(i));
        if (!v) return fail(n, "a number argument that is not a constant");
        dst = *v;
        return Status::ok();
    }

    // Conv2d, BatchNorm (evaluation mode), Linear, LayerNorm: the ops with a weight and a bias.
    Status readParameterLayer(Node* n, const std::string& name, ProgramOp& op, bool& known) {
        using K = ProgramOp::Kind;
        auto in = [&](size_t i) { return n->input(i); };
        known = true;
        if (name == "conv2d" || name == "_convolution") {
            op.kind = K::Conv2d;
            TS_TRY(weightAndBias(n, 1, 2, op));
            op.where = op.weight.substr(0, op.weight.rfind('.'));
            TS_TRY(needInts(n, 3, op.stride));
            TS_TRY(needInts(n, 4, op.padding));
            TS_TRY(needInts(n, 5, op.dilation));
            double groups = 1;
            if (name == "_convolution") {
                if (n->inputs().size() < 9 || flag(in(6)).value_or(true)) return fail(n, "a transposed convolution");
                TS_TRY(needNumber(n, 8, groups));
            } else {
                TS_TRY(needNumber(n, 6, groups));
            }
            op.groups = static_cast<int64_t>(groups);
            if (op.stride.size() != 2 || op.padding.size() != 2 || op.dilation.size() != 2)
                return fail(n, "a convolution that is not 2D");
        } else if (name == "batch_norm") {
            op.kind = K::BatchNorm;
            TS_TRY(weightAndBias(n, 1, 2, op));
            if (flag(in(5)).value_or(true)) return fail(n, "batch statistics (the module is in training mode)");
            auto mean = buffer(n, in(3));
            if (!mean) return mean.error();
            auto var = buffer(n, in(4));
            if (!var) return var.error();
            op.runningMean = *mean;
            op.runningVar = *var;
            op.runningMeanName = attributePath(in(3)).value_or("");
            op.runningVarName = attributePath(in(4)).value_or("");
            TS_TRY(needNumber(n, 7, op.eps));
            op.where = op.weight.empty() ? "batch_norm" : op.weight.substr(0, op.weight.rfind('.'));
        } else if (name == "linear") {
            op.kind = K::Linear;
            TS_TRY(weightAndBias(n, 1, 2, op));
            op.where = op.weight.substr(0, op.weight.rfind('.'));
        } else if (name == "layer_norm") {
            op.kind = K::LayerNorm;
            TS_TRY(needInts(n, 1, op.shape));
            TS_TRY(weightAndBias(n, 2, 3, op));
            TS_TRY(needNumber(n, 4, op.eps));
            op.where = op.weight.empty() ? "layer_norm" : op.weight.substr(0, op.weight.rfind('.'));
        } else {
            known = false;
        }
        return Status::ok();
    }

    // Element-wise activations.
    Status readActivation(Node* n, const std::string& name, ProgramOp& op, bool& known) {
        using K = ProgramOp::Kind;
        known = true;
        if (name == "relu" || name == "sigmoid" || name == "tanh" || name == "silu" || name == "hardswish" ||
            name == "hardsigmoid") {
            op.kind = name == "relu"        ? K::Relu
                      : name == "sigmoid"   ? K::Sigmoid
                      : name == "tanh"      ? K::Tanh
                      : name == "silu"      ? K::Silu
                      : name == "hardswish" ? K::Hardswish
                                            : K::Hardsigmoid;
        } else if (name == "leaky_relu") {
            op.kind = K::LeakyRelu;
            TS_TRY(needNumber(n, 1, op.alpha));
        } else if (name == "hardtanh") {
            op.kind = K::Hardtanh;
            TS_TRY(needNumber(n, 1, op.lo));
            TS_TRY(needNumber(n, 2, op.hi));
        } else if (name == "gelu") {
            op.kind = K::Gelu;
            if (n->inputs().size() > 1) {
                auto c = constant(n->input(1));
                if (!c || !c->isString()) return fail(n, "a gelu approximation that is not a constant");
                op.approximate = c->toStringRef();
            }
        } else {
            known = false;
        }
        return Status::ok();
    }

    // Max and average pooling, adaptive average pooling, means over dimensions.
    Status readPooling(Node* n, const std::string& name, ProgramOp& op, bool& known) {
        using K = ProgramOp::Kind;
        auto in = [&](size_t i) { return n->input(i); };
        const size_t argc = n->inputs().size();
        known = true;
        if (name == "max_pool2d" || name == "avg_pool2d") {
            op.kind = name == "max_pool2d" ? K::MaxPool2d : K::AvgPool2d;
            TS_TRY(needInts(n, 1, op.kernel));
            TS_TRY(needInts(n, 2, op.stride));
            TS_TRY(needInts(n, 3, op.padding));
            if (op.stride.empty()) op.stride = op.kernel;
            if (op.kind == K::MaxPool2d) {
                TS_TRY(needInts(n, 4, op.dilation));
                op.ceilMode = flag(in(5)).value_or(false);
            } else {
                op.ceilMode = flag(in(4)).value_or(false);
                op.countIncludePad = flag(in(5)).value_or(true);
                if (argc > 6 && !isNone(in(6))) return fail(n, "a divisor override");
            }
        } else if (name == "adaptive_avg_pool2d") {
            op.kind = K::AdaptiveAvgPool2d;
            TS_TRY(needInts(n, 1, op.shape));
        } else if (name == "mean") {
            op.kind = K::Mean;
            if (argc < 3) return fail(n, "a mean over every element");
            TS_TRY(needInts(n, 1, op.shape));
            op.keepdim = flag(in(2)).value_or(false);
            if (argc > 3 && !isNone(in(3))) return fail(n, "a mean with a dtype");
        } else {
            known = false;
        }
        return Status::ok();
    }

    // Ops that join values: residual adds, products (gates, layer scale) and concatenations.
    Status readJoin(Node* n, const std::string& name, ProgramOp& op, bool& known) {
        using K = ProgramOp::Kind;
        auto in = [&](size_t i) { return n->input(i); };
        const size_t argc = n->inputs().size();
        known = true;
        if (name == "add") {
            op.kind = K::Add;
            if (argc < 2 || !isTensor(in(1))) return fail(n, "an add of a number");
            auto second = tensorId(n, in(1));
            if (!second) return second.error();
            op.inputs.push_back(*second);
            if (argc > 2) TS_TRY(needNumber(n, 2, op.alpha));
        } else if (name == "mul") {
            if (argc != 2 || !isTensor(in(1))) return fail(n, "a multiplication by a number");
            // A parameter times an activation (either order) scales it; two activations multiply.
            auto a = attributePath(resolve(in(0))), b = attributePath(resolve(in(1)));
            if ((a && m_params.count(*a)) || (b && m_params.count(*b))) {
                const bool firstIsParam = a && m_params.count(*a);
                auto x = tensorId(n, in(firstIsParam ? 1 : 0));
                if (!x) return x.error();
                op.kind = K::Scale;
                op.inputs = {*x};
                op.weight = firstIsParam ? *a : *b;
                op.where = op.weight;
            } else {
                op.kind = K::Mul;
                auto x = tensorId(n, in(0));
                if (!x) return x.error();
                auto second = tensorId(n, in(1));
                if (!second) return second.error();
                op.inputs = {*x, *second};
            }
        } else if (name == "cat") {
            op.kind = K::Cat;
            Node* list = resolve(in(0))->node();
            if (list->kind() != prim::ListConstruct) return fail(n, "a cat of a list built elsewhere");
            // The list as it is at this cat: its elements, then what aten::append added before here (DenseNet's
            // blocks grow one list of features; each layer concatenates it as it is then).
            std::vector<Value*> elements(list->inputs().begin(), list->inputs().end());
            std::vector<Node*> appends;
            for (const auto& use : list->output()->uses()) {
                Node* u = use.user;
                if (u == n || u->kind() == c10::aten::cat || u->kind() == prim::unchecked_cast) continue;
                if (u->kind() != c10::aten::append || use.offset != 0 || u->owningBlock() != n->owningBlock())
                    return fail(n, "a cat of a list changed by " + std::string(u->kind().toQualString()));
                if (u->isBefore(n)) appends.push_back(u);
            }
            std::sort(appends.begin(), appends.end(), [](Node* a, Node* b) { return a->isBefore(b); });
            for (Node* a : appends)
                elements.push_back(a->input(1));
            for (Value* e : elements) {
                auto id = tensorId(n, e);
                if (!id) return id.error();
                op.inputs.push_back(*id);
            }
            double dim = 0;
            TS_TRY(needNumber(n, 1, dim));
            op.dim = static_cast<int64_t>(dim);
        } else {
            known = false;
        }
        return Status::ok();
    }

    // Ops that only move or keep values: permute, flatten, view/reshape, transpose, dropout in evaluation mode,
    // contiguous.
    Status readShapeOp(Node* n, const std::string& name, ProgramOp& op, bool& known) {
        using K = ProgramOp::Kind;
        known = true;
        if (name == "permute") {
            op.kind = K::Permute;
            TS_TRY(needInts(n, 1, op.shape));
        } else if (name == "flatten" || name == "transpose") {
            op.kind = name == "flatten" ? K::Flatten : K::Transpose;
            double a = 0, b = 0;
            TS_TRY(needNumber(n, 1, a));
            TS_TRY(needNumber(n, 2, b));
            op.dim = static_cast<int64_t>(a);
            op.endDim = static_cast<int64_t>(b);
        } else if (name == "view" || name == "reshape") {
            op.kind = K::Reshape;
            TS_TRY(shapeArgument(n, n->input(1), op));
        } else if (name == "dropout" || name == "feature_dropout" || name == "alpha_dropout") {
            op.kind = K::Identity;
            if (flag(n->input(2)).value_or(true)) return fail(n, "dropout in training mode");
        } else if (name == "contiguous" || name == "detach") {
            op.kind = K::Identity;
        } else {
            known = false;
        }
        return Status::ok();
    }

    const torch::jit::Module& m_module;
    Value* m_self;
    std::set<std::string> m_params;
    std::unordered_map<Value*, int> m_ids;
    int m_next = 1;
};

// forward() as a Program, specialised on the module's current training flags.
Expected<Program> buildProgram(const torch::jit::Module& module) {
    auto& forward = torch::jit::toGraphFunction(module.get_method("forward").function());
    auto graph = forward.graph()->copy();
    Graph& g = *graph;
    if (g.inputs().size() != 2 || !isTensor(g.inputs()[1]))
        return makeError(ErrorKind::Usage, "forward() does not take exactly one tensor");
    Value* self = g.inputs()[0];
    Owners owner;
    std::vector<Record> records;
    Calls calls;
    std::vector<std::string> notes;
    TS_TRY(inlineCalls(g, self, owner, records, calls));
    records.clear();
    simplifyGraph(graph, module, self, owner, records, notes);
    // Tuples built and taken apart inside forward() (GoogLeNet's _forward returns three values) disappear.
    torch::jit::LowerSimpleTuples(graph);
    // TS_DUMP_PROGRAM_GRAPH=1 prints the graph the program is read from to stderr.
    if (std::getenv("TS_DUMP_PROGRAM_GRAPH")) std::fprintf(stderr, "program graph:\n%s\n", g.toString().c_str());
    Program program;
    ProgramReader reader(module, self);
    TS_TRY(reader.read(*graph, graph->inputs()[1], program));
    return program;
}

// ---------------------------------------------------------------------------------------------------------
// 3. ScriptModel.

torch::Tensor outputTensor(const c10::IValue& v, const std::string& model) {
    if (v.isTensor()) return v.toTensor();
    if (v.isTuple() && !v.toTupleRef().elements().empty() && v.toTupleRef().elements()[0].isTensor())
        return v.toTupleRef().elements()[0].toTensor();
    if (v.isGenericDict()) {
        // torchvision's segmentation models return {"out": ..., "aux": ...}; Hugging Face-style models
        // {"logits": ...}. Otherwise a dict of one tensor is that tensor.
        const auto dict = v.toGenericDict();
        std::string keys;
        std::optional<torch::Tensor> only;
        int tensors = 0;
        for (const auto& entry : dict) {
            const bool named = entry.key().isString();
            const std::string key =
                named ? entry.key().toStringRef() : "<" + std::string(entry.key().tagKind()) + ">";
            if (entry.value().isTensor()) {
                if (named && (key == "out" || key == "logits")) return entry.value().toTensor();
                only = entry.value().toTensor();
                ++tensors;
            }
            keys += (keys.empty() ? "" : ", ") + key;
        }
        if (tensors == 1) return *only;
        TORCH_CHECK(false, "model '", model, "' returned a dict with keys ", keys.empty() ? "(none)" : keys,
                    ": tensorscape takes its 'out' or 'logits' tensor, or its only tensor");
    }
    TORCH_CHECK(false, "model '", model, "' returned ", v.tagKind(), ", not a tensor of logits");
    return {};
}

// A loop layer's iterations (the list hoist() collects) as one [N, iterations, ...] tensor, with the parts that
// gradients are collected from. Iterations whose shapes differ keep the last one only; none ran: nothing.
std::optional<std::pair<torch::Tensor, ForwardCapture::LoopParts>> stackIterations(
    c10::ArrayRef<c10::IValue> list, const std::function<int(const torch::Tensor&)>& batchDimOf) {
    ForwardCapture::LoopParts parts;
    for (const auto& item : list) {
        if (!item.isTensor()) continue; // a branch inside the loop that did not run in this iteration
        const torch::Tensor& t = item.toTensor();
        const int dim = batchDimOf(t);
        if (dim < 0) continue;
        parts.tensors.push_back(t);
        parts.batchDims.push_back(dim);
    }
    if (parts.tensors.empty()) return std::nullopt;
    std::vector<torch::Tensor> batchFirstParts;
    for (size_t k = 0; k < parts.tensors.size(); ++k) {
        batchFirstParts.push_back(batchFirst(parts.tensors[k], parts.batchDims[k]).detach());
        if (!batchFirstParts.back().sizes().equals(batchFirstParts.front().sizes())) {
            ForwardCapture::LoopParts last{{parts.tensors.back()}, {parts.batchDims.back()}};
            return std::make_pair(batchFirstParts.back().unsqueeze(1).contiguous(), std::move(last));
        }
    }
    return std::make_pair(torch::stack(batchFirstParts, 1), std::move(parts));
}

// The capture graph with captured value `index` (its layers' order) replaced by a new last graph input expanded
// to the value's shape: forward() with one layer's output replaced. Every use after the value's definition sees
// the replacement (uses in nested blocks included); the captured tuple then holds it too.
Expected<std::shared_ptr<Graph>> replacingGraph(Graph& capture, size_t index) {
    std::shared_ptr<Graph> g = capture.copy();
    Node* tuple = g->return_node()->input(0)->node();
    if (tuple->kind() != prim::TupleConstruct || index + 1 >= tuple->inputs().size())
        return makeError(ErrorKind::Failed, "the capture graph does not return its layers as a tuple");
    Value* v = tuple->input(index + 1);
    if (!v->type()->cast<c10::TensorType>())
        return makeError(ErrorKind::Usage, "its output is not one tensor (a layer computed inside a loop or a branch)");
    Value* replacement = g->addInput("replacement")->setType(c10::TensorType::get());
    Node* expand = g->create(c10::aten::expand_as, {replacement, v});
    expand->output()->setType(v->type());
    expand->insertAfter(v->node());
    v->replaceAllUsesAfterNodeWith(expand, expand->output());
    g->lint();
    return g;
}

class ScriptModel final : public Model {
  public:
    ScriptModel(torch::jit::Module module, std::string name)
        : m_module(std::move(module)), m_name(std::move(name)) {}

    // The capture graph is specialised on the modules' `training` flags (branches on them fold away), so one
    // is built per set of flags the model is run with and kept: usually two, train and eval.
    void setCapture(Surgery s) {
        Built& b = m_cache[trainingKey()];
        b.layers = std::move(s.layers);
        b.calls = std::move(s.calls);
        b.fn = std::make_unique<torch::jit::GraphFunction>(
            "forward_capture", std::move(s.graph), nullptr, torch::jit::ExecutorExecutionMode::SIMPLE);
        select();
    }
    void dropCapture() {
        m_cache.clear();
        m_disabled = true;
        select();
    }

    std::string name() const override { return m_name; }

    torch::Tensor forward(const torch::Tensor& input) override {
        return outputTensor(m_module.forward({input}), m_name);
    }

    ForwardCapture forwardCapture(const torch::Tensor& input) override {
        ForwardCapture out;
        if (!m_capture) {
            out.output = forward(input);
            out.activations.emplace_back("output", out.output);
            return out;
        }
        torch::jit::Stack stack{m_module._ivalue(), input};
        m_capture->run(stack);
        auto tuple = stack.back().toTuple();
        const auto& e = tuple->elements();
        out.output = outputTensor(e[0], m_name);
        out.activations.reserve(m_layers->size());
        const int64_t batch = input.dim() > 0 ? input.size(0) : 1;
        // Batch first, or second for sequence-first tensors ([T, N, H], an RNN's [layers, N, H]); -1: neither.
        auto batchDimOf = [batch](const torch::Tensor& t) {
            return t.dim() >= 1 && t.size(0) == batch ? 0 : t.dim() >= 2 && t.size(1) == batch ? 1 : -1;
        };
        for (size_t i = 0; i < m_layers->size() && i + 1 < e.size(); ++i) {
            const c10::IValue& v = e[i + 1];
            if (v.isList()) {
                if (auto loop = stackIterations(v.toListRef(), batchDimOf)) {
                    out.activations.emplace_back((*m_layers)[i].name, loop->first);
                    out.batchDims.push_back(0);
                    out.parts.resize(out.activations.size());
                    out.parts.back() = std::move(loop->second);
                }
                continue;
            }
            if (!v.isTensor()) continue; // a branch that did not run this time
            const torch::Tensor& t = v.toTensor();
            const int dim = batchDimOf(t);
            if (dim < 0) continue;
            out.activations.emplace_back((*m_layers)[i].name, t);
            out.batchDims.push_back(dim);
        }
        return out;
    }

    Expected<torch::Tensor> callModule(const std::string& path, const torch::Tensor& input,
                                       const NamedTensors& overrides) override {
        return withOverrides(path, overrides, [&](torch::jit::Module& sub) { return sub.forward({input}); });
    }

    Expected<torch::Tensor> forwardOverriding(const std::string& path, const NamedTensors& overrides,
                                              const torch::Tensor& input) override {
        return withOverrides(path, overrides, [&](torch::jit::Module&) { return m_module.forward({input}); });
    }

    Expected<torch::Tensor> forwardReplacing(const std::string& layer, const torch::Tensor& value,
                                             const torch::Tensor& input) override {
        if (!m_capture)
            return makeError(ErrorKind::Usage, "model '" + m_name + "' has no capture graph to replace '" + layer + "' in");
        size_t index = 0;
        while (index < m_layers->size() && (*m_layers)[index].name != layer)
            ++index;
        if (index == m_layers->size()) return makeError(ErrorKind::Usage, "model '" + m_name + "' has no layer '" + layer + "'");
        try {
            auto& fn = m_cache[trainingKey()].replacing[layer];
            if (!fn) {
                auto graph = replacingGraph(*m_capture->graph(), index);
                if (!graph)
                    return makeError(ErrorKind::Usage, "layer '" + layer + "' of '" + m_name + "': " + graph.error().message);
                fn = std::make_unique<torch::jit::GraphFunction>("forward_replacing", std::move(graph).value(), nullptr,
                                                                 torch::jit::ExecutorExecutionMode::SIMPLE);
            }
            torch::jit::Stack stack{m_module._ivalue(), input, value};
            fn->run(stack);
            return outputTensor(stack.back().toTuple()->elements()[0], m_name);
        } catch (const std::exception& e) {
            return makeError(ErrorKind::Usage, "layer '" + layer + "' of '" + m_name + "': " + oneLineReason(e.what()));
        }
    }

    CaptureCoverage coverage() override {
        CaptureCoverage c;
        if (!m_capture) {
            for (const auto& p : m_module.named_parameters(true))
                c.params += p.value.numel();
            c.missing.push_back("every layer: the capture graph could not be built");
            return c;
        }
        std::set<std::string> missing;
        for (const auto& p : m_module.named_parameters(true)) {
            // The nearest module on the parameter's path that forward() calls decides who owns it.
            std::string path = p.name;
            bool found = false, captured = false, rootOwn = p.name.find('.') == std::string::npos;
            while (!rootOwn) {
                const size_t dot = path.rfind('.');
                if (dot == std::string::npos) break; // no module on the path is called
                path = path.substr(0, dot);
                auto it = m_calls->find(path);
                if (it == m_calls->end()) continue;
                found = true;
                captured = it->second.first;
                if (!captured) missing.insert("'" + path + "' (" + it->second.second + ")");
                break;
            }
            const int64_t n = p.value.numel();
            if (!found && !rootOwn) {
                c.unused += n;
                continue;
            }
            c.params += n;
            // Parameters forward() reads itself (a class token) belong to the model, whose output is captured.
            if (captured || rootOwn) c.captured += n;
        }
        c.missing.assign(missing.begin(), missing.end());
        return c;
    }

    NamedTensors namedParameters() override {
        NamedTensors out;
        for (const auto& p : m_module.named_parameters(true))
            out.emplace_back(p.name, p.value);
        return out;
    }

    NamedTensors namedBuffers() override {
        NamedTensors out;
        for (const auto& b : m_module.named_buffers(true))
            out.emplace_back(b.name, b.value);
        return out;
    }

    void setTraining(bool on) override {
        m_module.train(on);
        if (m_disabled) return;
        auto key = trainingKey();
        if (!m_cache.count(key)) {
            Expected<Surgery> surgery = tryCaptureGraph(m_module);
            if (!surgery) {
                TS_LOG_WARN("model '%s': no capture graph in %s mode (%s); capturing the output only",
                            m_name.c_str(), on ? "training" : "evaluation", surgery.error().message.c_str());
                dropCapture();
                return;
            }
            setCapture(std::move(surgery.value()));
        }
        select();
    }
    bool isTraining() const override { return m_module.is_training(); }
    bool outputOnly() const override { return !m_capture; }
    torch::Device device() const override { return m_device; }
    // Parameters and buffers move in place (the module's slots); the capture graphs read them through
    // GetAttr, so they follow. Tensor constants folded into a scripted graph stay where they were made.
    Status toDevice(const torch::Device& target) override {
        try {
            m_module.to(target);
        } catch (const std::exception& e) {
            return makeError(ErrorKind::Environment,
                             "model '" + m_name + "' cannot move to " + target.str() + ": " + oneLineReason(e.what()));
        }
        m_device = target;
        return Status::ok();
    }

    Expected<Program> inferenceProgram() override {
        try {
            return buildProgram(m_module);
        } catch (const std::exception& e) {
            return makeError(ErrorKind::Failed, oneLineReason(e.what()));
        }
    }

    std::vector<LayerInfo> layerInfo() override {
        if (!m_capture) return {LayerInfo{"output", "output", "", {-1}}};
        return *m_layers;
    }

  private:
    // Runs `fn` while the attributes of module `path` named in `overrides` hold the given tensors. The slots are
    // swapped, not the tensors' contents, so graphs that saved the parameters stay valid; always restored.
    template <class Fn>
    Expected<torch::Tensor> withOverrides(const std::string& path, const NamedTensors& overrides, Fn&& fn) {
        std::optional<torch::jit::Module> sub;
        for (const auto& m : m_module.named_modules())
            if (m.name == path) sub = m.value;
        if (!sub || path.empty())
            return makeError(ErrorKind::Usage, "model '" + m_name + "' has no module '" + path + "'");
        std::vector<std::pair<std::string, c10::IValue>> saved;
        auto restore = [&] {
            for (auto it = saved.rbegin(); it != saved.rend(); ++it)
                sub->setattr(it->first, it->second);
        };
        try {
            for (const auto& [key, t] : overrides) {
                if (!sub->hasattr(key) || !sub->attr(key).isTensor())
                    throw std::runtime_error("module '" + path + "' has no tensor '" + key + "'");
                saved.emplace_back(key, sub->attr(key));
                sub->setattr(key, t);
            }
            torch::Tensor out = outputTensor(fn(*sub), m_name);
            restore();
            return out;
        } catch (const std::exception& e) {
            restore();
            return makeError(ErrorKind::Usage, "module '" + path + "' of '" + m_name + "': " + oneLineReason(e.what()));
        }
    }

    struct Built {
        std::unique_ptr<torch::jit::GraphFunction> fn;
        std::vector<LayerInfo> layers;
        std::map<std::string, std::pair<bool, std::string>> calls;
        // forwardReplacing's graphs, made on first use: the capture graph with one layer's value replaced.
        std::map<std::string, std::unique_ptr<torch::jit::GraphFunction>> replacing;
    };
    std::vector<bool> trainingKey() const {
        std::vector<bool> key;
        for (const auto& m : m_module.modules())
            key.push_back(m.is_training());
        return key;
    }
    // Points m_capture/m_layers/m_calls at the graph for the current flags (none when not built).
    void select() {
        auto it = m_disabled ? m_cache.end() : m_cache.find(trainingKey());
        m_capture = it == m_cache.end() ? nullptr : it->second.fn.get();
        m_layers = it == m_cache.end() ? nullptr : &it->second.layers;
        m_calls = it == m_cache.end() ? nullptr : &it->second.calls;
    }

    torch::jit::Module m_module;
    std::string m_name;
    torch::Device m_device = torch::kCPU;
    std::map<std::vector<bool>, Built> m_cache;
    bool m_disabled = false;
    torch::jit::GraphFunction* m_capture = nullptr;
    const std::vector<LayerInfo>* m_layers = nullptr;
    const std::map<std::string, std::pair<bool, std::string>>* m_calls = nullptr;
};

// Runs forward() and the capture graph on a seeded random batch of two and compares the outputs.
Status probe(ScriptModel& model, const std::vector<int64_t>& inputShape) {
    std::vector<int64_t> shape = {2};
    shape.insert(shape.end(), inputShape.begin(), inputShape.end());
    torch::NoGradGuard noGrad;
    const bool wasTraining = model.isTraining();
    model.setTraining(false);
    auto gen = at::detail::createCPUGenerator(20240611);
    const torch::Tensor x = at::rand(shape, gen);
    Status status;
    torch::Tensor want;
    try {
        want = model.forward(x);
    } catch (const std::exception&) {
        // forward() itself fails on this shape: an input problem that the caller reports (describeNetwork),
        // not a reason to distrust the capture graph.
        model.setTraining(wasTraining);
        return Status::ok();
    }
    try {
        const ForwardCapture got = model.forwardCapture(x);
        if (!got.output.sizes().equals(want.sizes()) || !torch::allclose(got.output, want, 1e-4, 1e-5))
            status = makeError(ErrorKind::Failed, "the capture graph's output differs from forward()'s");
    } catch (const std::exception& e) {
        std::string what = e.what();
        status = makeError(ErrorKind::Failed, oneLineReason(what));
    }
    model.setTraining(wasTraining);
    return status;
}

} // namespace

// ---------------------------------------------------------------------------------------------------------
// 4. loadScriptModel.

Expected<std::unique_ptr<Model>> loadScriptModel(const std::string& path,
                                                 const std::vector<int64_t>& inputShape) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        return makeError(ErrorKind::Usage,
                         "model file '" + path +
                             "' not found (expected a TorchScript .pt file or builtin:mlp / "
                             "builtin:cnn)");
    torch::jit::Module module;
    try {
        module = torch::jit::load(path, torch::kCPU);
    } catch (const std::exception& e) {
        std::string what = e.what();
        // The usual mistakes: a torch.save file (a state_dict or a pickled module: a zip without
        // TorchScript's constants.pkl, or the legacy pickle format), an ONNX export. Each gets the fix.
        const std::string fix = "save the model with torch.jit.script(model).save(path) (or torch.jit.trace)";
        std::string ext = std::filesystem::path(path).extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(),
                       [](unsigned char c) { return char(std::tolower(c)); });
        char head[2] = {0, 0};
        if (std::ifstream f(path, std::ios::binary); f) f.read(head, 2);
        std::string cause;
        if (what.find("constants.pkl") != std::string::npos)
            cause = "' was written by torch.save (a state_dict or a pickled nn.Module), not TorchScript: ";
        else if (static_cast<unsigned char>(head[0]) == 0x80 && head[1] >= 2 && head[1] <= 5)
            cause = "' is a legacy torch.save pickle, not TorchScript: ";
        else if (ext == ".onnx")
            cause = "' is an ONNX file; tensorscape reads TorchScript: ";
        if (!cause.empty()) return makeError(ErrorKind::Usage, "model file '" + path + cause + fix);
        return makeError(ErrorKind::Usage,
                         "model file '" + path +
                             "' is not a loadable TorchScript archive: " + oneLineReason(what) + "; " + fix);
    }
    if (!module.find_method("forward"))
        return makeError(ErrorKind::Usage, "model file '" + path + "' has no forward() method");
    auto model = std::make_unique<ScriptModel>(module, std::filesystem::path(path).stem().string());

    Expected<Surgery> surgery = tryCaptureGraph(module);
    if (!surgery) {
        TS_LOG_WARN("model '%s': intermediate activations cannot be exposed (%s); capturing the output only",
                    path.c_str(), surgery.error().message.c_str());
        model->dropCapture(); // for every training mode: one warning is enough
        return std::unique_ptr<Model>(std::move(model));
    }
    for (const auto& note : surgery->notes)
        TS_LOG_WARN("model '%s': %s", path.c_str(), note.c_str());
    model->setCapture(std::move(surgery.value()));
    if (!inputShape.empty()) {
        Status ok = probe(*model, inputShape);
        if (!ok) {
            TS_LOG_WARN("model '%s': capture graph check failed (%s); capturing the output only",
                        path.c_str(), ok.message().c_str());
            model->dropCapture();
        }
    }
    return std::unique_ptr<Model>(std::move(model));
}

} // namespace ts::capture::detail
