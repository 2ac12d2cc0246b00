"""A Lightning fit with a training metric logged per epoch and validation each epoch (the usual
setup), under ``strategy="ddp"`` on CPU; rank 0 writes what every rank logged to OUT/epochs.json.

    python lightning_epochs.py ROOT OUT --devices 2 [--rank-zero-stat]

``--rank-zero-stat``: instead of ``train_v``, rank 0 alone logs ``r0_stat`` = the epoch at each
epoch's end (``rank_zero_only=True``, the way to log a value only rank 0 computed): the other
rank logs nothing there.
"""

import argparse
import json
import os

import torch
import lightning.pytorch as pl

from distlog.integrations.lightning import DistlogLogger


def epoch_value(rank: int, epoch: int) -> float:
    return 10.0 * (epoch + 1) + rank


class EpochModule(pl.LightningModule):
    def __init__(self, rank_zero_stat: bool = False):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.rank_zero_stat = rank_zero_stat

    def training_step(self, batch, batch_idx):
        if not self.rank_zero_stat:
            self.log("train_v", epoch_value(self.global_rank, self.current_epoch), on_step=False,
                     on_epoch=True)
        return self.layer(batch[0]).pow(2).mean()

    def on_train_epoch_end(self):
        if self.rank_zero_stat and self.global_rank == 0:
            self.log("r0_stat", float(self.current_epoch), rank_zero_only=True)

    def validation_step(self, batch, batch_idx):
        self.log("val_v", float(self.global_rank + self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("out")
    p.add_argument("--devices", type=int, default=2)
    p.add_argument("--rank-zero-stat", action="store_true")
    a = p.parse_args()
    logger = DistlogLogger(a.root, name="ep", version="ddp", flush_timeout=60)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 2)), batch_size=2)
    trainer = pl.Trainer(accelerator="cpu", devices=a.devices, strategy="ddp" if a.devices > 1 else "auto",
                         max_epochs=2, logger=logger, callbacks=[logger.callback], num_sanity_val_steps=0,
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=a.out)
    trainer.fit(EpochModule(a.rank_zero_stat), data, data)  # raises (exit code 1) if the closing flush refused values
    if trainer.global_rank == 0:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "epochs.json"), "w") as f:
            json.dump({"world": trainer.world_size, "steps_per_epoch": trainer.num_training_batches}, f)


if __name__ == "__main__":
    main()
