"""Checks that a saved bundle still gives bit-identical top-10 lists under this code.

    .venv/bin/python benchmarks/layout_equivalence.py record --bundle BUNDLE --out REF.json
    .venv/bin/python benchmarks/layout_equivalence.py check --bundle BUNDLE --ref REF.json [--json OUT]

`record` reads Amazon Beauty (../shared/datasets/amazon-beauty) as `shopformer benchmark next-item --format
s3rec` does, fits a Shopformer with a fixed seed and epoch count, saves it to BUNDLE, loads it back and writes
the top-10 lists of 3,000 sampled users to REF.json: item ids in rank order, float32 scores as big-endian hex,
a sha256 over the table, the bundle's configs, library versions and the machine. `check` loads BUNDLE,
recommends for the same users, prints the comparison, writes OUT and exits 1 if any list or score differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import torch

from shopformer import Shopformer
from shopformer.runtime import machine_info, versions

BEAUTY = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "amazon-beauty"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "layout_equivalence.json"
TRAIN = {"epochs": 3, "seed": 0, "num_threads": 1, "progress": False}
N_USERS, K, SAMPLE_SEED = 3000, 10, 0
BUNDLE_KEYS = ("model", "train", "text_model", "n_items", "transition_weight", "neighbour_weight", "best_epoch")


def load_beauty():
    """The prepared Beauty data and its user ids, prepared as the next-item benchmark does. The one place
    that names modules below the package top level: `read_dataset` (the reader registry) is in
    `shopformer.data.formats`, `prepare` and `PrepareConfig` in `shopformer.data.prepared`."""
    from shopformer.data.formats import read_dataset
    from shopformer.data.prepared import PrepareConfig, prepare

    dataset = read_dataset("s3rec", BEAUTY / "Beauty.txt", item_attributes_path=BEAUTY / "Beauty_item2attributes.json",
                           datamaps_path=BEAUTY / "datamaps.json", item_titles_path=BEAUTY / "item_title_prefix.txt")
    prepared = prepare(dataset, PrepareConfig(dedupe_consecutive=False, min_user_events=1, min_item_events=1))
    return prepared, prepared.user_encoder.classes_.to_list()


def top_lists(bundle: Path, users: list[str]) -> tuple[dict, float]:
    """{user: [[item, float32 score as big-endian hex], ...] in rank order} from the loaded bundle, and seconds."""
    started = time.perf_counter()
    table = Shopformer.load(bundle).recommend(users=users, k=K).sort("user_id", "rank", maintain_order=True)
    lists: dict[str, list] = {user: [] for user in users}
    scores = table["score"].to_numpy().astype(">f4")
    for user, item, score in zip(table["user_id"].to_list(), table["item_id"].to_list(), scores):
        lists[user].append([item, score.tobytes().hex()])
    return lists, time.perf_counter() - started


def digest(lists: dict) -> str:
    """sha256 over the (user, item, rank, score bytes) table, users in the recorded order."""
    sha = hashlib.sha256()
    for user, rows in lists.items():
        for rank, (item, score) in enumerate(rows, start=1):
            sha.update(f"{user}\t{item}\t{rank}\t{score}\n".encode())
    return sha.hexdigest()


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    print(f"written to {path}")


def record(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    prepared, user_ids = load_beauty()
    read_seconds = time.perf_counter() - started
    Shopformer(train=TRAIN).fit(prepared).save(args.bundle)
    fit_seconds = time.perf_counter() - started - read_seconds
    users = random.Random(SAMPLE_SEED).sample(sorted(user_ids), N_USERS)
    lists, recommend_seconds = top_lists(args.bundle, users)
    meta = json.loads((args.bundle / "bundle.json").read_text(encoding="utf-8"))
    reference = {"dataset": str(BEAUTY), "k": K, "users": users, "top": lists, "sha256": digest(lists),
                 "bundle_config": {key: meta[key] for key in BUNDLE_KEYS}, "versions": versions(),
                 "machine": machine_info(), "seconds": {"read_prepare": round(read_seconds, 1),
                 "fit_save": round(fit_seconds, 1), "load_recommend": round(recommend_seconds, 2)}}
    write_json(args.out, reference)
    print(f"recorded {len(users)} users: sha256 {reference['sha256']}, seconds {reference['seconds']}")
    return 0


def check(args: argparse.Namespace) -> int:
    reference = json.loads(args.ref.read_text(encoding="utf-8"))
    users, expected = reference["users"], reference["top"]
    lists, seconds = top_lists(args.bundle, users)
    lists_differ = [u for u in users if [i for i, _ in lists[u]] != [i for i, _ in expected[u]]]
    scores_differ = [u for u in users if [s for _, s in lists[u]] != [s for _, s in expected[u]]]
    sha = digest(lists)
    result = {"bundle": str(args.bundle), "reference": str(args.ref), "users": len(users),
              "users_with_different_top10": len(lists_differ), "users_with_different_scores": len(scores_differ),
              "scores_bit_identical": not scores_differ, "sha256_reference": reference["sha256"], "sha256_now": sha,
              "identical": sha == reference["sha256"] and not lists_differ and not scores_differ,
              "differing_users": [u for u in users if lists[u] != expected[u]][:10],
              "load_recommend_seconds": round(seconds, 2), "versions": versions(), "machine": machine_info(),
              "reference_machine": reference["machine"]}
    for key in ("users", "users_with_different_top10", "users_with_different_scores", "scores_bit_identical",
                "sha256_reference", "sha256_now", "load_recommend_seconds", "identical"):
        print(f"{key:<30} {result[key]}")
    write_json(args.json, result)
    return 0 if result["identical"] else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="fit, save and record the reference top-10 lists")
    rec.add_argument("--bundle", type=Path, required=True, help="folder the fitted bundle is saved to")
    rec.add_argument("--out", type=Path, required=True, help="reference JSON to write")
    chk = commands.add_parser("check", help="compare a bundle's top-10 lists with a reference")
    chk.add_argument("--bundle", type=Path, required=True, help="bundle folder written by `record`")
    chk.add_argument("--ref", type=Path, required=True, help="reference JSON written by `record`")
    chk.add_argument("--json", type=Path, default=DEFAULT_OUT,
                     help="comparison JSON to write (default: benchmarks/results/layout_equivalence.json)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # recommend also runs on the bundle's train.num_threads (1 here)
    sys.exit(record(args) if args.command == "record" else check(args))


if __name__ == "__main__":
    main()
