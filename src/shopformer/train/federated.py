"""Federated training of the behaviour Transformer across shops that never share their events (Flower).

Each shop is a Flower client holding its own model and sequences; only model weights travel. Every
round the server (Flower's `Server` with its FedAvg strategy) sends the shared weights,
each shop trains `local_epochs` on its own data and returns its weights and its number of training
users, and the strategy averages them weighted by that number; a shop that fails stops the run. Clients run in this process through
an in-process client proxy, so a simulation needs neither Ray nor open ports.

Which weights are shared: shops with one item space (one catalog, users split between shops) share
every parameter, and each learns which items any shop has seen (so an item trained elsewhere keeps
its id vector); shops with different catalogs share what does not depend on the item codes (the
sequence encoder and the text projection, so the text embeddings give them a common item space) and
keep their id and attribute embeddings to themselves. Buffers (frozen features) never travel.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from shopformer.data.sequences import SequenceArrays
from shopformer.errors import ConfigError
from shopformer.models.transformer import BehaviourTransformer
from shopformer.train.config import TrainConfig
from shopformer.train.trainer import Trainer, validation_metrics

__all__ = ["FederatedShop", "FederationResult", "run_federated", "shared_parameter_names"]

logger = logging.getLogger(__name__)

#: Parameters that depend on a shop's item codes or vocabularies (attributes, event types): kept local across catalogs.
_CATALOG_SPECIFIC = ("item_encoder.id_embedding.", "item_encoder.attribute_embedding.", "item_encoder.price_embedding.",
                     "sequence_encoder.event_type.")


@dataclass
class FederatedShop:
    """One shop: its model (built on its own catalog) and its sequences; `train`/`valid` as for `Trainer.fit`."""

    name: str
    model: BehaviourTransformer
    train: SequenceArrays
    valid: SequenceArrays
    history: list[dict] = field(default_factory=list)


@dataclass
class FederationResult:
    """Per-round validation NDCG@10 of every shop, the shared names and Flower's own history."""

    rounds: list[dict]
    shared: list[str]
    flower_history: object


def shared_parameter_names(shops: Sequence[FederatedShop], same_catalog: bool) -> list[str]:
    """The parameter names every shop sends: all of them, or the catalog-independent ones."""
    def sent(shop: FederatedShop) -> list[tuple[str, tuple[int, ...]]]:
        return [(n, tuple(p.shape)) for n, p in shop.model.named_parameters()
                if same_catalog or not n.startswith(_CATALOG_SPECIFIC)]

    expected = sent(shops[0])
    for shop in shops[1:]:
        if sent(shop) != expected:
            raise ConfigError(f"shop {shop.name!r} has another model layout than {shops[0].name!r}: use one model config")
    return [name for name, _ in expected]


def _client(shop: FederatedShop, names: list[str], train_config: TrainConfig, known: np.ndarray | None):
    from flwr.client import NumPyClient

    class ShopClient(NumPyClient):
        def get_parameters(self, config):
            parameters = dict(shop.model.named_parameters())
            return [parameters[n].detach().cpu().numpy() for n in names]

        def fit(self, parameters, config):
            _load(shop.model, names, parameters)
            cfg = train_config.model_copy(update={"seed": train_config.seed + int(config.get("round", 0)), "progress": False})
            trainer = Trainer(shop.model, cfg, known_items=known).fit(shop.train, None)
            users = int(max(1, (shop.train.lengths >= 2).sum()))
            return self.get_parameters({}), users, {"loss": float(trainer.history_[-1]["loss"])}

        def evaluate(self, parameters, config):
            return 0.0, 0, {}

    return ShopClient().to_client()


def _load(model: BehaviourTransformer, names: list[str], arrays: list[np.ndarray]) -> None:
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, array in zip(names, arrays):
            parameters[name].copy_(torch.from_numpy(np.asarray(array)))


def _seen_anywhere(shops: Sequence[FederatedShop]) -> np.ndarray:
    n_items = shops[0].model.n_items
    seen = np.zeros(n_items, dtype=bool)
    for shop in shops:
        seen |= shop.train.item_counts(n_items) > 0
    return seen


def run_federated(shops: Sequence[FederatedShop], train_config: TrainConfig, *, rounds: int, same_catalog: bool,
                  filter_seen: bool = True) -> FederationResult:
    """Trains `shops` together for `rounds` Flower FedAvg rounds; every shop's model ends with the final
    shared weights (and its own local ones). `train_config.epochs` is the local epochs per round."""
    try:
        from flwr.common import ndarrays_to_parameters
        from flwr.server import Server, SimpleClientManager
        from flwr.server.strategy import FedAvg
    except ImportError:
        raise ConfigError("federated training needs flwr: pip install 'shopformer[privacy]'") from None
    if rounds < 1 or len(shops) < 2:
        raise ConfigError("federated training needs two or more shops and at least one round")
    if train_config.dp_epsilon is not None:  # every round would spend the whole epsilon again, unaccounted
        raise ConfigError("federated training does not take train.dp_epsilon: privacy across rounds is not accounted")
    names = shared_parameter_names(shops, same_catalog)
    known = _seen_anywhere(shops) if same_catalog else None
    manager = SimpleClientManager()
    for index, shop in enumerate(shops):
        manager.register(_proxy_class()(str(index), _client(shop, names, train_config, known)))
    start = dict(shops[0].model.named_parameters())
    rows: list[dict] = []

    def after_round(server_round: int, arrays, config):
        metrics = {}
        for shop in shops:
            _load(shop.model, names, arrays)
            metrics[shop.name] = round(validation_metrics(shop.model, shop.valid, filter_seen=filter_seen)["ndcg@10"], 5)
        rows.append({"round": server_round, "valid_ndcg@10": metrics})
        logger.info("federated round %d/%d: validation NDCG@10 %s", server_round, rounds, metrics)

    class StrictFedAvg(FedAvg):
        def aggregate_fit(self, server_round, results, failures):
            if failures:  # Flower would carry on with the other shops' average: a lost shop is an error here
                failure = failures[0]
                raise failure if isinstance(failure, BaseException) else RuntimeError(f"a shop failed in round {server_round}")
            return super().aggregate_fit(server_round, results, failures)

    strategy = StrictFedAvg(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=len(shops), min_available_clients=len(shops),
                      initial_parameters=ndarrays_to_parameters([start[n].detach().numpy() for n in names]),
                      on_fit_config_fn=lambda r: {"round": r}, evaluate_fn=after_round)
    server = Server(client_manager=manager, strategy=strategy)
    server.set_max_workers(1)  # shops train one after another: each trainer sets torch's global threads and seed
    history, _ = server.fit(num_rounds=rounds, timeout=None)
    return FederationResult(rows, names, history)


@functools.cache
def _proxy_class():
    from flwr.common import DisconnectRes
    from flwr.server.client_proxy import ClientProxy

    class InProcessProxy(ClientProxy):
        """A Flower client proxy that calls its client directly, in this process."""

        def __init__(self, cid: str, client) -> None:
            super().__init__(cid)
            self.client = client

        def get_properties(self, ins, timeout, group_id):
            return self.client.get_properties(ins)

        def get_parameters(self, ins, timeout, group_id):
            return self.client.get_parameters(ins)

        def fit(self, ins, timeout, group_id):
            return self.client.fit(ins)

        def evaluate(self, ins, timeout, group_id):
            return self.client.evaluate(ins)

        def reconnect(self, ins, timeout, group_id):
            return DisconnectRes(reason="")

    return InProcessProxy
