"""What the RecBole SASRec peer benchmark hands to RecBole, and the checks that RecBole used it as intended.

- ``Beauty.txt`` (``uid i1 i2 ...`` per line, in time order) is written as a RecBole atomic ``.inter``
  file whose timestamp is the position in the user's sequence, so ``order: TO`` with
  ``split: {LS: valid_and_test}`` is exactly leave-one-out.
- ``recbole_config`` is the run's whole RecBole configuration: data, evaluation, model and training.
- ``check_loaded`` and ``check_split`` abort unless RecBole kept every user, item and interaction and
  split them leave-one-out exactly as ``Beauty.txt`` says.

Imported by ``recbole_sasrec.py`` (the entry point) from this folder; needs no RecBole import itself.
"""

from __future__ import annotations

from pathlib import Path

KS = (5, 10, 20)  # cut-offs of HR/NDCG/MRR, in RecBole's evaluator and in the tie check
DATASET_NAME = "beauty"


def read_sequences(path: Path) -> dict[str, list[str]]:
    seqs: dict[str, list[str]] = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts:
                seqs[parts[0]] = parts[1:]
    return seqs


def write_atomic_inter(seqs: dict[str, list[str]], work_dir: Path) -> Path:
    """One row per interaction; timestamp = position in the user's sequence (unique per user)."""
    ds_dir = work_dir / DATASET_NAME
    ds_dir.mkdir(parents=True, exist_ok=True)
    path = ds_dir / f"{DATASET_NAME}.inter"
    tmp = path.with_suffix(".inter.tmp")
    with open(tmp, "w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for uid, items in seqs.items():
            for pos, iid in enumerate(items):
                f.write(f"{uid}\t{iid}\t{pos}\n")
    tmp.replace(path)
    return path


def recbole_config(args) -> dict:
    return {
        # data: keep everything, no k-core, no de-duplication
        "data_path": str(args.work_dir),
        "checkpoint_dir": str(args.work_dir / "saved"),
        "field_separator": "\t",
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        "rm_dup_inter": None,
        "val_interval": None,
        "MAX_ITEM_LIST_LENGTH": args.max_len,
        # evaluation: leave-one-out by time, grouped by user, full ranking
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "metrics": ["Hit", "NDCG", "MRR"],
        "topk": list(KS),
        "valid_metric": "NDCG@10",
        "valid_metric_bigger": True,
        "eval_batch_size": args.eval_batch_size,
        "metric_decimal_place": 6,
        # model: SASRec, CE over all items (no sampled negatives)
        "n_layers": 2,
        "n_heads": 2,
        "hidden_size": 64,
        "inner_size": 256,
        "hidden_dropout_prob": 0.5,
        "attn_dropout_prob": 0.5,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
        "loss_type": "CE",
        "train_neg_sample_args": None,
        # training
        "epochs": args.epochs,
        "train_batch_size": args.train_batch_size,
        "learner": "adam",
        "learning_rate": args.lr,
        "weight_decay": 0.0,
        "eval_step": 1,
        "stopping_step": args.stopping_step,
        "seed": args.seed,
        "reproducibility": True,
        "use_gpu": False,
        "show_progress": False,
        "log_wandb": False,
        "save_dataset": False,
        "save_dataloaders": False,
        "worker": 0,
    }


def check_loaded(dataset, seqs):
    """Abort unless RecBole loaded every user, item and interaction (call before data_preparation,
    which replaces the interactions by prefix samples in place)."""
    n_users, n_items = len(seqs), len({i for s in seqs.values() for i in s})
    n_inter = sum(len(s) for s in seqs.values())
    # RecBole reserves internal id 0 for padding.
    assert dataset.user_num - 1 == n_users, (dataset.user_num - 1, n_users)
    assert dataset.item_num - 1 == n_items, (dataset.item_num - 1, n_items)
    assert dataset.inter_num == n_inter, (dataset.inter_num, n_inter)
    return n_users, n_items, n_inter


def check_split(dataset, train_data, valid_data, test_data, seqs, max_len, counts):
    """Abort unless RecBole's split is exactly leave-one-out on the untouched data."""
    n_users, n_items, n_inter = counts
    iid, uid = dataset.iid_field, dataset.uid_field
    list_field, len_field = dataset.item_id_list_field, dataset.item_list_length_field
    tok = lambda field, ids: dataset.id2token(field, ids)  # noqa: E731
    for name, data, offset in (("valid", valid_data, 2), ("test", test_data, 1)):
        feat = data._dataset.inter_feat
        assert len(feat) == n_users, (name, len(feat), n_users)
        users = tok(uid, feat[uid].numpy())
        targets = tok(iid, feat[iid].numpy())
        lengths = feat[len_field].numpy()
        hist = feat[list_field].numpy()
        for r, u in enumerate(users):
            s = seqs[u]
            assert targets[r] == s[-offset], (name, u)
            expect = s[:-offset][-max_len:]
            assert lengths[r] == len(expect), (name, u)
            if name == "test" or r < 200:  # full history check on test, spot check on valid
                assert list(tok(iid, hist[r, : lengths[r]])) == expect, (name, u)
    expected_train = n_inter - 3 * n_users  # every position except the first, the valid and the test
    assert len(train_data._dataset.inter_feat) == expected_train, (len(train_data._dataset.inter_feat), expected_train)
    return {"users": n_users, "items": n_items, "interactions": n_inter,
            "train_samples": expected_train, "valid_users": n_users, "test_users": n_users}
