"""A sweep request turned into a SweepPlan: every trial expanded, resolved and checked before anything is queued."""
from __future__ import annotations

from api.jobs.submit import reuse_key
from api.sweeps.schemas import SweepCreate
from core import sweeps as sweep_service
from core.settings import Settings
from ml.config import TrainConfig
from ml.errors import InvalidConfig
from ml.search import expand_search, resolve_trials, search_field


def sweep_plan(body: SweepCreate, settings: Settings, *, owner: str) -> sweep_service.SweepPlan:
    """The request as `owner`'s SweepPlan; InvalidConfig (→ 422 naming the field) for anything wrong."""
    overrides = expand_search(body.search, shuffle_grid=body.early_stopping is not None)
    if len(overrides) > settings.max_sweep_trials:
        raise _invalid("search", f"expands to {len(overrides)} trials; at most {settings.max_sweep_trials} "
                                 "(MAX_SWEEP_TRIALS) are allowed")
    configs = resolve_trials(body.model, body.dataset, body.hyperparameters, overrides, preset=body.preset,
                             searched=search_field(body.search))
    epochs = sum(c.hyperparameters.epochs for c in configs)
    if epochs > settings.max_sweep_epochs:
        raise _invalid("search", f"{len(configs)} trials ask for {epochs} epochs in all; at most "
                                 f"{settings.max_sweep_epochs} (MAX_SWEEP_EPOCHS) are allowed")
    first = configs[0]
    metric = _metric(body.metric, first)
    asha = body.early_stopping.asha.model_dump() if body.early_stopping else None
    if asha and asha["grace_epochs"] >= max(c.hyperparameters.epochs for c in configs):
        raise _invalid("early_stopping.asha.grace_epochs", f"must be below the trials' epochs "
                       f"(at most {max(c.hyperparameters.epochs for c in configs)}), or no trial is ever compared")
    return sweep_service.SweepPlan(
        model=first.model, dataset=first.dataset, name=body.name, request=body.model_dump(mode="json"),
        trials=[c.model_dump(mode="json") for c in configs], searched=list(dict.fromkeys(
            name for trial in overrides for name in trial)), metric=metric, max_parallel=body.max_parallel,
        asha=asha, reuse=reuse_key(first.dataset, settings) if body.reuse else None, owner=owner)


def _metric(asked: str | None, config: TrainConfig) -> str:
    regression = config.task == "regression"
    metric = asked or ("val_mse" if regression else "val_accuracy")
    if regression and metric == "val_accuracy" or not regression and metric in ("val_mse", "val_r2"):
        raise _invalid("metric", f"{metric} is not recorded for a {config.task} dataset; use "
                                 + ("val_mse, val_r2 or val_loss" if regression else "val_accuracy or val_loss"))
    return metric


def _invalid(field: str, message: str) -> InvalidConfig:
    return InvalidConfig([{"field": field, "message": message}])
