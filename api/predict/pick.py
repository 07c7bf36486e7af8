"""Which served model answers a predict request: the dataset's serving version, or the version asked for."""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from api.predict.errors import NoModelYet, NotServed, UnknownModelId, WrongDataset
from api.predict.serving import Served, ServingModels
from core.errors import ModelNotFound
from ml.catalog import dataset_is_servable


async def pick_model(serving: ServingModels, dataset: str, model_id: int | None, owner: str | None) -> Served:
    """The served version for this request: from memory on the loop, else looked up in the threadpool.

    A version in memory proves its dataset servable; any other answer may read the database (an
    uploaded dataset's spec, the registry), so it runs off the event loop. `owner` (None: an admin) sees
    someone else's private upload and its versions as unknown (404), like a name or id that does not exist.
    """
    fast = serving.fresh(dataset) if model_id is None else serving.loaded(model_id)
    if fast is not None and fast.info.visible_to(owner):
        return fast if model_id is None else _check_dataset(fast, dataset)
    return await run_in_threadpool(_look_up_model, serving, dataset, model_id, owner)


def _look_up_model(serving: ServingModels, dataset: str, model_id: int | None, owner: str | None) -> Served:
    """NotServed, NoModelYet, UnknownModelId or WrongDataset when nothing fits; ModelUnavailable when it cannot load."""
    if not dataset_is_servable(dataset) or not serving.upload_visible(dataset, owner):
        raise NotServed.unknown(dataset)
    if model_id is None:
        served = serving.current(dataset)
        if served is None:
            raise NoModelYet.images(dataset)
        if not served.info.visible_to(owner):  # the upload's name was taken by someone else meanwhile
            raise NotServed.unknown(dataset)
        return served
    try:
        served = serving.version(model_id)
    except ModelNotFound:  # here the id came with a dataset: the hint lists that dataset's versions
        raise UnknownModelId(model_id, dataset) from None
    if not served.info.visible_to(owner):
        raise UnknownModelId(model_id, dataset)
    return _check_dataset(served, dataset)


def _check_dataset(served: Served, dataset: str) -> Served:
    if served.info.dataset != dataset:
        raise WrongDataset(served.info.id, served.info.dataset, dataset)
    return served
