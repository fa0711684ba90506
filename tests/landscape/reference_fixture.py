#!/usr/bin/python3
"""Independent Python side of the landscape interop test (run with Debian's /usr/bin/python3, python3-torch,
python3-h5py). It follows the conventions of the public loss-landscape scripts (Li et al. 2018):
  - directions: torch.manual_seed(seed); one torch.randn(w.size()) per parameter, x then y; filter
    normalisation d_i *= |w_i| / (|d_i| + 1e-10) per slice along dim 0; 1-D entries zeroed (biasbn);
    stored as h5 groups 'xdirection'/'ydirection' with datasets '0', '1', ...
  - surfaces: 'xcoordinates', 'ycoordinates', 'train_loss'/'train_acc' of shape (len(x), len(y)) filled in
    the order of numpy.meshgrid(x, y).ravel() (flat index k -> x[k % nx], y[k // nx]), -1 = not computed.
  - weights at (a, b): p = w + a*dx + b*dy; loss = mean cross-entropy; acc = 100 * correct / total.

usage: reference_fixture.py make DIR     writes model.pt, model_bn.pt, smooth_cnn.pt, data.h5, ref_dirs.h5, ref_surface.h5,
                                         bn_state_keys.txt, traj_0.pt .. traj_4.pt (a 2-input MLP along
                                         a few SGD steps, for PCA directions)
       reference_fixture.py check DIR    checks cpp_dirs.h5 + cpp_surface.h5 written by the C++ test
       reference_fixture.py hessian DIR  (after make) writes hessian_ref.h5: dense float64 Hessians of the mean
                                         cross-entropy of model.pt on data.h5 and of model_bn.pt (eval mode)
                                         on bn_data.h5 (also written), from torch.autograd.functional.hessian:
                                         eigenvalues (descending), top eigenvectors, trace
"""
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn

SEED = 123


def make_mlp():
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


def make_bn_net():
    torch.manual_seed(2)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 3))


def random_direction(weights):
    d = [torch.randn(w.size()) for w in weights]
    for di, w in zip(d, weights):
        if di.dim() <= 1:
            di.fill_(0)
        else:
            for ds, ws in zip(di, w):
                ds.mul_(ws.norm() / (ds.norm() + 1e-10))
    return d


def write_group(f, name, arrays):
    g = f.create_group(name)
    for i, a in enumerate(arrays):
        g.create_dataset(str(i), data=a.numpy() if isinstance(a, torch.Tensor) else a)


def read_group(f, name):
    g = f[name]
    return [torch.tensor(np.asarray(g[str(i)])) for i in range(len(g))]


def evaluate(net, weights, dx, dy, a, b, inputs, targets):
    with torch.no_grad():
        for p, w, u, v in zip(net.parameters(), weights, dx, dy):
            p.copy_(w + u * a + v * b)
        out = net(inputs)
        loss = nn.functional.cross_entropy(out, targets).item()
        acc = 100.0 * out.argmax(1).eq(targets).sum().item() / targets.numel()
        for p, w in zip(net.parameters(), weights):
            p.copy_(w)
    return loss, acc


def load_data(d):
    with h5py.File(d + '/data.h5', 'r') as f:
        return torch.tensor(np.asarray(f['inputs'])), torch.tensor(np.asarray(f['targets'])).long()


def make(d):
    net = make_mlp().eval()
    torch.jit.script(net).save(d + '/model.pt')
    bn = make_bn_net().eval()
    torch.jit.script(bn).save(d + '/model_bn.pt')
    # A smooth CNN for Fashion-MNIST (tanh, average pooling): its loss is twice differentiable everywhere, so
    # the surface's curvature along a Hessian eigenvector equals the eigenvalue (ReLU kinks would add their own).
    torch.manual_seed(4)
    smooth = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(4, 8, 3, padding=1),
                           nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8 * 7 * 7, 10))
    torch.jit.script(smooth.eval()).save(d + '/smooth_cnn.pt')
    with open(d + '/bn_state_keys.txt', 'w') as f:
        f.write('\n'.join(bn.state_dict().keys()) + '\n')

    # A short training trajectory of a 2-input MLP (toy data shape), one checkpoint every 5 SGD steps.
    torch.manual_seed(3)
    toy = nn.Sequential(nn.Flatten(), nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(toy.parameters(), lr=0.2)
    tx = torch.randn(256, 2)
    ty = (tx[:, 0] * tx[:, 1] > 0).long()
    for t in range(5):
        toy.eval()
        torch.jit.script(toy).save(d + '/traj_%d.pt' % t)
        for _ in range(5):
            loss = nn.functional.cross_entropy(toy(tx), ty)
            opt.zero_grad()
            loss.backward()
            opt.step()
    # The toy MLP trained to fit (Adam), and the same network with its hidden units permuted: the same function,
    # so the same loss at both ends, and a barrier on the straight line between them (the symmetry that mode
    # connectivity is about).
    # Labelled as tensorscape's "xor" set labels its quadrants (class 0 where both coordinates share a sign).
    xor_y = (tx[:, 0] * tx[:, 1] < 0).long()
    opt = torch.optim.Adam(toy.parameters(), lr=0.05)
    for _ in range(300):
        loss = nn.functional.cross_entropy(toy(tx), xor_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    toy.eval()
    torch.jit.script(toy).save(d + '/xor_trained.pt')
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        toy[1].weight.copy_(toy[1].weight[perm])
        toy[1].bias.copy_(toy[1].bias[perm])
        toy[3].weight.copy_(toy[3].weight[:, perm])
    torch.jit.script(toy).save(d + '/xor_trained_permuted.pt')

    g = torch.Generator().manual_seed(7)
    inputs = torch.randn(64, 6, generator=g)
    targets = torch.randint(0, 3, (64,), generator=g)
    with h5py.File(d + '/data.h5', 'w') as f:
        f['inputs'] = inputs.numpy()
        f['targets'] = targets.numpy()

    weights = [p.detach().clone() for p in net.parameters()]
    torch.manual_seed(SEED)
    dx = random_direction(weights)
    dy = random_direction(weights)
    with h5py.File(d + '/ref_dirs.h5', 'w') as f:
        write_group(f, 'xdirection', dx)
        write_group(f, 'ydirection', dy)

    # A surface computed the reference way on a non-square grid, so a transposed reading would show.
    x = np.linspace(-1, 1, num=5)
    y = np.linspace(-0.5, 0.5, num=3)
    losses = -np.ones((len(x), len(y)))
    accs = -np.ones((len(x), len(y)))
    xm, ym = np.meshgrid(x, y)
    for k in range(losses.size):
        if k == 4:
            continue  # left "not computed" (-1), as an interrupted reference run leaves it
        loss, acc = evaluate(net, weights, dx, dy, xm.ravel()[k], ym.ravel()[k], inputs, targets)
        losses.ravel()[k] = loss
        accs.ravel()[k] = acc
    with h5py.File(d + '/ref_surface.h5', 'w') as f:
        f['dir_file'] = d + '/ref_dirs.h5'
        f['xcoordinates'] = x
        f['ycoordinates'] = y
        f['train_loss'] = losses
        f['train_acc'] = accs
    return 0


def check(d):
    net = torch.jit.load(d + '/model.pt').eval()
    inputs, targets = load_data(d)
    weights = [p.detach().clone() for p in net.parameters()]
    failures = 0
    with h5py.File(d + '/cpp_dirs.h5', 'r') as f:
        dx, dy = read_group(f, 'xdirection'), read_group(f, 'ydirection')
    if [t.shape for t in dx] != [w.shape for w in weights]:
        print('direction shapes differ from the model parameters')
        return 1
    with h5py.File(d + '/cpp_surface.h5', 'r') as f:
        x, y = np.asarray(f['xcoordinates']), np.asarray(f['ycoordinates'])
        losses, accs = np.asarray(f['train_loss']), np.asarray(f['train_acc'])
        if losses.shape != (len(x), len(y)):
            print('train_loss has shape %s, expected (len(x), len(y)) = %s' % (losses.shape, (len(x), len(y))))
            return 1
    xm, ym = np.meshgrid(x, y)
    for k in range(losses.size):
        loss, acc = evaluate(net, weights, dx, dy, xm.ravel()[k], ym.ravel()[k], inputs, targets)
        got_l, got_a = losses.ravel()[k], accs.ravel()[k]
        if not abs(got_l - loss) <= 1e-5 * abs(loss) or abs(got_a - acc) > 1e-9:
            print('point %d (%.3f, %.3f): C++ loss %.8f acc %.3f, Python loss %.8f acc %.3f'
                  % (k, xm.ravel()[k], ym.ravel()[k], got_l, got_a, loss, acc))
            failures += 1
    print('checked %d points, %d differ' % (losses.size, failures))
    return 1 if failures else 0


def dense_hessian(net, inputs, targets):
    """The Hessian of the mean cross-entropy over all parameters (named_parameters order, flattened), float64."""
    from torch.nn.utils import stateless
    net = net.double().eval()
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for _, p in net.named_parameters()])

    def loss_of(flat):
        params, offset = {}, 0
        for n, shape in zip(names, shapes):
            k = int(np.prod(shape)) if len(shape) else 1
            params[n] = flat[offset:offset + k].view(shape)
            offset += k
        out = stateless.functional_call(net, params, (inputs.double(),))
        return nn.functional.cross_entropy(out, targets)

    return torch.autograd.functional.hessian(loss_of, flat0)


def hessian(d):
    inputs, targets = load_data(d)
    g = torch.Generator().manual_seed(11)
    bn_inputs = torch.rand(48, 1, 4, 4, generator=g)
    bn_targets = torch.randint(0, 3, (48,), generator=g)
    with h5py.File(d + '/bn_data.h5', 'w') as f:
        f['inputs'] = bn_inputs.numpy()
        f['targets'] = bn_targets.numpy()
    with h5py.File(d + '/hessian_ref.h5', 'w') as f:
        for name, net, x, y in (('mlp', torch.jit.load(d + '/model.pt'), inputs, targets),
                                ('bn', torch.jit.load(d + '/model_bn.pt'), bn_inputs, bn_targets)):
            # The scripted files hold the weights; the same architecture in eager mode differentiates twice.
            eager = make_mlp() if name == 'mlp' else make_bn_net()
            eager.load_state_dict({k: v for k, v in net.state_dict().items()})
            h = dense_hessian(eager, x, y)
            values, vectors = torch.linalg.eigh(h)
            order = torch.argsort(values, descending=True)
            f[name + '_eigenvalues'] = values[order].numpy()
            f[name + '_eigenvectors'] = vectors[:, order[:4]].T.contiguous().numpy()
            f[name + '_trace'] = np.array([torch.trace(h).item()])
            print('%s: %d parameters, top eigenvalues %s, trace %.6f'
                  % (name, h.shape[0], values[order][:4].numpy(), torch.trace(h).item()))
    return 0


if __name__ == '__main__':
    modes = {'make': make, 'check': check, 'hessian': hessian}
    if len(sys.argv) != 3 or sys.argv[1] not in modes:
        print(__doc__)
        sys.exit(2)
    sys.exit(modes[sys.argv[1]](sys.argv[2]))
