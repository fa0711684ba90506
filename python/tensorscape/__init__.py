"""tensorscape: record any PyTorch training run for the tensorscape viewer (docs/RUN_FORMAT.md).

Three lines in a training loop::

    import tensorscape
    run = tensorscape.init("runs/exp1", model, every=10)
    for step, (x, y) in enumerate(loader):
        loss = loss_fn(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        run.log(step, loss=loss.item())
    run.close()

and ``tensorscape.read_run("runs/exp1")`` reads it back (also while it is written).
"""

from .errors import RunError
from .reader import Layer, RunReader, read_run
from .recorder import Run
from .reduce import LAYER_STATISTICS, STATISTICS

__version__ = "0.1.0"

__all__ = ["init", "read_run", "Run", "RunReader", "RunError", "Layer", "STATISTICS", "LAYER_STATISTICS"]


def init(
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
    """Start recording `model` into the folder `run_dir`; returns a Run (call run.log(step, **scalars) every
    training step, after loss.backward(); run.close() at the end, or use it as a context manager; it is also
    closed at exit).

    What is recorded: forward hooks on every module that owns parameters or is a leaf (the root module and
    pure containers are skipped, their outputs being a child's), named by their module path; a module
    returning a tuple/list gives one layer per floating tensor, element 0 under the plain name and the others
    as NAME.out1, NAME.out2, ...; a module called several times in one forward pass gives NAME, NAME#2, ...
    At a recorded step: per-neuron statistics over the batch (dimension 0) of each output and of its gradient
    (collected on the backward pass), and statistics and histograms of each module's own parameters and their
    gradients. The layers are fixed by the first forward pass after init().

    Which steps are recorded (the hooks do nothing on the other steps): snapshots are taken every `every`
    steps. The forward pass of step s is recorded iff s % every == 0, where s is the step that the next log()
    call will be given: the first forward pass after init() counts as step `start_step` (default 0), and the
    forward passes after log(step) count as step + 1. So call log() once per training step with increasing
    step numbers (a second log() with the same step only appends scalars). If several forward passes happen
    within one step, the last one is recorded, except that a no_grad pass (an evaluation) does not replace a
    training pass already recorded in that step. Gradients are those of the backward pass before log(); if
    there was none, the gradient rows are NaN. Parameter statistics are taken at log(): after optimizer.step()
    they are the updated weights.

    Arguments:
        run_dir: folder of the run (created; run.json now, run.h5 at the first log() after a forward pass).
            A folder that already holds a run raises ValueError unless overwrite=True.
        model: a torch.nn.Module (a DistributedDataParallel wrapper is unwrapped).
        every: record every `every`-th step (int >= 1).
        histogram_bins: bins of the parameter histograms.
        start_step: the step number of the first forward pass, when the first log() will not be log(0).
        scalars: names of scalars that will first be given after the first log() (scalar names are fixed
            when run.h5 is created; a name first seen later is reported once and not stored).
        quiet: no messages on stderr.
        background: False (default): log() returns when its data is committed (on disk for readers, safe
            from a kill). True: log() hands the commit (compression and HDF5 writes, the bulk of a recorded
            step's cost) to a writer thread and returns at once; commits keep their order, at most one
            snapshot is waiting or being written (a further recorded log() waits for it), run.flush() waits
            for all, and a kill loses at most what was not yet committed.
        matrices: store the weight matrix (a module's `weight` of 2+ dimensions, as [out, rest]; an
            nn.MultiheadAttention's packed `in_proj_weight`) of every
            module with at most this many weights at each snapshot, up to 4x this many per snapshot in all,
            for Hinton diagrams of any recorded step (`tensorscape open RUN --view hinton`); 0 stores none.
        checkpoints: N > 0 also saves the model's floating-point parameters and buffers (its state_dict) at the
            first log() at or after every N steps, as RUN/checkpoints/step_<STEP>.h5 (docs/RUN_FORMAT.md), so that
            `tensorscape neurogram --run RUN --model MODEL.pt` measures the model as it was then; 0 (default):
            none. Rank 0 writes them; each costs about 4 bytes per parameter.

    torch.distributed: when a process group is initialised with world_size > 1, every rank calls init() and
    log() the same way. Each rank reduces its own part of the batch; at a recorded step the ranks' moments are
    gathered (one all_gather) and rank 0 combines them and writes the statistics of the global batch. Only rank
    0 touches the folder. Output gradients are divided by world_size (DDP averages gradients, so that is the
    gradient of the global loss).
    """
    return Run(
        run_dir,
        model,
        every=every,
        histogram_bins=histogram_bins,
        start_step=start_step,
        overwrite=overwrite,
        scalars=scalars,
        quiet=quiet,
        background=background,
        matrices=matrices,
        checkpoints=checkpoints,
    )
