"""A tiny Hugging Face Trainer run (model built from a config, no downloads) with distlog.

    [torchrun --nproc_per_node 2] hf_train.py ROOT OUT [--report-to]

Each rank writes what it saw (its own losses per logging window, the Trainer's log history)
to OUT/rank<r>.json.
"""

import argparse
import json
import os

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from distlog.integrations.transformers import DistlogCallback


class Data(torch.utils.data.Dataset):
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 50, (n, 8), generator=g)
        self.y = torch.randint(0, 2, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return {"input_ids": self.x[i], "labels": self.y[i]}


class Recording(Trainer):
    seen: dict = {}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss = out[0] if return_outputs else out
        if model.training:
            # logged by the Trainer at the step after the optimizer step
            self.seen.setdefault(str(self.state.global_step + 1), []).append(float(loss.detach()))
            distlog_cb.collect(rank_loss=loss.detach())
            distlog_cb.collect({"train/rank_loss_x2": 2 * loss.detach()})  # (a name with a namespace)
        return out


def main() -> None:
    global distlog_cb
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("out")
    p.add_argument("--report-to", action="store_true")
    p.add_argument("--resume")
    a = p.parse_args()
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=16, max_position_embeddings=16, num_labels=2)
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg)
    args = TrainingArguments(
        output_dir=os.path.join(a.out, "hf"), per_device_train_batch_size=2, per_device_eval_batch_size=4,
        max_steps=4, logging_steps=1, save_strategy="steps", save_steps=2, eval_strategy="steps", eval_steps=2,
        use_cpu=True, disable_tqdm=True, seed=0, report_to="distlog" if a.report_to else "none",
        dataloader_num_workers=0,
    )
    callbacks = [] if a.report_to else [DistlogCallback(a.root, "hf", "hf-run", log_checkpoints=True)]
    trainer = Recording(model=model, args=args, train_dataset=Data(32, 1), eval_dataset=Data(8, 2),
                        callbacks=callbacks)
    distlog_cb = next(c for c in trainer.callback_handler.callbacks if isinstance(c, DistlogCallback))
    trainer.train(resume_from_checkpoint=a.resume)
    rank = args.process_index
    with open(os.path.join(a.out, f"rank{rank}{'-resumed' if a.resume else ''}.json"), "w") as f:
        json.dump({"seen": Recording.seen, "history": trainer.state.log_history, "world": args.world_size,
                   "run_id": distlog_cb.session.run_id}, f)


if __name__ == "__main__":
    main()
