"""Fork server of the Python tests (see helpers.ForkServer): imports torch, h5py and tensorscape once, then
forks one child per request that runs a function of tests/python/workers.py. Protocol: one JSON object per
line on stdin, one reply per line on stdout."""

import importlib
import json
import os
import sys
import time
import traceback

import h5py  # noqa: F401
import numpy  # noqa: F401
import torch

import tensorscape  # noqa: F401

torch.set_num_threads(1)
workers = importlib.import_module("tests.python.workers")


def child(req):
    code = 1
    try:
        fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = sys.stdout
        getattr(workers, req["target"])(**req["kwargs"])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
        except Exception:
            pass
        os._exit(code)


def main():
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        if req["cmd"] == "fork":
            pid = os.fork()
            if pid == 0:
                child(req)
            reply = {"pid": pid}
        elif req["cmd"] == "wait":
            end = time.monotonic() + float(req["timeout"])
            status = None
            while True:
                pid, st = os.waitpid(req["pid"], os.WNOHANG)
                if pid:
                    status = os.waitstatus_to_exitcode(st)
                    break
                if time.monotonic() > end:
                    break
                time.sleep(0.01)
            reply = {"status": status}
        else:
            reply = {"error": "unknown command"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
