"""`trainserve`: train, sweep, watch, list, cancel, promote, predict and plot from a terminal.

Exit codes (scripts can rely on them): 0 done; 1 the API refused (its sentence is printed); 2 bad
usage; 3 the server is unreachable or failed (5xx); 4 the watched job failed; 5 it was cancelled (or
stopped early by its sweep); 130 Ctrl-C detached from a watched job (the job keeps running).
"""
from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from client.api import TERMINAL, ApiError, Client
from client.config import config_path, load_config

OK, REFUSED, USAGE, UNREACHABLE, JOB_FAILED, JOB_CANCELLED, DETACHED = 0, 1, 2, 3, 4, 5, 130
JOB_EXIT = {"succeeded": OK, "failed": JOB_FAILED, "cancelled": JOB_CANCELLED, "stopped": JOB_CANCELLED}
PLOTS = ("loss", "metric", "confusion_matrix", "mistakes")
ID_HELP = "a job id, or its first 8 or more characters (unambiguous)"

app = typer.Typer(help="Command-line client of the trainserve API.", no_args_is_help=True,
                  epilog="Exit codes: 0 done, 1 the API refused, 2 bad usage, 3 server unreachable or 5xx, "
                         "4 watched job failed, 5 watched job cancelled, 130 detached with Ctrl-C.",
                  pretty_exceptions_enable=False, add_completion=False)
out = Console()
err = Console(stderr=True)


def fail(message: str, code: int) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def client(ctx: typer.Context) -> Client:
    return ctx.obj


@app.callback()
def connect(ctx: typer.Context,
            url: Annotated[str | None, typer.Option(help="server URL (else env TRAINSERVE_URL, the config file, http://127.0.0.1:8000)")] = None,
            api_key: Annotated[str | None, typer.Option(help="API key (else env TRAINSERVE_API_KEY, the config file)")] = None) -> None:
    """Where the server is: flags, then TRAINSERVE_URL / TRAINSERVE_API_KEY, then ~/.config/trainserve/config.toml."""
    try:
        ctx.meta["config"] = config = load_config(url=url, api_key=api_key)
        ctx.obj = ctx.with_resource(Client(config=config))
    except ValueError as exc:
        fail(str(exc), USAGE)


def parse_set(pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs; v is JSON when it parses (numbers, lists, null), else the plain string."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            fail(f"--set takes key=value, got {pair!r}", USAGE)
        try:
            values[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            values[key.strip()] = text
    return values


def _pct(x: Any) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _num(x: Any) -> str:
    return "–" if x is None else f"{x:.4f}"


def epochs_table(title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("epoch", "train loss", "val loss", "train acc", "val acc", "seconds"):
        table.add_column(column, justify="right")
    return table


def add_epoch(table: Table, m: dict[str, Any]) -> None:
    table.add_row(str(m["epoch"]), _num(m.get("train_loss")), _num(m.get("val_loss")),
                  _pct(m.get("train_accuracy")), _pct(m.get("val_accuracy")), f"{m.get('seconds') or 0:.2f}")


def watch_job(api: Client, job_id: str) -> int:
    """Live bar per epoch and a metrics table until the job ends; returns the exit code of its outcome."""
    job = api.job(job_id)
    job_id = job["id"]  # the full id, when a prefix was given
    table = epochs_table(f"{job['model']} on {job['dataset']} · job {job_id}")
    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=out)
    tasks: dict[int, Any] = {}  # epoch -> its bar
    totals: dict[int, int] = {}  # epoch -> its batches

    def advance(epoch: int, epochs: Any, batch: int | None, batches: int | None) -> None:
        if epoch not in tasks:
            tasks[epoch] = bars.add_task(f"epoch {epoch}/{epochs or '?'}", total=batches or 1)
        total = totals[epoch] = batches or totals.get(epoch, 1)
        # a report without batch counters is the epoch's end (short epochs send only that)
        bars.update(tasks[epoch], total=total, completed=batch if batch else total)

    try:
        with Live(Group(table, bars), console=out, refresh_per_second=4):
            for kind, data in api.events(job_id):
                if kind == "progress" and data.get("epoch"):
                    advance(data["epoch"], data.get("epochs"), data.get("batch"), data.get("batches"))
                elif kind == "epoch":
                    advance(data["epoch"], job["progress"].get("epochs"), None, None)
                    add_epoch(table, data)
                elif kind == "status" and data.get("status") in TERMINAL:
                    break
        out.line()
    except KeyboardInterrupt:
        err.print(f"detached; job {job_id} keeps running (trainserve watch {job_id}; trainserve cancel {job_id})")
        return DETACHED
    return print_outcome(api.job(job_id))


def print_outcome(job: dict[str, Any]) -> int:
    status = job["status"]
    colour = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "stopped": "yellow"}.get(status, "white")
    out.print(f"job {job['id']} [{colour}]{status}[/{colour}]", highlight=False)
    if job.get("error"):
        out.print(job["error"], highlight=False)
    final = Table(title="final metrics", title_justify="left", show_header=False)
    best = job.get("best") or {}
    metric = best.get("metric") or {}
    if best:
        final.add_row("best epoch", str(best.get("epoch")))
    if metric.get("name"):
        final.add_row(f"best {metric['name']}", _num(metric.get("value")))
    for key, value in (job.get("test_metrics") or {}).items():
        if isinstance(value, (int, float)):
            final.add_row(f"test {key}", _num(value))
    if final.row_count:
        out.print(final)
    return JOB_EXIT.get(status, OK)


@app.command()
def train(ctx: typer.Context, model: str, dataset: str,
          set_: Annotated[list[str], typer.Option("--set", help="a hyperparameter, key=value (repeat)")] = [],  # noqa: B006
          name: Annotated[str | None, typer.Option(help="a label for people")] = None,
          include_feedback: Annotated[bool, typer.Option(help="also train on the dataset's feedback set")] = False,
          watch: Annotated[bool, typer.Option(help="follow it to the end (Ctrl-C detaches, never cancels)")] = False) -> None:
    """Submit a training job: trainserve train mlp mnist --set epochs=3 --watch."""
    job = client(ctx).submit(model, dataset, parse_set(set_), name=name, include_feedback=include_feedback)
    out.print(f"job {job['id']} queued: {model} on {dataset}", highlight=False)
    if watch:
        raise typer.Exit(watch_job(client(ctx), job["id"]))


@app.command()
def watch(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help=ID_HELP)]) -> None:
    """Follow a job live until it ends (exit code says how it ended)."""
    api = client(ctx)
    job = api.job(job_id)
    if job["status"] in TERMINAL:
        table = epochs_table(f"job {job['id']}")
        for row in api.metrics(job["id"]):
            add_epoch(table, row)
        out.print(table)
        raise typer.Exit(print_outcome(job))
    raise typer.Exit(watch_job(api, job_id))


app.command("logs", help="Same as watch: a job's epochs so far, then live until it ends.")(watch)


def best_figure(best: dict[str, Any] | None) -> str:
    """A job's best validation figure: its accuracy as a percentage, else its mse (regression) or loss."""
    best = best or {}
    metrics = best.get("metrics") or {}
    metric = best.get("metric") or {}
    if metric.get("name") and metric.get("value") is not None:
        name, value = metric["name"], metric["value"]
    else:
        name, value = next(((n, metrics[n]) for n in ("val_accuracy", "val_mse", "val_loss")
                            if metrics.get(n) is not None), (None, None))
    if name is None:
        return "–"
    return _pct(value) if name.endswith("accuracy") else f"{name.removeprefix('val_')} {value:.4g}"


def id_column(table: Table, name: str = "id") -> None:
    """A column that shows every character of an id (copyable), whatever the terminal's width."""
    table.add_column(name, no_wrap=True, min_width=36, overflow="fold")


@app.command()
def jobs(ctx: typer.Context,
         status: Annotated[str | None, typer.Option(help="queued, running, succeeded, failed, cancelled, stopped")] = None,
         dataset: Annotated[str | None, typer.Option()] = None, model: Annotated[str | None, typer.Option()] = None,
         limit: Annotated[int, typer.Option(min=1, max=200)] = 20) -> None:
    """Jobs, newest first, with full ids and each one's best validation figure."""
    table = Table()
    id_column(table)
    table.add_column("model · dataset (name)", overflow="fold", min_width=12)
    for column in ("status", "best"):  # short: kept whole, the names fold instead
        table.add_column(column, no_wrap=True)
    for job in client(ctx).jobs(status=status, dataset=dataset, model=model, limit=limit):
        fraction = (job.get("progress") or {}).get("fraction")
        state = job["status"] + (f" {_pct(fraction)}" if job["status"] == "running" else "")
        what = f"{job['model']} · {job['dataset']}" + (f" ({job['name']})" if job.get("name") else "")
        table.add_row(job["id"], what, state, best_figure(job.get("best")))
    out.print(table)


@app.command()
def env(ctx: typer.Context) -> None:
    """Print `export` lines for TRAINSERVE_URL and TRAINSERVE_API_KEY: eval "$(trainserve env)"."""
    config = ctx.meta["config"]
    out.print(f"export TRAINSERVE_URL={shlex.quote(config.url)}", highlight=False, soft_wrap=True)
    if config.api_key:
        out.print(f"export TRAINSERVE_API_KEY={shlex.quote(config.api_key)}", highlight=False, soft_wrap=True)
    else:
        err.print(f"no API key: the first `make run` saves one in {config_path()}", highlight=False)

SWEEP_EXIT = {"succeeded": OK, "failed": JOB_FAILED, "cancelled": JOB_CANCELLED}


def parse_grid(pairs: list[str]) -> dict[str, list[Any]]:
    """`name=v1,v2,…` per searched hyperparameter; values are JSON when they parse (numbers, [lists]),
    else plain strings: lr=0.1,0.01  hidden_sizes=[64],[128,64]  activation=relu,tanh."""
    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key or not text:
            fail(f"--grid takes name=value,value,…; got {pair!r}", USAGE)
        try:
            values = json.loads(f"[{text}]")
        except json.JSONDecodeError:
            values = [v.strip() for v in text.split(",")]
        grid[key.strip()] = values
    return grid


def leaderboard(sweep: dict[str, Any]) -> Table:
    """The sweep's trials, best first: searched values, status, the metric and its epoch, full job ids."""
    counts = ", ".join(f"{n} {k}" for k, n in sweep["counts"].items() if n)
    # light rules, no edge padding: rank, values, status, metric and the full job id fit 80 columns
    table = Table(title=f"sweep {sweep['id']} · {sweep['model']} on {sweep['dataset']} · {sweep['status']}"
                        f" · {counts} · best by {sweep['metric']} ({sweep['mode']})", title_justify="left",
                  box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)
    searched = list(dict.fromkeys(k for t in sweep["trials"] for k in t["hyperparameters"]))
    table.add_column("#", justify="right", no_wrap=True)
    for name in searched:  # a long name folds in the header; the values are short
        table.add_column(name, overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column(sweep["metric"].removeprefix("val_"), justify="right", no_wrap=True)
    table.add_column("ep", justify="right", no_wrap=True)
    id_column(table, "job")
    for rank, trial in enumerate(sweep["trials"], 1):
        metric = trial.get("metric")
        table.add_row(str(rank) if metric is not None else "", *(json.dumps(trial["hyperparameters"].get(n))
                      for n in searched), trial["status"], "–" if metric is None else f"{metric:.4f}",
                      str(trial.get("epoch") or "–"), trial.get("job_id") or "")
    return table


def watch_sweep(api: Client, sweep_id: str, poll_s: float = 1.0) -> int:
    """The leaderboard, redrawn as trials move, until the sweep ends; returns the exit code of its outcome."""
    sweep = api.sweep(sweep_id)
    sweep_id = sweep["id"]  # the full id, when a prefix was given
    try:
        with Live(leaderboard(sweep), console=out, refresh_per_second=2) as live:
            while sweep["status"] not in SWEEP_EXIT:
                time.sleep(poll_s)
                sweep = api.sweep(sweep_id)
                live.update(leaderboard(sweep))
        out.line()
    except KeyboardInterrupt:
        err.print(f"detached; sweep {sweep_id} keeps running (trainserve sweeps {sweep_id} --watch)")
        return DETACHED
    best = sweep.get("best")
    if best:
        out.print(f"best: trial {best['trial']} {json.dumps(best['hyperparameters'])} {sweep['metric']} "
                  f"{best['metric']:.4f}, job {best['job_id']}, model {sweep.get('best_model_id')}", highlight=False)
    if sweep.get("error"):
        out.print(sweep["error"], highlight=False)
    return SWEEP_EXIT[sweep["status"]]


@app.command()
def sweep(ctx: typer.Context, model: str, dataset: str,
          grid: Annotated[list[str], typer.Option(help="a searched hyperparameter, name=v1,v2,… (repeat)")],
          set_: Annotated[list[str], typer.Option("--set", help="a fixed hyperparameter, key=value (repeat)")] = [],  # noqa: B006
          metric: Annotated[str | None, typer.Option(help="val_accuracy, val_loss, val_mse or val_r2 (default: "
                                                          "val_accuracy, val_mse for regression)")] = None,
          max_parallel: Annotated[int, typer.Option(min=1, max=256, help="trials at once")] = 4,
          name: Annotated[str | None, typer.Option(help="a label for people")] = None,
          watch: Annotated[bool, typer.Option(help="show the leaderboard until it ends (Ctrl-C detaches)")] = False) -> None:
    """Start a grid sweep: trainserve sweep mlp mnist --grid lr=0.1,0.01 --grid batch_size=32,64 --watch."""
    body = {"model": model, "dataset": dataset, "hyperparameters": parse_set(set_),
            "search": {"grid": parse_grid(grid)}, "metric": metric, "max_parallel": max_parallel, "name": name}
    made = client(ctx).create_sweep(body)
    out.print(f"sweep {made['id']} queued: {made['total']} trials of {model} on {dataset}", highlight=False)
    if watch:
        raise typer.Exit(watch_sweep(client(ctx), made["id"]))


@app.command()
def sweeps(ctx: typer.Context, sweep_id: Annotated[str | None, typer.Argument(help="one sweep's leaderboard (its id, or its first 8 or more characters)")] = None,
           watch: Annotated[bool, typer.Option(help="follow that sweep until it ends")] = False,
           limit: Annotated[int, typer.Option(min=1, max=200)] = 20) -> None:
    """Sweeps, newest first; with an id, its leaderboard (--watch follows it to the end)."""
    api = client(ctx)
    if sweep_id:
        if watch:
            raise typer.Exit(watch_sweep(api, sweep_id))
        out.print(leaderboard(api.sweep(sweep_id)))
        return
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)
    id_column(table)
    table.add_column("model · dataset (name)", overflow="fold")
    for column in ("status", "best"):
        table.add_column(column, no_wrap=True)
    for row in api.sweeps(limit=limit):
        best = row.get("best") or {}
        what = f"{row['model']} · {row['dataset']}, {row['total']} trials" + (f" ({row['name']})" if row.get("name") else "")
        table.add_row(row["id"], what, row["status"], "–" if best.get("metric") is None
                      else f"{row['metric'].removeprefix('val_')} {best['metric']:.4g}")
    out.print(table)


@app.command()
def cancel(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help=ID_HELP)]) -> None:
    """Cancel a queued or running job (its checkpoints stay)."""
    job = client(ctx).cancel(job_id)
    out.print(f"job {job['id']} {job['status']}" + (" (stopping within a batch)" if job["status"] == "running" else ""))


@app.command()
def models(ctx: typer.Context, dataset: Annotated[str | None, typer.Option(help="only this dataset")] = None) -> None:
    """Registered model versions; the serving one per dataset is marked."""
    table = Table("id", "dataset", "model", "job", "epoch", "val acc", "test acc", "serving")
    for m in client(ctx).models(dataset):
        table.add_row(str(m["id"]), m["dataset"], m["model"], m["job_id"], str(m["epoch"]), _pct(m.get("val_accuracy")),
                      _pct(m.get("test_accuracy")), "★" if m.get("serving") else "")
    out.print(table)


@app.command()
def promote(ctx: typer.Context, model_id: int) -> None:
    """Make a model version serve its dataset (promoting an older one rolls back)."""
    model = client(ctx).promote(model_id)["model"]
    out.print(f"model {model['id']} ({model['model']}, job {model['job_id']}) now serves {model['dataset']}")


@app.command()
def predict(ctx: typer.Context, dataset: str,
            files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
            top_k: Annotated[int, typer.Option(min=1, max=1000)] = 3) -> None:
    """Label image files with the model serving DATASET."""
    table = Table("file", "label", "confidence", "top k")
    for p in client(ctx).predict(dataset, files, top_k=top_k):
        if p.get("abstained"):  # nothing to read: the service says why instead of guessing
            table.add_row(p.get("file") or "", "[dim]abstained[/dim]", "", p.get("reason") or "")
            continue
        label = p["label"] + (" [yellow](low confidence)[/yellow]" if p.get("low_confidence") else "") \
            + (" [red](unlike the training data)[/red]" if p.get("out_of_distribution") else "")
        table.add_row(p.get("file") or "", label, _pct(p["confidence"]),
                      ", ".join(f"{k['label']} {_pct(k['confidence'])}" for k in p.get("top_k", [])))
    out.print(table)


@app.command()
def plots(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help=ID_HELP)],
          out_dir: Annotated[Path | None, typer.Option("--out", help="folder (default ./trainserve-plots/JOB_ID)")] = None,
          open_: Annotated[bool, typer.Option("--open", help="open them in the image viewer")] = False) -> None:
    """Save a job's plots as PNG files (those that exist yet)."""
    api = client(ctx)
    job_id = api.job(job_id)["id"]  # the full id, when a prefix was given
    folder = out_dir or Path("trainserve-plots") / job_id
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for name in PLOTS:
        try:
            data = api.plot(job_id, name)
        except ApiError as exc:
            if exc.status != 404 or name in ("loss", "metric"):  # those exist for every job: a 404 is an unknown id
                raise
            err.print(f"{name}: {exc}", highlight=False)
            continue
        path = folder / f"{name}.png"
        path.write_bytes(data)
        saved.append(path)
        out.print(str(path), highlight=False)
    if open_:
        for path in saved:
            typer.launch(str(path))


keys_app = typer.Typer(help="API keys (admin key needed): create, list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def create_key(ctx: typer.Context, owner: str,
               role: Annotated[str, typer.Option(help="user (their own jobs and datasets) or admin")] = "user") -> None:
    """Make a key for OWNER and print it (shown once: only its hash is stored)."""
    made = client(ctx).create_key(owner, role)
    err.print(f"key {made['id']} for {made['owner']} ({made['role']}); it is shown once:", highlight=False)
    out.print(made["key"], highlight=False)


@keys_app.command("list")
def list_keys(ctx: typer.Context) -> None:
    """Every key: id, its first characters, owner, role, and whether it is revoked."""
    table = Table("id", "prefix", "owner", "role", "created", "revoked")
    for k in client(ctx).keys():
        table.add_row(str(k["id"]), k["prefix"] + "…", k["owner"], k["role"], k["created_at"][:16],
                      (k.get("revoked_at") or "")[:16])
    out.print(table)


@keys_app.command("revoke")
def revoke_key(ctx: typer.Context, key_id: int) -> None:
    """Revoke a key at once: its next request gets 401."""
    gone = client(ctx).revoke_key(key_id)
    out.print(f"key {gone['id']} of {gone['owner']} revoked")


def main() -> None:
    """Entry point: API refusals and network trouble end as one sentence and an exit code, never a traceback."""
    try:
        app()
    except ApiError as exc:
        code = UNREACHABLE if exc.status == 0 or exc.status >= 500 else REFUSED
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise SystemExit(code) from None
    except KeyboardInterrupt:
        raise SystemExit(DETACHED) from None


if __name__ == "__main__":
    main()
