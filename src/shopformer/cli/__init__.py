"""The `shopformer` command line."""

from __future__ import annotations

import typer

from shopformer.cli.benchmark import benchmark_app
from shopformer.cli.data import data_app
from shopformer.cli.fraud_benchmark import EXAMPLES as FRAUD_BENCHMARK_EXAMPLES
from shopformer.cli.fraud_benchmark import fraud_benchmark
from shopformer.cli.insight import PROFILE_EXAMPLES, SEGMENTS_EXAMPLES, profile, segments
from shopformer.cli.insight_report import REPORT_EXAMPLES, report
from shopformer.cli.model import TRAIN_EXAMPLES, evaluate, recommend, train
from shopformer.cli.policy import policy_app
from shopformer.cli.policy_benchmark import EXAMPLES as POLICY_BENCHMARK_EXAMPLES
from shopformer.cli.policy_benchmark import (
    SIMULATE_EXAMPLES,
    SLATE_EXAMPLES,
    policy_benchmark,
    simulate_benchmark,
    slate_benchmark,
)
from shopformer.cli.privacy import privacy_app
from shopformer.cli.privacy_benchmark import EXAMPLES as PRIVACY_BENCHMARK_EXAMPLES
from shopformer.cli.privacy_benchmark import privacy_benchmark
from shopformer.cli.quickstart import quickstart
from shopformer.cli.score import SCORE_EXAMPLES, score
from shopformer.cli.serve import SERVE_EXAMPLES, serve
from shopformer.cli.sessions_benchmark import EXAMPLES as SESSIONS_BENCHMARK_EXAMPLES
from shopformer.cli.sessions_benchmark import sessions_benchmark
from shopformer.cli.tasks import (
    BENCHMARK_EXAMPLES,
    PREDICT_EXAMPLES,
    benchmark_tasks,
    predict,
    train_tasks,
)
from shopformer.cli.tasks import TRAIN_EXAMPLES as TRAIN_TASKS_EXAMPLES
from shopformer.cli.uplift_benchmark import EXAMPLES as UPLIFT_BENCHMARK_EXAMPLES
from shopformer.cli.uplift_benchmark import uplift_benchmark

app = typer.Typer(
    name="shopformer",
    help="Shopformer: predictions of what each shop user will do next, from the shop's event log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.add_typer(data_app, name="data")
benchmark_app.command("tasks", epilog=BENCHMARK_EXAMPLES)(benchmark_tasks)
benchmark_app.command("privacy", epilog=PRIVACY_BENCHMARK_EXAMPLES)(privacy_benchmark)
benchmark_app.command("policy", epilog=POLICY_BENCHMARK_EXAMPLES)(policy_benchmark)
benchmark_app.command("uplift", epilog=UPLIFT_BENCHMARK_EXAMPLES)(uplift_benchmark)
benchmark_app.command("simulate", epilog=SIMULATE_EXAMPLES)(simulate_benchmark)
benchmark_app.command("slate", epilog=SLATE_EXAMPLES)(slate_benchmark)
benchmark_app.command("sessions", epilog=SESSIONS_BENCHMARK_EXAMPLES)(sessions_benchmark)
benchmark_app.command("fraud", epilog=FRAUD_BENCHMARK_EXAMPLES)(fraud_benchmark)
app.add_typer(benchmark_app, name="benchmark")
app.add_typer(privacy_app, name="privacy")
app.add_typer(policy_app, name="policy")
app.command("quickstart")(quickstart)
app.command("train", epilog=TRAIN_EXAMPLES)(train)
app.command("evaluate")(evaluate)
app.command("recommend")(recommend)
app.command("score", epilog=SCORE_EXAMPLES)(score)
app.command("serve", epilog=SERVE_EXAMPLES)(serve)
app.command("train-tasks", epilog=TRAIN_TASKS_EXAMPLES)(train_tasks)
app.command("predict", epilog=PREDICT_EXAMPLES)(predict)
app.command("profile", epilog=PROFILE_EXAMPLES)(profile)
app.command("segments", epilog=SEGMENTS_EXAMPLES)(segments)
app.command("report", epilog=REPORT_EXAMPLES)(report)


def main() -> None:
    """Console-script entry point."""
    app()
