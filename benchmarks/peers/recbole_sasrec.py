"""RecBole 1.2.1 SASRec (CE loss) on Amazon Beauty, leave-one-out, full ranking.

Peer benchmark: run with the interpreter of ``benchmarks/peers/.venv-recbole`` (see setup_recbole.sh):

    benchmarks/peers/.venv-recbole/bin/python benchmarks/peers/recbole_sasrec.py --max-minutes 12

What it does
  1. Converts ``Beauty.txt`` (``uid i1 i2 ...`` per line, in time order) into a RecBole atomic
     ``.inter`` file under ``benchmarks/peers/work/beauty/`` with a synthetic timestamp equal to the
     position in the user's sequence, so RecBole's ``order: TO`` + ``split: {LS: valid_and_test}``
     is exactly the usual leave-one-out split (last item test, second-to-last validation).
  2. Checks that RecBole kept every user, item and interaction and that every user's valid/test
     target and test history match ``Beauty.txt`` (the run aborts otherwise).
  3. Trains SASRec with full-softmax cross-entropy, early stopping on valid NDCG@10, under a
     wall-clock cap (``--max-minutes``): before each epoch the trainer checks whether another
     epoch (its last train + validation time) still fits in the cap; if not, training stops and
     the best checkpoint so far is evaluated. Training and evaluation time are measured apart.
  4. Evaluates the best checkpoint on valid and test with RecBole's evaluator (HR/NDCG/MRR at
     5/10/20) and, independently, recomputes the test metrics with ties broken against the target.
  5. Writes ``benchmarks/results/peer_recbole_sasrec_beauty.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import recbole
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.sequential_recommender import SASRec
from recbole.utils import get_trainer, init_logger, init_seed
from recbole_sasrec_inputs import DATASET_NAME, KS, check_loaded, check_split, read_sequences, recbole_config, write_atomic_inter

# RecBole 1.2.1 fills missing float values with a chained inplace fillna that pandas 2.2 warns about;
# this data has no missing values, so the warning is noise.
warnings.filterwarnings("ignore", message="A value is trying to be set on a copy", category=FutureWarning)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "amazon-beauty" / "Beauty.txt"
DEFAULT_WORK = REPO / "benchmarks" / "peers" / "work"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "peer_recbole_sasrec_beauty.json"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path(os.environ.get("BEAUTY_TXT", DEFAULT_DATA)),
                   help="Beauty.txt in S3-Rec format (default: ../shared/datasets/amazon-beauty/Beauty.txt)")
    p.add_argument("--work-dir", type=Path, default=DEFAULT_WORK,
                   help="where atomic files, RecBole logs and checkpoints go (git-ignored)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="result JSON")
    p.add_argument("--max-minutes", type=float, default=30.0,
                   help="wall-clock cap on training (train + per-epoch validation); the best checkpoint "
                        "reached within the cap is evaluated")
    p.add_argument("--epochs", type=int, default=200, help="maximum number of epochs")
    p.add_argument("--stopping-step", type=int, default=10,
                   help="RecBole early stopping: stop after this many validations without improvement")
    p.add_argument("--train-batch-size", type=int, default=256)
    p.add_argument("--eval-batch-size", type=int, default=2048, help="users per evaluation batch")
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--max-len", type=int, default=50, help="MAX_ITEM_LIST_LENGTH")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch default)")
    p.add_argument("--note", default="", help="free-text note stored in the JSON (e.g. machine contention)")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------------
# training with a wall-clock cap and separate train / validation timing
# ----------------------------------------------------------------------------------------------
class TimeCapReached(Exception):
    pass


def make_trainer_class(base):
    class CappedTrainer(base):
        """RecBole trainer that records per-epoch timings and refuses to start an epoch that would
        not finish within ``cap_seconds`` (estimated from the previous epoch)."""

        cap_seconds = math.inf

        def _train_epoch(self, train_data, epoch_idx, *a, **kw):
            if not hasattr(self, "epoch_log"):
                self.epoch_log, self.fit_start = [], time.perf_counter()
            elapsed = time.perf_counter() - self.fit_start
            if self.epoch_log:
                last = self.epoch_log[-1]
                if elapsed + last["train_s"] + last.get("valid_s", 0.0) > self.cap_seconds:
                    raise TimeCapReached
            w0, c0 = time.perf_counter(), time.process_time()
            loss = super()._train_epoch(train_data, epoch_idx, *a, **kw)
            self.epoch_log.append({"epoch": epoch_idx, "train_s": time.perf_counter() - w0,
                                   "train_cpu_s": time.process_time() - c0,
                                   "loss": float(sum(loss) if isinstance(loss, tuple) else loss)})
            return loss

        def _valid_epoch(self, valid_data, *a, **kw):
            w0, c0 = time.perf_counter(), time.process_time()
            score, result = super()._valid_epoch(valid_data, *a, **kw)
            self.epoch_log[-1].update(valid_s=time.perf_counter() - w0, valid_cpu_s=time.process_time() - c0,
                                      valid_ndcg10=float(score))
            return score, result

    return CappedTrainer


# ----------------------------------------------------------------------------------------------
# independent check of RecBole's numbers: ties counted against the target
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def pessimistic_metrics(model, eval_data, ks=KS):
    model.eval()
    iid = eval_data._dataset.iid_field
    sums = {f"{m}@{k}": 0.0 for m in ("hr", "ndcg", "mrr") for k in ks}
    n = ties = 0
    for interaction, _, _, _ in eval_data:
        scores = model.full_sort_predict(interaction)
        scores[:, 0] = -torch.inf  # padding id, as RecBole does
        target = interaction[iid]
        t = scores.gather(1, target[:, None])
        better = (scores > t).sum(1)
        equal = (scores == t).sum(1) - 1  # other items with exactly the target's score
        rank = (better + equal).double()  # 0-based, worst case among ties
        ties += int((equal > 0).sum())
        n += len(target)
        for k in ks:
            hit = rank < k
            sums[f"hr@{k}"] += float(hit.sum())
            sums[f"ndcg@{k}"] += float((hit / torch.log2(rank + 2)).sum())
            sums[f"mrr@{k}"] += float((hit / (rank + 1)).sum())
    return {k: v / n for k, v in sums.items()}, ties, n


def recbole_to_ours(result) -> dict:
    out = {}
    for k in KS:
        out[f"hr@{k}"] = float(result[f"hit@{k}"])
        out[f"ndcg@{k}"] = float(result[f"ndcg@{k}"])
        out[f"mrr@{k}"] = float(result[f"mrr@{k}"])
    return out


# ----------------------------------------------------------------------------------------------
# environment description
# ----------------------------------------------------------------------------------------------
def machine_info() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                ram_gb = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "ram_gb": ram_gb, "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def versions() -> dict:
    import pandas
    import scipy

    return {"python": platform.python_version(), "recbole": recbole.__version__, "torch": torch.__version__,
            "numpy": np.__version__, "pandas": pandas.__version__, "scipy": scipy.__version__}


# ----------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    args = parse_args(argv)
    args.work_dir = args.work_dir.resolve()
    args.out = args.out.resolve()
    if not args.data.is_file():
        print(f"Beauty.txt not found at {args.data} (pass --data or set BEAUTY_TXT)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = machine_info()
    t_start = time.perf_counter()

    seqs = read_sequences(args.data)
    write_atomic_inter(seqs, args.work_dir)
    # RecBole writes ./log and ./log_tensorboard relative to the working directory: keep them in work/.
    os.chdir(args.work_dir)

    # RecBole's Config also reads "--key=value" pairs from sys.argv; hide ours from it.
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        config = Config(model="SASRec", dataset=DATASET_NAME, config_dict=recbole_config(args))
    finally:
        sys.argv = argv
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    counts = check_loaded(dataset, seqs)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    data_counts = check_split(dataset, train_data, valid_data, test_data, seqs, args.max_len, counts)
    prep_seconds = time.perf_counter() - t_start

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = SASRec(config, train_data._dataset).to(config["device"])
    trainer = make_trainer_class(get_trainer(config["MODEL_TYPE"], config["model"]))(config, model)
    trainer.cap_seconds = args.max_minutes * 60.0

    fit_w0, fit_c0 = time.perf_counter(), time.process_time()
    stopped_by = "max_epochs"
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
        if len(trainer.epoch_log) < args.epochs:
            stopped_by = "early_stopping"
    except TimeCapReached:
        stopped_by = "time_cap"
    fit_wall, fit_cpu = time.perf_counter() - fit_w0, time.process_time() - fit_c0
    log = trainer.epoch_log

    # The checkpoint holds RecBole's Config object, so it cannot be read with torch.load's default
    # weights_only=True (torch >= 2.6); it is our own file, written by trainer.fit above.
    ckpt = torch.load(trainer.saved_model_file, map_location=config["device"], weights_only=False)
    model.load_state_dict(ckpt["state_dict"])
    model.load_other_parameter(ckpt.get("other_parameter"))
    best_epoch = int(ckpt["epoch"])

    evals = {}
    for split, data in (("valid", valid_data), ("test", test_data)):
        w0, c0 = time.perf_counter(), time.process_time()
        res = trainer.evaluate(data, load_best_model=False, show_progress=False)
        evals[split] = (recbole_to_ours(res), time.perf_counter() - w0, time.process_time() - c0)
    check, n_ties, n_test = pessimistic_metrics(model, test_data)

    train_s = sum(e["train_s"] for e in log)
    train_cpu_s = sum(e["train_cpu_s"] for e in log)
    valid_s = sum(e.get("valid_s", 0.0) for e in log)
    valid_cpu_s = sum(e.get("valid_cpu_s", 0.0) for e in log)
    epochs = len(log)
    results = []
    for split in ("valid", "test"):
        metrics, ev_s, ev_cpu = evals[split]
        results.append({
            "model": "recbole-sasrec", "split": split, "metrics": metrics,
            "train_seconds": round(train_s, 2), "train_cpu_seconds": round(train_cpu_s, 2),
            "epochs": epochs, "best_epoch": best_epoch,
            "eval_seconds": round(ev_s, 2), "eval_cpu_seconds": round(ev_cpu, 2),
        })

    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report = {
        "dataset": "amazon-beauty",
        "data": {"source": str(args.data), **data_counts,
                 "conversion": "RecBole atomic .inter (user_id, item_id, timestamp = position in the "
                               "user's sequence); no k-core, no de-duplication, nothing dropped (checked)"},
        "protocol": {
            "split": "leave-one-out per user: last item = test target, second-to-last = validation "
                     "target, the rest = training (RecBole eval_args split LS valid_and_test, order TO, "
                     "group_by user; the user's targets and test history are checked against Beauty.txt)",
            "training_samples": "every prefix of the training part (RecBole sequential data augmentation), "
                                f"history truncated to the last {args.max_len} items",
            "ranking": "full ranking over all 12,101 items, no sampled negatives (eval mode full)",
            "seen_items": "not filtered (RecBole does not mask history items for sequential models; "
                          "only the padding id is excluded)",
            "ties": "RecBole takes the top-k with torch.topk over float32 scores, so tied items are ordered "
                    "by torch.topk's implementation, not against the target. 'test_pessimistic_check' "
                    "recomputes test metrics with ties counted against the target.",
            "metrics": "HR (RecBole 'Hit'; equals Recall with one target), NDCG, MRR at 5/10/20, mean over users",
            "model_selection": "best epoch by valid NDCG@10; that checkpoint is scored on valid and test",
        },
        "model_config": {k: config[k] for k in (
            "n_layers", "n_heads", "hidden_size", "inner_size", "hidden_dropout_prob", "attn_dropout_prob",
            "hidden_act", "loss_type", "MAX_ITEM_LIST_LENGTH", "learning_rate", "train_batch_size",
            "epochs", "stopping_step", "eval_step", "seed", "weight_decay")},
        "training": {
            "stopped_by": stopped_by, "max_minutes": args.max_minutes, "epochs": epochs, "best_epoch": best_epoch,
            "train_seconds": round(train_s, 2), "train_cpu_seconds": round(train_cpu_s, 2),
            "seconds_per_epoch": round(train_s / max(epochs, 1), 2),
            "cpu_seconds_per_epoch": round(train_cpu_s / max(epochs, 1), 2),
            "validation_seconds_total": round(valid_s, 2), "validation_cpu_seconds_total": round(valid_cpu_s, 2),
            "validation_seconds_per_epoch": round(valid_s / max(epochs, 1), 2),
            "fit_wall_seconds": round(fit_wall, 2), "fit_cpu_seconds": round(fit_cpu, 2),
            "data_prep_seconds": round(prep_seconds, 2),
            "torch_num_threads": torch.get_num_threads(),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "epoch_log": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in e.items()} for e in log],
        },
        "test_pessimistic_check": {"metrics": check, "users_with_tied_target": n_ties, "users": n_test},
        "machine": machine,
        "versions": versions(),
        "note": args.note,
        "total_wall_seconds": round(time.perf_counter() - t_start, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print()
    print(f"RecBole {recbole.__version__} SASRec-CE on amazon-beauty (leave-one-out, full ranking)")
    print(f"epochs {epochs} (best {best_epoch}, stopped by {stopped_by}), "
          f"{train_s / max(epochs, 1):.1f} s/epoch train, {valid_s / max(epochs, 1):.1f} s/epoch validation, "
          f"torch threads {torch.get_num_threads()}")
    cols = ["hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr@10"]
    print(f"{'split':<18}" + "".join(f"{c:>9}" for c in cols))
    for r in results:
        print(f"{r['split']:<18}" + "".join(f"{r['metrics'][c]:>9.4f}" for c in cols))
    print(f"{'test (ties vs tgt)':<18}" + "".join(f"{check[c]:>9.4f}" for c in cols))
    print(f"train {train_s:.0f} s wall / {train_cpu_s:.0f} s CPU; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
