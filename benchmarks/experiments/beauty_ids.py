"""Behaviour Transformer on Amazon Beauty (S3-Rec preprocessing), the standard leave-one-out protocol.

Protocol: per user the last item is the test target and the second-to-last the validation target;
the model trains on the rest. Targets are ranked against all 12,101 items (full ranking, no sampled
negatives), ties count against the target, seen items are not filtered. Tuning uses validation only.

    .venv/bin/python benchmarks/experiments/beauty_ids.py --name ids \
        --model '{"dim": 64}' --train '{"lr": 2e-3, "max_minutes": 15}' [--attributes]

Prints the per-epoch JSON lines and a final table; writes benchmarks/results/beauty_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from shopformer.models.transformer import BehaviourTransformer
from shopformer.train import ModelConfig, SequenceArrays, TrainConfig, Trainer, evaluate_next_item

DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "amazon-beauty"
RESULTS = Path(__file__).resolve().parents[1] / "results"


def read_sequences(path: Path) -> list[list[int]]:
    """One list of item codes per user; item i of the file becomes code i + 1 (0 pads, 1 unknown)."""
    with path.open() as lines:
        return [[int(i) + 1 for i in line.split()[1:]] for line in lines if line.strip()]


def read_attributes(path: Path, n_items: int) -> torch.Tensor:
    """(n_items, max_attrs) attribute ids per item code, 0 = none (ids in the file start at 1)."""
    raw = json.loads(path.read_text())
    width = max(len(v) for v in raw.values())
    index = np.zeros((n_items, width), dtype=np.int32)
    for item, attributes in raw.items():
        index[int(item) + 1, : len(attributes)] = attributes
    return torch.from_numpy(index)


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores_available": len(os.sched_getaffinity(0)), "ram_gib": round(memory, 1),
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="ids")
    parser.add_argument("--model", default="{}", help="JSON overrides of ModelConfig")
    parser.add_argument("--train", default="{}", help="JSON overrides of TrainConfig")
    parser.add_argument("--attributes", action="store_true", help="fuse brand/category attributes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    sequences = read_sequences(DATA / "Beauty.txt")
    n_items = max(max(s) for s in sequences) + 1
    train = SequenceArrays.from_lists([s[:-2] for s in sequences])
    valid = SequenceArrays.from_lists([s[:-1] for s in sequences])
    test = SequenceArrays.from_lists(sequences)
    model_config = ModelConfig(**({"use_attributes": args.attributes} | json.loads(args.model)))
    train_config = TrainConfig(**({"max_minutes": 15.0, "progress": False} | json.loads(args.train)))
    print(model_config.model_dump_json(), train_config.model_dump_json(), sep="\n")

    features = {"attribute_index": read_attributes(DATA / "Beauty_item2attributes.json", n_items)} if args.attributes else {}
    torch.manual_seed(train_config.seed)
    model = BehaviourTransformer(model_config, n_items, **features)
    started = time.perf_counter()
    trainer = Trainer(model, train_config).fit(train, valid)
    seconds = time.perf_counter() - started
    torch.set_num_threads(train_config.num_threads)
    valid_scores, test_scores = evaluate_next_item(model, valid), evaluate_next_item(model, test)
    epochs = len(trainer.history_)
    result = {
        "name": args.name, "dataset": "amazon-beauty (S3-Rec)", "users": len(sequences), "items": n_items - 2,
        "protocol": "leave-one-out; full ranking over all items; pessimistic ties; no seen-item filtering",
        "model": model_config.model_dump(), "train": train_config.model_dump(), "machine": machine(),
        "train_seconds": round(seconds, 1), "epochs_run": epochs, "best_epoch": trainer.best_epoch_,
        "seconds_per_epoch": round(float(np.mean([m["seconds"] for m in trainer.history_])), 2),
        "valid": valid_scores, "test": test_scores, "history": trainer.history_,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"beauty_{args.name}.json").write_text(json.dumps(result, indent=1))
    print(f"| {args.name} | {result['seconds_per_epoch']} s | {trainer.best_epoch_}/{epochs} | "
          f"{valid_scores['hr@10']:.4f} / {valid_scores['ndcg@10']:.4f} | "
          f"{test_scores['hr@10']:.4f} / {test_scores['ndcg@10']:.4f} | {seconds / 60:.1f} min |")


if __name__ == "__main__":
    main()
