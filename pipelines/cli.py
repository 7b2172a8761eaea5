"""`nba`: one command line for every stage of the loop (see README)."""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Annotated

import typer

from config import SettingsError, load_settings

app = typer.Typer(help="Omnichannel next-best-action: data -> insight -> reach -> feedback -> optimisation.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
features_app = typer.Typer(help="Feature engineering and the Feast store.", no_args_is_help=True)
identity_app = typer.Typer(help="One-ID: resolve identifiers into persons.", no_args_is_help=True)
models_app = typer.Typer(help="Registered models in MLflow.", no_args_is_help=True)
app.add_typer(features_app, name="features")
app.add_typer(identity_app, name="identity")
app.add_typer(models_app, name="models")

TRAINABLE = ("churn", "propensity", "recommender", "bandit", "all")


def _quiet_libraries() -> None:
    """Keep the stage progress lines readable: library chatter goes below WARNING."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("mlflow", "feast", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _settings():
    _quiet_libraries()
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def simulate(customers: Annotated[int, typer.Option(min=1)] = None, days: Annotated[int, typer.Option(min=30)] = None,
             seed: int = None):
    """Simulate a synthetic omnichannel world into the state folder (raw events + ground truth)."""
    from pipelines import stages

    s = _settings()
    stages.simulate(s, customers or s.world.customers, days or s.world.days,
                    s.world.seed if seed is None else seed)


@app.command()
def ingest(sources: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False)] = None):
    """Validate raw event files into the lake; bad rows are quarantined with their reason."""
    from pipelines import stages

    stages.ingest(_settings(), sources)


@identity_app.command("resolve")
def identity_resolve():
    """Union co-occurring identifiers into stable person ids."""
    from pipelines import stages

    stages.resolve_identities(_settings())


@features_app.command("build")
def features_build():
    """Compute point-in-time feature snapshots from the lake."""
    from pipelines import stages

    stages.build_features(_settings())


@features_app.command("apply")
def features_apply():
    """Register entities, feature views and services in the Feast registry."""
    from pipelines import stages

    stages.feast_apply(_settings())


@features_app.command("materialize")
def features_materialize():
    """Load the latest feature values into the Feast online store."""
    from pipelines import stages

    stages.feast_materialize(_settings())


@app.command()
def train(model: Annotated[str, typer.Argument(help=f"one of {', '.join(TRAINABLE)}")] = "all", seed: int = 0):
    """Train, compare with the baseline, log and register in MLflow, and make the new version champion."""
    from pipelines import stages

    if model not in TRAINABLE:
        typer.echo(f"unknown model {model!r}; expected one of {', '.join(TRAINABLE)}", err=True)
        raise typer.Exit(2)
    stages.train(_settings(), model, seed)


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json", help="one JSON list of objects")] = False):
    """Each registered model's champion with its headline metric against the baseline."""
    from training.registry import list_models

    rows = list_models(_settings())
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no registered models yet: run `nba train all` or `nba demo`")
    for r in rows:
        typer.echo(f"{r['name']:<14} v{r['version']:<4} aliases={','.join(r['aliases']) or '-':<20} "
                   f"{r['metric']} {r['value']:.4f} vs baseline {r['baseline_value']:.4f}")


@app.command()
def serve(port: Annotated[int, typer.Option(min=1, max=65535)] = None):
    """Serve the current champions over HTTP until interrupted."""
    from pipelines.server import start_server, stop_server, wait_ready

    s = _settings()
    port = port or s.serving.port
    url = f"http://{s.serving.host}:{port}"
    process = start_server(s, port)
    try:
        wait_ready(url, process)
        typer.echo(f"serving at {url} (OpenAPI docs at {url}/docs); logs in {s.home / 'logs'}")
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_server(process)


@app.command()
def demo(customers: Annotated[int, typer.Option(min=50)] = None, days: Annotated[int, typer.Option(min=60)] = None,
         seed: int = None, serve: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
         port: Annotated[int, typer.Option(min=1, max=65535)] = None):
    """The whole loop on a small world: simulate, ingest, One-ID, features, Feast, train, serve, call."""
    from pipelines.demo import run_demo

    s = _settings()
    run_demo(s, customers or s.world.customers, days or s.world.days,
             s.world.seed if seed is None else seed, serve, port or s.serving.port)


if __name__ == "__main__":
    app()
