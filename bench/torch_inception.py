#!/usr/bin/python3
"""PyTorch side of bench/bench_inception.c: images/s of the same FID
InceptionV3 (tests/reference/inception_ref.py's model, 299x299 input,
features + logits) at batch 1 and 8 with torch.set_num_threads(2).
  /usr/bin/python3 bench/torch_inception.py [threads=2] [images=16]"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from inception_ref import FIDInception  # noqa: E402


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    nimg = max(8, int(sys.argv[2]) if len(sys.argv) > 2 else 16)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = FIDInception().eval()
    x = torch.rand(nimg, 3, 299, 299) * 2 - 1
    print("torch %s inception-fid 299x299, %d threads, mkldnn %s"
          % (torch.__version__, torch.get_num_threads(), torch.backends.mkldnn.is_available()))
    with torch.no_grad():
        for b in (1, 8):
            model(x[:b])  # warm-up
            t0 = time.perf_counter()
            done = 0
            for i in range(0, nimg - b + 1, b):
                model(x[i:i + b])
                done += b
            dt = time.perf_counter() - t0
            print("batch %d: %.2f images/s (%.1f ms/image)" % (b, done / dt, 1e3 * dt / done))


if __name__ == "__main__":
    main()
