"""`shopformer quickstart`: the whole data flow on the bundled demo shop in one command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import polars as pl
import typer
from rich.panel import Panel

from shopformer.cli.common import console, fresh_file, reports_errors
from shopformer.cli.report import show_ingest_report, show_table, show_training_result
from shopformer.cli.tasks import split_names
from shopformer.data.ingest import ingest_files
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.schema import Dataset
from shopformer.data.summary import summarize
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.predict.estimator import Shopformer
from shopformer.predict.insight import BundleInsight
from shopformer.report.html import write_report
from shopformer.tasks.registry import MODEL_FACTORIES

DEFAULT_OUT = Path("shopformer-output/quickstart")


@reports_errors
def quickstart(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo shop, prepared data and reports.")] = DEFAULT_OUT,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the demo shop generator.")] = 0,
    users: Annotated[Optional[int], typer.Option("--users", help="Number of demo-shop users (default: the generator's).")] = None,
    train_minutes: Annotated[float, typer.Option("--train-minutes", help="Time budget for training the recommender.")] = 3.0,
    task_model: Annotated[
        str, typer.Option("--task-model", help="Task model for intent, propensity and churn (shopformer: minutes more).")
    ] = "lightgbm",
) -> None:
    """Generate the demo shop, ingest, validate, prepare and summarise it, then train and recommend.

    [bold]Example[/]: shopformer quickstart --out /tmp/demo --seed 1
    """
    split_names(task_model, list(MODEL_FACTORIES), "task model")  # before minutes of training, not after
    out.mkdir(parents=True, exist_ok=True)
    shop_config = DemoShopConfig(seed=seed, **({"n_users": users} if users else {}))
    console.print(Panel.fit(f"Demo shop: {shop_config.n_users} users, seed {seed} → {out}", title="Shopformer quickstart"))
    files = generate_demo_shop(out / "demo-shop", shop_config)

    ingested = ingest_files(files.events, files.catalog, name="demo-shop")
    show_ingest_report(ingested.result)
    ingested.result.write_report(out / "ingest")

    prepared = prepare(ingested.dataset, PrepareConfig(), progress=True)
    prepared.save(out / "prepared")
    ingested.config.to_yaml(out / "prepared" / "ingest_config.yaml")

    summary = summarize(prepared.events, prepared.catalog)
    summary.render(console)
    summary.plot(out / "summary.png")
    (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")
    bundle = _train_and_recommend(prepared, out / "bundle", train_minutes)
    _fit_and_show_tasks(prepared, bundle, task_model)
    with console.status("Segmenting the users (vectors, RFM and predictions)"):
        segments = BundleInsight.open(bundle).fit_segments()
    console.print(f"{segments.k} segments: {', '.join(segments.names)} (shopformer segments --bundle {bundle})", highlight=False)
    with console.status("Writing the HTML report (funnel, cohorts, segments, predictions, anomalies)"):
        report = write_report(bundle, out / "report.html")
    console.print(f"\n[green]Done.[/] Prepared data in {out / 'prepared'}, plot in {out / 'summary.png'}, "
                  f"quarantined rows in {out / 'ingest'}, model bundle in {bundle}, report in {report}.\n"
                  f"Next: shopformer recommend --bundle {bundle} --user {prepared.user_encoder.classes[0]} -k 5")
    _print_serving_hint(bundle, prepared.user_encoder.classes[0])


def _train_and_recommend(prepared, bundle: Path, minutes: float) -> Path:
    """Fits the behaviour Transformer (text + attributes + price) within `minutes`, shows a few users' top items."""
    console.print(Panel.fit(f"Training the behaviour Transformer ({minutes:g} min budget)", title="train"))
    model = Shopformer(train={"max_minutes": minutes}).fit(prepared, metrics_path=fresh_file(bundle / "metrics.jsonl"))
    model.save(bundle)
    show_training_result(model, bundle)
    users = prepared.user_encoder.classes[:3].to_list()
    titles = prepared.catalog.frame.select("item_id", "title")
    recommendations = model.recommend(users=users, k=5).join(titles, on="item_id", how="left", maintain_order="left")
    show_table(recommendations, "Top 5 items for three demo users")
    return bundle


#: Tasks the quickstart fits into the bundle (all of them: `shopformer train-tasks --demo --bundle DIR`).
QUICKSTART_TASKS = ("intent", "propensity", "churn")


def _fit_and_show_tasks(prepared, bundle: Path, model: str) -> None:
    """Fits calibrated task models into the bundle and shows the likeliest buyers and churners.

    LightGBM by default: seconds, where the Shopformer task models take minutes on two cores.
    """
    from shopformer.predict.tasks import TaskPredictor, bundle_shared

    console.print(Panel.fit(f"Fitting the {model} task models: {', '.join(QUICKSTART_TASKS)}", title="predict"))
    dataset = Dataset(prepared.name, prepared.events, prepared.catalog)
    predictor = TaskPredictor.fit(dataset, QUICKSTART_TASKS, model=model, shared=bundle_shared(bundle, model))
    predictor.save(bundle)
    # Sessions of the log's last day: the visits a shop could still act on.
    intent = predictor.predict_proba("intent").filter(pl.col("cutoff") > predictor.now - 86_400)
    show_table(_readable_times(intent.sort("probability", descending=True).head(5)),
               "Sessions of the last day most likely to end with a purchase")
    churn = predictor.predict_proba("churn").sort("probability", descending=True).head(5)
    show_table(_readable_times(churn), f"Users most likely to churn (no activity in the next {predictor.config.horizon_days} days)")
    console.print(f"More: shopformer predict intent --bundle {bundle} --top 20", highlight=False)


def _readable_times(table: pl.DataFrame) -> pl.DataFrame:
    """Cut-offs as UTC date-times rather than unix seconds."""
    return table.with_columns(pl.from_epoch("cutoff", time_unit="s").dt.strftime("%Y-%m-%d %H:%M"))


def _print_serving_hint(bundle: Path, user: str) -> None:
    """How to serve the bundle over HTTP, and a request that works against it."""
    console.print(f"Serve it: shopformer serve --bundle {bundle} --port 8000\n"
                  f"Then:     curl 'http://127.0.0.1:8000/v1/users/{user}/recommendations?k=5'",
                  highlight=False, markup=False, soft_wrap=True)
