"""Peer: the seed MLP in PyTorch (CPU), one epoch per batch size; prints JSON steps/s (median of runs)."""
import json
import statistics
import sys
import time

import numpy as np
import torch

batch_sizes = [int(b) for b in sys.argv[1].split(",")]
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
rng = np.random.default_rng(0)
X = torch.from_numpy(rng.random((60000, 784), dtype=np.float32))
Y = torch.from_numpy(rng.integers(0, 10, 60000).astype(np.int64))
result = {"threads": torch.get_num_threads()}
for bs in batch_sizes:
    rates = []
    for _ in range(repeats):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        lossf = torch.nn.CrossEntropyLoss()
        n = 60000 // bs
        t = time.perf_counter()
        for i in range(n):
            xb, yb = X[i * bs:(i + 1) * bs], Y[i * bs:(i + 1) * bs]
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(xb), yb)
            loss.backward()
            opt.step()
        rates.append(n / (time.perf_counter() - t))
    result[str(bs)] = statistics.median(rates)
print(json.dumps(result))
