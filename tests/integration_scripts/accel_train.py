"""A tiny Accelerate loop with DistlogTracker; each rank writes what it saw to OUT/rank<r>.json.

    [torchrun --nproc_per_node 2] accel_train.py ROOT OUT [--by-name]
"""

import argparse
import json
import os

import torch
from accelerate import Accelerator

from distlog.integrations.accelerate import DistlogTracker


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("out")
    p.add_argument("--by-name", action="store_true")
    a = p.parse_args()
    if a.by_name:  # one process: the registered name, settings through init_kwargs
        accelerator = Accelerator(cpu=True, log_with="distlog")
        accelerator.init_trackers("acc1", config={"lr": 0.1, "width": 4},
                                  init_kwargs={"distlog": {"root": a.root, "run_id": "acc-single"}})
        tracker = accelerator.get_tracker("distlog")
    else:
        tracker = DistlogTracker(root=a.root, experiment="acc", run_id="acc-run")
        accelerator = Accelerator(cpu=True, log_with=tracker)
        accelerator.init_trackers("acc", config={"lr": 0.1, "width": 4})
        tracker.open()  # every rank
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(32, 4)), batch_size=2)
    model, opt, data = accelerator.prepare(model, opt, data)
    rank, seen = accelerator.process_index, {}
    for step, (x,) in enumerate(data):
        if step == 4:
            break
        loss = model(x).pow(2).mean()
        accelerator.backward(loss)
        opt.step()
        opt.zero_grad()
        v = (rank + 1) * 3.0 + step
        tracker.collect(step=step, loss=loss.detach(), v=v)  # every rank
        tracker.flush()                                       # every rank: reduced rows
        accelerator.log({"main_only": 100.0 + step}, step=step)  # main process: written now
        seen[str(step)] = {"loss": float(loss.detach()), "v": v}
    if not a.by_name:
        tracker.close()  # every rank, before end_training
    accelerator.end_training()
    with open(os.path.join(a.out, f"rank{rank}.json"), "w") as f:
        json.dump({"seen": seen, "world": accelerator.num_processes, "run_id": tracker.session.run_id}, f)


if __name__ == "__main__":
    main()
