"""The demo shop: a deterministic synthetic shop (catalog, users, sessions, bots, fraud) with its ground truth."""

from shopformer.data.synth.shop import DemoShopConfig, DemoShopFiles, demo_population, generate_demo_shop

__all__ = ["DemoShopConfig", "DemoShopFiles", "demo_population", "generate_demo_shop"]
