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
catalog_app = typer.Typer(help="The action catalog (config/actions.yaml).", no_args_is_help=True)
app.add_typer(features_app, name="features")
app.add_typer(identity_app, name="identity")
app.add_typer(models_app, name="models")
app.add_typer(catalog_app, name="catalog")

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
def ingest(sources: Annotated[list[Path], typer.Argument(exists=True)] = None):
    """Validate raw event files (or folders of them; default: everything under raw/) into the lake."""
    from pipelines import stages

    stages.ingest(_settings(), sources)


@identity_app.command("resolve")
def identity_resolve(since: Annotated[str, typer.Option(
        help="incremental: add only lake events at or after this date (ISO) to the stored state")] = None):
    """Link identifiers into persons (config/identity.yaml); merges and splits go to identity/merges.parquet."""
    import pandas as pd

    from pipelines import stages

    stamp = None
    if since is not None:
        try:
            stamp = pd.Timestamp(since)
        except ValueError:
            typer.echo(f"--since: not a date: {since!r}", err=True)
            raise typer.Exit(2) from None
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    stages.resolve_identities(_settings(), since=stamp)


@identity_app.command("report")
def identity_report_cmd(as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False):
    """Precision/recall of One-ID against the simulator's ground truth (evaluation only)."""
    import pandas as pd

    from features.identity import identity_report, read_identity_map, read_identity_state

    s = _settings()
    truth_file = s.truth_dir / "identifiers.parquet"
    if not truth_file.exists() or not (s.identity_dir / "identity_map.parquet").exists():
        typer.echo("no ground truth or identity map: run `nba simulate`, `nba ingest`, `nba identity resolve`",
                   err=True)
        raise typer.Exit(2)
    state = read_identity_state(s.identity_dir)
    report = identity_report(read_identity_map(s.identity_dir), pd.read_parquet(truth_file), s.id_salt(),
                             graph=state.graph if state else None)
    if as_json:
        typer.echo(json.dumps(report))
        return
    for key, value in report.items():
        typer.echo(f"{key:<30} {value:.4f}" if isinstance(value, float) else f"{key:<30} {value:,}")


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
def features_materialize(
        fast: Annotated[bool, typer.Option("--fast/--feast", help="fast SQLite writer (default) or Feast's own "
                                                                 "materialize; non-SQLite stores always use Feast")] = True):
    """Load the latest feature values into the Feast online store."""
    from pipelines import stages

    stages.feast_materialize(_settings(), use_feast=not fast)


@app.command()
def push(files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False,
                                                     help="raw-schema event files (parquet, CSV, JSON lines)")]):
    """Push events: ingest them and refresh their persons' online features right away."""
    from pipelines import stages

    stages.push(_settings(), files)


@app.command()
def train(model: Annotated[str, typer.Argument(help=f"one of {', '.join(TRAINABLE)}")] = "all", seed: int = 0,
          data: Annotated[Path, typer.Option(help="train churn|propensity on this CSV/parquet table instead")] = None,
          target: Annotated[str, typer.Option(help="with --data: the 0/1 (or two-valued) label column")] = None,
          positive: Annotated[str, typer.Option(help="with --data: the target value that counts as 1")] = None,
          time_column: Annotated[str, typer.Option(help="with --data: split by this date column")] = None,
          register_as: Annotated[str, typer.Option(help="with --data: registered name (default MODEL_byod)")] = None,
          trials: Annotated[int, typer.Option(min=1, help="with --data: Optuna trials")] = None,
          as_json: Annotated[bool, typer.Option("--json", help="with --data: print one JSON object")] = False):
    """Train, compare with the baseline, log and register in MLflow, and make the new version champion.

    With --data FILE --target COL, train churn or propensity on your own table (registered as MODEL_byod).
    """
    from pipelines import stages

    if model not in TRAINABLE:
        typer.echo(f"unknown model {model!r}; expected one of {', '.join(TRAINABLE)}", err=True)
        raise typer.Exit(2)
    if data is not None or target is not None:
        _train_byod(model, data, target, positive, time_column, register_as, trials, seed, as_json)
        return
    stages.train(_settings(), model, seed)


def _train_byod(model, data, target, positive, time_column, register_as, trials, seed, as_json) -> None:
    from training.byod import DataError, train_byod

    if data is None or target is None:
        typer.echo("--data FILE and --target COLUMN go together", err=True)
        raise typer.Exit(2)
    settings = _settings()
    try:
        result = train_byod(settings, data, kind=model, target=target, positive=positive, time_column=time_column,
                            register_as=register_as, n_trials=trials, seed=seed)
    except DataError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    typer.echo(f"{result.name} v{result.version}: held-out AUC {result.auc:.4f} vs baseline "
               f"{result.baseline_auc:.4f} ({result.n_test} held-out rows, {result.split} split, "
               f"{len(result.features)} features, positive = {result.positive!r})")
    for column, reason in result.dropped_columns.items():
        typer.echo(f"  left out {column!r}: {reason}")


@app.command()
def tune(model: Annotated[str, typer.Argument(help="churn or propensity")],
         trials: Annotated[int, typer.Option(min=1)] = 30,
         storage: Annotated[str, typer.Option(help="Optuna storage URL (default sqlite under the state folder)")] = None,
         study: Annotated[str, typer.Option(help="study name; the same name resumes (default nba-MODEL)")] = None,
         seed: int = 0):
    """Tune a model's LightGBM parameters with Optuna in a shared study; log the best parameters to MLflow."""
    from training.tuning import run_tune

    settings = _settings()
    try:
        result = run_tune(settings, model, trials=trials, storage=storage, study_name=study, seed=seed)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"study {result['study']}: {result['n_trials']} trials in total, best valid AUC "
               f"{result['best_value']:.4f}; best parameters {json.dumps(result['best_params'])} "
               f"(MLflow run {result['run_id']})")


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


@catalog_app.command("check")
def catalog_check(path: Annotated[Path, typer.Option(help="catalog file; default config/actions.yaml")] = None):
    """Validate the catalog (and policies, experiments, segments); exit 2 listing every error."""
    from pipelines.decisioning import check_decision_config

    errors, summary = check_decision_config(path or _settings().actions_file)
    for line in errors:
        typer.echo(f"error: {line}", err=True)
    if errors:
        raise typer.Exit(2)
    typer.echo(summary)


@app.command("decide-batch")
def decide_batch(segment: Annotated[str, typer.Option(help="segment name from config/segments.yaml")],
                 channel: Annotated[str, typer.Option(help="outbound channel to decide for")],
                 limit: Annotated[int, typer.Option(min=1, max=20)] = 1,
                 source: Annotated[str, typer.Option(help="features from 'offline' (latest snapshot) or "
                                                          "'online' (Feast online store)")] = "offline"):
    """Decide for every person of a segment on one channel; decisions go to parquet under batches/ and to the
    decision log (feedback on them is accepted; caps count their contacts)."""
    from pipelines.decisioning import run_batch

    try:
        path, n_members, n_rows, seconds = run_batch(_settings(), segment, channel, limit, source)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{n_members} persons in {segment!r}, {n_rows} rows in {seconds:.1f} s -> {path}")


@models_app.command("report")
def models_report(as_json: Annotated[bool, typer.Option("--json", help="one JSON list of objects")] = False):
    """Each champion's metrics against its baseline and, on a simulated world, against the oracle."""
    from training.evaluation import models_report as build_report

    rows = build_report(_settings())
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no registered models yet: run `nba train all` or `nba demo`")
    for r in rows:
        value, base = r.get("value"), r.get("baseline_value")
        line = (f"{r['name']:<16} v{r['version']:<4} {r['metric']} "
                f"{'-' if value is None else f'{value:.4f}'} vs baseline {'-' if base is None else f'{base:.4f}'}")
        oracle = r.get("oracle") or {}
        if oracle.get("oracle_auc"):
            line += f"; oracle AUC {oracle['oracle_auc']:.4f}, ratio {oracle['oracle_ratio']:.3f}"
        elif oracle.get("error"):
            line += f"; oracle: {oracle['error']}"
        typer.echo(line)


@models_app.command("promote")
def models_promote(
    name: str, version: str,
    alias: Annotated[str, typer.Option(help="champion (served) or challenger (shadow)")] = "champion",
    force: Annotated[bool, typer.Option("--force", help="override failed gates (needs --reason)")] = False,
    reason: Annotated[str, typer.Option(help="why; recorded in the audit log")] = None,
):
    """Run the promotion gates (signature, metric vs current holder, smoke), then move the alias."""
    from training.promotion import PromotionRefused, promote

    s = _settings()
    try:
        done = promote(s, name, version, alias=alias, force=force, reason=reason)
    except PromotionRefused as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    except (LookupError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for gate in done.gates:
        typer.echo(f"  {gate.gate:<10} {'pass' if gate.passed else 'FAIL'}  {gate.detail}")
    m = done.move
    typer.echo(f"{m.model} {m.alias}: v{m.from_version or '-'} -> v{m.to_version}"
               f"{' (forced)' if m.forced else ''} by {m.actor}: {m.reason}")


@models_app.command("rollback")
def models_rollback(name: str, alias: str = "champion",
                    reason: Annotated[str, typer.Option(help="why; recorded in the audit log")] = None):
    """Move the alias back to the version that held it before (from the audit log)."""
    from training.promotion import rollback

    try:
        m = rollback(_settings(), name, alias=alias, reason=reason)
    except LookupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{m.model} {m.alias}: v{m.from_version} -> v{m.to_version} by {m.actor}: {m.reason}")


@models_app.command("history")
def models_history(name: str, as_json: Annotated[bool, typer.Option("--json", help="one JSON list")] = False):
    """Every alias move of a model: who, when, from, to, why."""
    from training.promotion import history, moves_as_json

    moves = history(_settings(), name)
    if as_json:
        typer.echo(moves_as_json(moves))
        return
    if not moves:
        typer.echo(f"no alias moves recorded for {name!r}")
    for m in moves:
        source = f"v{m.from_version}" if m.from_version else "-"
        typer.echo(f"{m.at:%Y-%m-%d %H:%M:%S}Z {m.alias:<10} {source:>4} -> v{m.to_version:<4} "
                   f"{m.kind:<8} {m.actor:<12} {'FORCED ' if m.forced else ''}{m.reason}")


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
