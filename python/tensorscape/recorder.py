"""Recording a PyTorch training run: forward hooks, statistics at recorded steps, commits to the run store."""

import atexit
import numbers
import os
import queue
import sys
import threading
import weakref

import torch

from . import reduce as R
from . import store

_MESSAGES_SEEN = set()


def _say(msg, once_key=None):
    """One line on stderr, prefixed 'tensorscape: ' (once per once_key when given)."""
    if once_key is not None:
        if once_key in _MESSAGES_SEEN:
            return
        _MESSAGES_SEEN.add(once_key)
    print("tensorscape: " + msg, file=sys.stderr, flush=True)


def _flatten_outputs(output, out):
    """Floating-point tensors with a batch dimension in a module's output, depth first (tuples, lists,
    dict values); other values are skipped."""
    if torch.is_tensor(output):
        if output.is_floating_point() and output.dim() >= 1:
            out.append(output)
    elif isinstance(output, (tuple, list)):
        for o in output:
            _flatten_outputs(o, out)
    elif isinstance(output, dict):
        for o in output.values():
            _flatten_outputs(o, out)
    return out


def _batch_dims(module, output, tensors):
    """Per tensor of _flatten_outputs(output), the dimension that holds the batch: 0, except for the recurrent
    modules (nn.RNN, nn.LSTM, nn.GRU) on batched input, whose output is [T, N, H] unless batch_first and whose
    h_n / c_n are [layers * directions, N, H] either way. Statistics run over the batch, so these are recorded
    batch first: the neurons of h_n are its layers' hidden units, not the samples."""
    dims = [0] * len(tensors)
    if not isinstance(module, torch.nn.RNNBase) or not isinstance(output, tuple) or not tensors:
        return dims
    if tensors[0].dim() == 3:  # a PackedSequence's data is [sum of lengths, H]: no batch dimension to move
        dims[0] = 0 if module.batch_first else 1
    for k in range(1, len(tensors)):
        if tensors[k].dim() == 3:
            dims[k] = 1
    return dims


def _batch_first(t, dim):
    return t.transpose(0, dim) if dim else t


def _matrix_of(module):
    """The parameter a module's weight matrix is: its `weight`, else the packed query/key/value projection of
    an nn.MultiheadAttention (`in_proj_weight`, [3 x embed, embed])."""
    w = getattr(module, "weight", None)
    if isinstance(w, torch.Tensor):
        return w
    w = getattr(module, "in_proj_weight", None)
    return w if isinstance(w, torch.Tensor) else None


def _distributed():
    """(world_size, rank) of an initialised torch.distributed job, else (1, 0)."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_world_size(), dist.get_rank()
    except Exception:  # pragma: no cover - builds without distributed
        pass
    return 1, 0


class _Layer:
    """One recorded output: module `name`, its `call`-th call in a forward pass, tensor `out` of its output."""

    __slots__ = ("info", "module", "key", "act", "grad", "warned_shape", "batch_dim")

    def __init__(self, info, module, key, batch_dim=0):
        self.info = info
        self.module = module
        self.key = key
        self.act = None
        self.grad = None
        self.warned_shape = False
        self.batch_dim = batch_dim  # the output's batch dimension (_batch_dims); recorded batch first


class _Committer:
    """Runs the writer's work: here (background=False: log() returns when its data is committed) or on one
    writer thread (background=True: log() returns at once; commits keep their order; at most one snapshot
    waits or is being written, a further recorded log() waits for it)."""

    def __init__(self, background):
        self.background = bool(background)
        self.error = None
        self.thread = None

    def _start(self):
        if self.thread is None or self.pid != os.getpid():
            self.queue = queue.Queue()
            self.slot = threading.Semaphore(1)
            self.pid = os.getpid()
            self.thread = threading.Thread(target=self._loop, name="tensorscape-writer", daemon=True)
            self.thread.start()

    def _loop(self):
        while True:
            item = self.queue.get()
            if item is None:
                self.queue.task_done()
                return
            fn, snapshot = item
            try:
                if self.error is None:
                    fn()
            except BaseException as e:  # reported by the next log()/flush()/close()
                self.error = e
            finally:
                if snapshot:
                    self.slot.release()
                self.queue.task_done()

    def check(self, path):
        if self.error is not None:
            e, self.error = self.error, None
            raise RuntimeError("tensorscape: writing %s failed: %s: %s" % (path, type(e).__name__, e)) from e

    def run(self, fn, snapshot, path):
        self.check(path)
        if not self.background:
            fn()
            return
        self._start()
        if snapshot:
            self.slot.acquire()
        self.queue.put((fn, snapshot))

    def flush(self, path):
        if self.thread is not None and self.pid == os.getpid():
            self.queue.join()
        self.check(path)

    def stop(self):
        if self.thread is not None and self.pid == os.getpid():
            self.queue.put(None)
            self.thread.join()
        self.thread = None


class Run:
    """A recording in progress; made by tensorscape.init(). See tensorscape.init for the step rule."""

    def __init__(
        self,
        run_dir,
        model,
        every=10,
        histogram_bins=32,
        start_step=0,
        overwrite=False,
        scalars=(),
        quiet=False,
        background=False,
        matrices=262144,
        checkpoints=0,
    ):
        if not isinstance(model, torch.nn.Module):
            raise TypeError("tensorscape.init: model must be a torch.nn.Module, not %s" % type(model).__name__)
        if isinstance(model, torch.nn.DataParallel):
            raise TypeError(
                "tensorscape.init: nn.DataParallel is not supported (its replicas run hooks on parts of the "
                "batch in threads); use DistributedDataParallel, one process per device"
            )
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ValueError("tensorscape.init: every must be an integer >= 1, not %r" % (every,))
        if isinstance(histogram_bins, bool) or not isinstance(histogram_bins, numbers.Integral) or histogram_bins < 1:
            raise ValueError("tensorscape.init: histogram_bins must be an integer >= 1, not %r" % (histogram_bins,))
        if isinstance(start_step, bool) or not isinstance(start_step, numbers.Integral) or start_step < 0:
            raise ValueError("tensorscape.init: start_step must be an integer >= 0, not %r" % (start_step,))
        if isinstance(matrices, bool) or not isinstance(matrices, numbers.Integral) or matrices < 0:
            raise ValueError("tensorscape.init: matrices must be an integer >= 0, not %r" % (matrices,))
        if isinstance(checkpoints, bool) or not isinstance(checkpoints, numbers.Integral) or checkpoints < 0:
            raise ValueError("tensorscape.init: checkpoints must be an integer >= 0, not %r" % (checkpoints,))
        self._checkpoint_every = int(checkpoints)
        self._next_checkpoint = 0
        # Weight matrices stored at every snapshot: modules whose `weight` has 2+ dimensions and at most this
        # many elements, up to 4x this many per snapshot in all (0: none).
        self._matrix_max = int(matrices)
        self._matrix_total = 0
        if not isinstance(run_dir, (str, bytes, os.PathLike)):
            raise TypeError("tensorscape.init: run_dir must be a path, not %s" % type(run_dir).__name__)
        if isinstance(scalars, str):
            scalars = (scalars,)
        scalars = [str(s) for s in scalars]
        for s in scalars:
            self._check_scalar_name(s)
        self.path = os.fspath(run_dir)
        if isinstance(self.path, bytes):
            self.path = os.fsdecode(self.path)
        self.every = int(every)
        self.histogram_bins = int(histogram_bins)
        self.model = model
        self.world_size, self.rank = _distributed()
        self._quiet = quiet or self.rank != 0
        self._closed = True  # until set up
        self._declared_scalars = scalars
        self._writer = None
        self._committer = _Committer(background)

        error = None
        if self.rank == 0:
            try:
                self._prepare_folder(overwrite)
            except (ValueError, OSError) as e:
                error = e
        if self.world_size > 1:
            import torch.distributed as dist

            msg = [None if error is None else "%s: %s" % (type(error).__name__, error)]
            dist.broadcast_object_list(msg, src=0)
            if msg[0] is not None and error is None:
                raise ValueError("tensorscape.init: rank 0 could not start the run: %s" % msg[0])
        if error is not None:
            if isinstance(error, ValueError):
                raise error
            raise ValueError("tensorscape.init: cannot create the run folder %s (%s)" % (self.path, error))

        self.reducer = R.get_reducer()
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        if not self._quiet:
            _say("statistics by %s on %s" % (self.reducer.describe(device), device))

        # Layers: fixed by the first forward pass (discovery), then never changed.
        self._layers = []
        self._by_key = {}
        # The layer DAG, found during discovery: which recorded outputs feed each layer (by autograd node and
        # output number, else by tensor identity under no_grad).
        self._node_layer = {}  # (grad_fn node, output_nr) -> layer index
        self._tensor_layer = {}  # id(output tensor) -> (layer index, tensor kept alive for the pass)
        self._discovering = True
        self._calls = {}
        self._armed = start_step % self.every == 0
        self._active = True
        self._captured = False
        self._captured_grad = False
        self._generation = 0
        self._last_step = None
        self._pending_scalars = []  # log() calls before run.h5 exists
        self._gather_checked = False
        self._warned_scalars = set()
        self._file_planned = False  # begin() was handed to the committer
        self._input_shape = None  # per-sample shape of the first forward pass's first input

        self._handles = []
        ref = weakref.ref(self)
        hooked = 0
        for name, m in model.named_modules():
            own = any(True for _ in m.parameters(recurse=False))
            leaf = not any(True for _ in m.children())
            if m is model and not leaf:
                continue
            if not (own or leaf):
                continue
            self._handles.append(m.register_forward_hook(self._make_forward_hook(ref, name or "model")))
            hooked += 1
        self._handles.append(model.register_forward_pre_hook(self._make_root_pre_hook(ref)))
        self._handles.append(model.register_forward_hook(self._make_root_post_hook(ref)))
        self._hooked = hooked
        self._closed = False
        atexit.register(self.close)

    # ---- setup

    @staticmethod
    def _check_scalar_name(name):
        if not isinstance(name, str) or not name or "/" in name or name == "step" or name in (".", ".."):
            raise ValueError(
                "tensorscape: scalar name %r is not usable (a non-empty name without '/', not 'step')" % (name,)
            )

    def _prepare_folder(self, overwrite):
        d = self.path
        if os.path.exists(d) and not os.path.isdir(d):
            raise ValueError("tensorscape.init: %s exists and is not a folder" % d)
        names = ("run.h5", "run.json")
        if os.path.isdir(d) and any(os.path.exists(os.path.join(d, n)) for n in names):
            if not overwrite:
                raise ValueError(
                    "tensorscape.init: %s already holds a run (run.h5/run.json); choose another folder or pass "
                    "overwrite=True" % d
                )
            for n in names + ("run.h5.tmp", "run.json.tmp"):
                p = os.path.join(d, n)
                if os.path.exists(p):
                    os.remove(p)
        os.makedirs(d, exist_ok=True)
        self._info = {
            "created": store.iso_now(),
            "model": type(self.model).__name__,
            "every": self.every,
            "world_size": self.world_size,
            "histogram_bins": self.histogram_bins,
        }
        store.write_run_json(d, self._info)
        self._writer = store.RunWriter(d, self._info)

    # ---- hooks (cheap unless this forward pass is recorded or discovers the layers)

    @staticmethod
    def _make_root_pre_hook(ref):
        def pre_hook(module, inputs):
            run = ref()
            if run is not None and not run._closed:
                if run._discovering and run._input_shape is None and inputs and torch.is_tensor(inputs[0]):
                    if inputs[0].dim() >= 1:
                        run._input_shape = tuple(int(d) for d in inputs[0].shape[1:])
                run._begin_forward()

        return pre_hook

    @staticmethod
    def _make_root_post_hook(ref):
        def post_hook(module, inputs, output):
            run = ref()
            if run is not None and run._discovering and run._layers:
                run._discovering = False
                run._node_layer = {}  # the DAG is known; let the graph and tensors go
                run._tensor_layer = {}

        return post_hook

    @staticmethod
    def _make_forward_hook(ref, name):
        def forward_hook(module, inputs, output):
            run = ref()
            if run is None or not run._active:
                return
            try:
                run._on_output(name, module, output, inputs)
            except Exception as e:  # never break training
                _say("recording %s failed (%s: %s); continuing" % (name, type(e).__name__, e), ("hook", name))

        return forward_hook

    def _begin_forward(self):
        if not (self._armed or self._discovering):
            self._active = False
            return
        grad = torch.is_grad_enabled()
        if self._armed and self._captured and self._captured_grad and not grad:
            # An evaluation pass (no_grad) after this step's training pass: the training pass is kept.
            self._active = False
            return
        self._active = True
        self._calls = {}
        if self._armed:
            if self._captured:
                self._clear_captured()
            self._captured = True  # this step has a recorded forward pass (layers that did not run: NaN)
            self._captured_grad = grad

    def _clear_captured(self):
        for L in self._layers:
            L.act = None
            L.grad = None
        self._captured = False
        self._generation += 1

    def _producers(self, inputs):
        """Indices of the recorded layers whose outputs reach `inputs` (a module's inputs) without passing
        through another recorded layer: the autograd graph is walked back from each input (functional ops
        between modules, such as a residual addition, are looked through), else tensors are matched by
        identity (an in-place op after a layer keeps its tensor: the graph is the better guide). -1: the model
        input (or anything not produced by a recorded layer)."""
        found = []
        for x in _flatten_outputs(inputs, []):
            node = x.grad_fn
            if node is None:  # no autograd graph (a no_grad pass): the very tensor a layer returned, or the input
                hit = self._tensor_layer.get(id(x))
                found.append(hit[0] if hit is not None and hit[1] is x else -1)
                continue
            reached = False
            stack, seen = [(node, x.output_nr)], set()
            while stack and len(seen) < 20000:
                n, nr = stack.pop()
                layer = self._node_layer.get((n, nr))
                if layer is not None:
                    found.append(layer)
                    reached = True
                    continue
                if n in seen:
                    continue
                seen.add(n)
                for nxt, k in n.next_functions:
                    if nxt is not None:
                        stack.append((nxt, k))
            if not reached:
                found.append(-1)
        return sorted(set(found))

    def _on_output(self, name, module, output, inputs=()):
        call = self._calls.get(name, 0)
        self._calls[name] = call + 1
        tensors = _flatten_outputs(output, [])
        dims = _batch_dims(module, output, tensors)
        producers = None
        for k, t in enumerate(tensors):
            key = (name, call, k)
            L = self._by_key.get(key)
            if L is None:
                if self._discovering:
                    lname = name + ("#%d" % (call + 1) if call else "") + (".out%d" % k if k else "")
                    # The module's own parameters belong to its first output of its first call: a tuple's other
                    # elements (an LSTM's h_n, c_n) and later calls own none, or a run would count them again.
                    params = sum(p.numel() for p in module.parameters(recurse=False)) if k == 0 and call == 0 else 0
                    tname = type(module).__name__ if k == 0 else "output"  # RUN_FORMAT: a tuple element
                    matrix_shape = None
                    weight = _matrix_of(module) if k == 0 and call == 0 else None
                    if isinstance(weight, torch.Tensor) and weight.dim() >= 2 and 0 < weight.numel() <= self._matrix_max:
                        if self._matrix_total + weight.numel() <= 4 * self._matrix_max:
                            matrix_shape = (weight.shape[0], weight.numel() // weight.shape[0])
                            self._matrix_total += weight.numel()
                    if producers is None:
                        try:
                            producers = self._producers(inputs)
                        except Exception:  # the DAG is a hint; never break discovery
                            producers = [-1]
                    # A tuple's later elements come from the same call: they read what element 0 read.
                    shape = tuple(_batch_first(t, dims[k]).shape[1:])
                    info = store.LayerInfo(lname, tname, shape, params, matrix_shape, producers)
                    L = _Layer(info, module, key, dims[k])
                    index = len(self._layers)
                    self._layers.append(L)
                    self._by_key[key] = L
                    if t.grad_fn is not None:
                        self._node_layer[(t.grad_fn, t.output_nr)] = index
                    self._tensor_layer[id(t)] = (index, t)
                else:
                    lname = name + ("#%d" % (call + 1) if call else "") + (".out%d" % k if k else "")
                    if not self._quiet:
                        _say("%s was first seen after the layers were fixed; not recorded" % lname, ("late", key))
                    continue
            if self._armed:
                self._capture(L, t)

    def _capture(self, L, t):
        """Statistics of output t (batch first) now, and of its gradient when the backward pass makes it."""
        b = _batch_first(t, L.batch_dim)
        if tuple(b.shape[1:]) != L.info.shape:
            if not L.warned_shape and not self._quiet:
                _say(
                    "%s: output shape %s differs from the recorded %s; stored as NaN"
                    % (L.info.name, tuple(b.shape[1:]), L.info.shape)
                )
                L.warned_shape = True
            return
        if b.shape[0] == 0:
            return
        L.act = self.reducer.moments(b.detach().reshape(b.shape[0], -1))
        L.grad = None
        self._captured = True
        if t.requires_grad and torch.is_grad_enabled():
            self._hook_gradient(L, t)

    def _hook_gradient(self, L, t):
        ref = weakref.ref(self)
        gen = self._generation
        node = t.grad_fn
        if node is not None:
            nr = t.output_nr

            def node_hook(grad_inputs, grad_outputs):
                g = grad_outputs[nr] if nr < len(grad_outputs) else None
                if g is not None:
                    Run._on_gradient(ref, L, gen, g)

            node.register_hook(node_hook)
        else:
            t.register_hook(lambda g: Run._on_gradient(ref, L, gen, g))

    @staticmethod
    def _on_gradient(ref, L, gen, g):
        run = ref()
        if run is None or run._closed or gen != run._generation:
            return None
        try:
            g = _batch_first(g.detach(), L.batch_dim)  # the gradient comes in the output's own layout
            L.grad = run.reducer.moments(g.reshape(g.shape[0], -1))
        except Exception as e:  # never break training
            _say("gradient of %s failed (%s: %s)" % (L.info.name, type(e).__name__, e), ("grad", L.info.name))
        return None

    # ---- log / commit

    @property
    def layers(self):
        """Names of the recorded layers (fixed after the first forward pass)."""
        return [L.info.name for L in self._layers]

    def log(self, step, **scalars):
        """Record training step `step`: appends the scalars (every call) and, when this step's forward pass
        was recorded, commits its snapshot. Call it after loss.backward(), every step, with increasing step
        numbers; returns when the data is committed (visible to readers, safe from a kill), or with
        init(..., background=True) once the writer thread has it."""
        if self._closed:
            raise RuntimeError("tensorscape: log() after close() (run %s)" % self.path)
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            if torch.is_tensor(step) and step.numel() == 1 and not step.is_floating_point():
                step = int(step.item())
            else:
                raise TypeError("tensorscape: log(step): step must be an integer, not %s" % type(step).__name__)
        step = int(step)
        if self._last_step is not None and step < self._last_step:
            raise ValueError(
                "tensorscape: log(%d) after log(%d): steps must not decrease" % (step, self._last_step)
            )
        values = {}
        for k, v in scalars.items():
            self._check_scalar_name(k)
            values[k] = self._scalar_value(k, v)
        new_step = self._last_step is None or step != self._last_step
        records = None
        if new_step:
            if self._discovering and self._layers:
                self._discovering = False
            if self._armed:
                records = self._collect()
            self._armed = (step + 1) % self.every == 0
            self._active = self._armed or self._discovering
        self._last_step = step
        if self.rank == 0:
            self._write(step, records, values)
            if new_step and self._checkpoint_every > 0 and step >= self._next_checkpoint:
                self._next_checkpoint = (step // self._checkpoint_every + 1) * self._checkpoint_every
                store.write_checkpoint(self.path, step, self.model)

    @staticmethod
    def _scalar_value(name, v):
        try:
            if torch.is_tensor(v):
                v = v.detach().float().item()
            return float(v)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                "tensorscape: log(%s=...): a scalar must be a number or a one-element tensor, not %s"
                % (name, type(v).__name__)
            ) from None

    def _collect(self):
        """LayerRecords of this step (rank 0), None when nothing is to be written (no recorded forward pass;
        other ranks). Every rank of a distributed job calls it at the same steps."""
        layers = self._layers
        if self.world_size > 1:
            merged = self._gather()
            if merged is None:
                self._clear_captured()
                return None
        else:
            if not self._captured or not layers:
                self._clear_captured()
                return None
            merged = [(L.act, L.grad) for L in layers]
        records = []
        cache = {}
        bins = self.histogram_bins
        for L, (act, grad) in zip(layers, merged):
            r = store.LayerRecord()
            if act is not None and float(act["rows"]) > 0:
                r.activation = R.final_stats(act)
                r.rows = int(float(act["rows"]))
            if grad is not None and float(grad["rows"]) > 0:
                r.gradient = R.final_stats(grad)
            mid = id(L.module)
            if mid not in cache:
                params = list(L.module.parameters(recurse=False))
                grads = [p.grad for p in params if p.grad is not None]
                w = R.layer_stats(params, bins)
                g = R.layer_stats(grads, bins)
                cache[mid] = (w, g)
            w, g = cache[mid]
            r.weight, r.weight_hist, r.weight_hist_range = w
            r.weight_grad, r.weight_grad_hist, r.weight_grad_hist_range = g
            if L.info.matrix_shape:
                weight = _matrix_of(L.module)
                if isinstance(weight, torch.Tensor):
                    r.matrix = weight.detach().to(device="cpu", dtype=torch.float32).reshape(-1).numpy().copy()
            records.append(r)
        self._clear_captured()
        return records

    def _gather(self):
        """all_gather of every layer's moments (one flat float64 tensor per rank), combined on rank 0 in rank
        order. Output gradients are divided by the world size: DDP averages the ranks' gradients, so the
        gradient of the global loss with respect to a rank's outputs is its local one / world_size."""
        import torch.distributed as dist

        W = self.world_size
        backend = dist.get_backend()
        if backend == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        else:
            device = torch.device("cpu")
        parts = []
        for L in self._layers:
            n = L.info.neurons
            a = L.act if L.act is not None else R.empty_moments(n, device)
            g = R.scale_moments(L.grad, 1.0 / W) if L.grad is not None else R.empty_moments(n, device)
            parts.append(R.pack(a).to(device))
            parts.append(R.pack(g).to(device))
        if parts:
            flat = torch.cat(parts)
        else:
            flat = torch.zeros(0, dtype=torch.float64, device=device)
        if not self._gather_checked:
            size = torch.tensor([flat.numel()], dtype=torch.float64, device=device)
            sizes = [torch.zeros_like(size) for _ in range(W)]
            dist.all_gather(sizes, size)
            sizes = [int(s.item()) for s in sizes]
            if len(set(sizes)) != 1:
                raise RuntimeError(
                    "tensorscape: the ranks recorded different layers (%s statistics values per rank); every rank "
                    "must run the same model" % sizes
                )
            self._gather_checked = True
        if flat.numel() == 0:
            return None
        gathered = [torch.empty_like(flat) for _ in range(W)]
        dist.all_gather(gathered, flat)
        if self.rank != 0:
            return None
        merged = []
        off = 0
        any_rows = False
        for L in self._layers:
            n = L.info.neurons
            size = R.packed_size(n)
            pair = []
            for _ in range(2):
                m = None
                for r in range(W):
                    part = R.unpack(gathered[r][off : off + size], n)
                    m = part if m is None else R.combine(m, part)
                off += size
                pair.append(m)
            any_rows = any_rows or float(pair[0]["rows"]) > 0
            merged.append(tuple(pair))
        return merged if any_rows else None

    def _write(self, step, records, values):
        w = self._writer
        if not self._file_planned:
            if not self._layers:
                self._pending_scalars.append((step, values))  # no layers yet: run.h5 cannot be made
                return
            self._file_planned = True
            pending, self._pending_scalars = self._pending_scalars, []
            layers = [L.info for L in self._layers]
            names = list(self._declared_scalars)
            for _, v in pending + [(step, values)]:
                for k in v:
                    if k not in names:
                        names.append(k)

            input_shape = self._input_shape

            def begin():
                w.begin(layers, names, input_shape)
                for s, v in pending:
                    w.commit(scalar_step=s, scalars=v)

            self._committer.run(begin, False, self.path)

        def commit():
            for k in values:
                if k not in w.scalar_sets and k not in self._warned_scalars:
                    self._warned_scalars.add(k)
                    if not self._quiet:
                        _say(
                            "scalar '%s' first given at step %d is not stored: scalar names are fixed when run.h5 "
                            "is created (the first log()); name it in init(..., scalars=[...])" % (k, step)
                        )
            if records is not None:
                w.commit(step=step, records=records, scalar_step=step, scalars=values)
            else:
                w.commit(scalar_step=step, scalars=values)

        self._committer.run(commit, records is not None, self.path)

    def flush(self):
        """Waits until everything logged is committed (only background=True has anything to wait for)."""
        if self.rank == 0 and not self._closed:
            self._committer.flush(self.path)

    # ---- close

    def close(self):
        """Flushes and closes the run (also at exit, and by a with-block). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            atexit.unregister(self.close)
        except Exception:
            pass
        for h in self._handles:
            h.remove()
        self._handles = []
        if self.rank != 0 or self._writer is None:
            return
        w = self._writer
        error = None
        try:
            self._committer.flush(self.path)
        except RuntimeError as e:
            error = e
        self._committer.stop()
        try:
            if not self._file_planned and self._layers:
                self._file_planned = True
                names = list(self._declared_scalars)
                for _, v in self._pending_scalars:
                    for k in v:
                        if k not in names:
                            names.append(k)
                w.begin([L.info for L in self._layers], names, self._input_shape)
                for s, v in self._pending_scalars:
                    w.commit(scalar_step=s, scalars=v)
                self._pending_scalars = []
            elif not self._file_planned and self._pending_scalars and not self._quiet:
                _say("%s: no forward pass was seen; nothing recorded" % self.path)
        finally:
            w.close()
            store.write_run_json(self.path, self._info, closed=True)
        if error is not None:
            raise error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return "<tensorscape.Run %s every=%d layers=%d%s>" % (
            self.path,
            self.every,
            len(self._layers),
            " closed" if self._closed else "",
        )
