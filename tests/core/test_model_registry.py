"""The registry on a real migrated database: best by validation accuracy, pins, rollbacks, history."""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest

from core import errors, model_registry as registry
from core.keys import create_key
from core.orm import Checkpoint, Job, Role, UploadedDataset, utcnow

# A dataset name of its own, so versions other tests register never mix in.
DATASET = "fashion_mnist"
# what the engine records for a job scored on the whole reference validation split
FULL = {"id": "split-a", "size": 6000, "samples": 6000, "reference": True}


def _succeeded_job(session, val_accuracy: float, *, dataset: str = DATASET, status: str = "succeeded",
                   best_metric_name: str = "val_accuracy", split: dict | None = FULL, owner: str | None = None) -> Job:
    job = Job(id=str(uuid.uuid4()), model="mlp", dataset=dataset, status=status, owner=owner,
              config={"model": "mlp", "dataset": dataset, "hyperparameters": {}}, seed=0,
              best_epoch=2, best_metric={"name": best_metric_name, "value": val_accuracy, "split": split},
              test_metrics={"loss": 0.3, "accuracy": val_accuracy - 0.01, "confusion_matrix": [[1]]},
              created_at=utcnow(), finished_at=utcnow())
    session.add(job)
    session.flush()
    for epoch in (1, 2):
        session.add(Checkpoint(job_id=job.id, epoch=epoch, path=f"/nowhere/{job.id}/epoch-00{epoch}.pt",
                               sha256=f"{epoch:064d}", size_bytes=10, is_best=epoch == 2, metrics={}))
    session.commit()
    return job


@pytest.fixture
def clean(db_session):
    """Start each test with no registry rows for DATASET."""
    from sqlalchemy import delete

    from core.orm import ModelVersion, ServingEvent

    db_session.execute(delete(ServingEvent).where(ServingEvent.dataset == DATASET))
    db_session.execute(delete(ModelVersion).where(ModelVersion.dataset == DATASET))
    db_session.commit()
    return db_session


def test_registers_the_best_checkpoint_with_metrics(clean):
    session = clean
    job = _succeeded_job(session, 0.81)
    version = registry.register_model_version(session, job=job)
    assert version.dataset == DATASET and version.model == "mlp" and version.job_id == job.id
    assert version.epoch == 2 and version.checkpoint_path.endswith("epoch-002.pt")
    assert version.val_accuracy == 0.81 and version.test_accuracy == pytest.approx(0.80)
    assert "confusion_matrix" not in version.test_metrics
    # a job registers once
    assert registry.register_model_version(session, job=job).id == version.id
    assert registry.serving_version_id(session, dataset=DATASET) == version.id


def test_unservable_jobs_are_not_registered(clean):
    session = clean
    assert registry.register_model_version(session, job=_succeeded_job(session, 0.9, status="failed")) is None
    regression = _succeeded_job(session, 0.1, dataset="synthetic_linear", best_metric_name="val_mse")
    assert registry.register_model_version(session, job=regression) is None
    assert registry.serving_version_id(session, dataset=DATASET) is None


def test_best_by_validation_accuracy_ties_go_to_the_newest(clean):
    session = clean
    first = registry.register_model_version(session, job=_succeeded_job(session, 0.80))
    better = registry.register_model_version(session, job=_succeeded_job(session, 0.85))
    worse = registry.register_model_version(session, job=_succeeded_job(session, 0.70))
    assert registry.serving_version_id(session, dataset=DATASET) == better.id
    tie = registry.register_model_version(session, job=_succeeded_job(session, 0.85))
    assert registry.serving_version_id(session, dataset=DATASET) == tie.id
    history = registry.serving_history(session, dataset=DATASET)
    assert [(e.model_version_id, e.reason) for e in history] == [
        (first.id, "auto-best"), (better.id, "auto-best"), (tie.id, "auto-best")]
    assert history[1].previous_model_version_id == first.id
    assert worse.id not in {e.model_version_id for e in history}


def test_promote_pins_and_rolling_back_is_promoting_another(clean):
    session = clean
    old = registry.register_model_version(session, job=_succeeded_job(session, 0.80))
    new = registry.register_model_version(session, job=_succeeded_job(session, 0.90))
    assert registry.serving_version_id(session, dataset=DATASET) == new.id

    registry.promote(session, model_id=old.id)  # roll back to the old one
    assert registry.serving_version_id(session, dataset=DATASET) == old.id
    # pinned: a better model registers but does not take over
    best = registry.register_model_version(session, job=_succeeded_job(session, 0.99))
    assert registry.serving_version_id(session, dataset=DATASET) == old.id

    registry.promote(session, model_id=best.id)
    assert registry.serving_version_id(session, dataset=DATASET) == best.id
    history = [(e.model_version_id, e.reason, e.previous_model_version_id)
               for e in registry.serving_history(session, dataset=DATASET)]
    assert history == [(old.id, "auto-best", None), (new.id, "auto-best", old.id),
                       (old.id, "promoted", new.id), (best.id, "promoted", old.id)]
    assert all(a.at <= b.at for a, b in zip(registry.serving_history(session, dataset=DATASET),
                                             registry.serving_history(session, dataset=DATASET)[1:]))


def test_unknown_model_id(clean):
    with pytest.raises(errors.ModelNotFound, match="model 987654 not found"):
        registry.promote(clean, model_id=987654)



@pytest.mark.parametrize("split", [
    {**FULL, "samples": 1},  # max_eval_samples: 1 scored 1.0 on a single sample
    {**FULL, "id": "split-b", "size": 60, "samples": 60, "reference": False},  # a tiny val_fraction of its own
    None,  # registered before splits were recorded
], ids=["subset", "other-split", "unrecorded"])
def test_a_version_not_scored_on_the_whole_reference_split_never_takes_over(clean, split):
    session = clean
    serving = registry.register_model_version(session, job=_succeeded_job(session, 0.977))
    gamed = registry.register_model_version(session, job=_succeeded_job(session, 1.0, split=split))
    assert not gamed.auto_promotable and serving.auto_promotable
    assert registry.serving_version_id(session, dataset=DATASET) == serving.id
    # a later honest version is compared with the honest ones only
    better = registry.register_model_version(session, job=_succeeded_job(session, 0.98))
    assert registry.serving_version_id(session, dataset=DATASET) == better.id
    # by hand it can still serve, and the history says it was promoted
    registry.promote(session, model_id=gamed.id)
    assert [(e.model_version_id, e.reason) for e in registry.serving_history(session, dataset=DATASET)] == [
        (serving.id, "auto-best"), (better.id, "auto-best"), (gamed.id, "promoted")]


def test_time_travel_answers_what_served_then_and_rollback_targets_it(clean):
    session = clean
    first = registry.register_model_version(session, job=_succeeded_job(session, 0.80))
    time.sleep(0.01)  # distinct timestamps, so "between" lies strictly between them
    second = registry.register_model_version(session, job=_succeeded_job(session, 0.90))
    history = registry.serving_history(session, dataset=DATASET)
    first_at, second_at = history[0].at, history[1].at
    assert registry.serving_at(session, dataset=DATASET, at=first_at).model_version_id == first.id
    between = first_at + (second_at - first_at) / 2
    assert registry.serving_at(session, dataset=DATASET, at=between).model_version_id == first.id
    assert registry.serving_at(session, dataset=DATASET, at=second_at).model_version_id == second.id
    with pytest.raises(errors.NothingServed, match="no model served 'fashion_mnist'"):
        registry.serving_at(session, dataset=DATASET, at=first_at - timedelta(seconds=1))

    event = registry.rollback_to(session, dataset=DATASET, at=between)
    assert (event.model_version_id, event.reason, event.previous_model_version_id) == (first.id, "promoted", second.id)
    assert registry.serving_version_id(session, dataset=DATASET) == first.id


def test_on_a_shared_dataset_only_admins_jobs_take_over_and_only_admins_promote(clean):
    session = clean
    boss, user = f"boss-{uuid.uuid4().hex[:6]}", f"user-{uuid.uuid4().hex[:6]}"
    create_key(session, owner=boss, role=Role.admin)
    create_key(session, owner=user, role=Role.user)
    admins = registry.register_model_version(session, job=_succeeded_job(session, 0.80, owner=boss))
    users = registry.register_model_version(session, job=_succeeded_job(session, 0.99, owner=user))
    assert admins.auto_promotable and not users.auto_promotable  # a better score, but not the admins' to serve
    assert registry.serving_version_id(session, dataset=DATASET) == admins.id
    assert not users.private and registry.get_model_version(session, model_id=users.id, owner="someone").id == users.id
    with pytest.raises(errors.ServingNotYours):
        registry.promote(session, model_id=users.id, owner=user)
    registry.promote(session, model_id=users.id)  # an admin may
    assert registry.serving_version_id(session, dataset=DATASET) == users.id


def test_a_private_uploads_versions_are_its_owners_to_see_and_serve(clean):
    session = clean
    name, owner = f"up-{uuid.uuid4().hex[:8]}", f"own-{uuid.uuid4().hex[:6]}"
    # a row as an upload leaves it (the suite's API lists and describes every upload in this database)
    manifest = {"kind": "image_folder", "task": "classification", "classes": [{"name": "a", "count": 1}],
                "samples": 1, "image_size": 32, "channels": 3, "refused": []}
    upload = UploadedDataset(name=name, kind="image_folder", task="classification", sha256="0" * 64,
                             size_bytes=1, manifest=manifest, created_at=utcnow(), owner=owner)
    session.add(upload)
    session.commit()
    try:
        _check_private_serving(session, name, owner)
    finally:  # gone again, so no other test's listing meets a dataset with no files
        session.delete(upload)
        session.commit()


def _check_private_serving(session, name: str, owner: str) -> None:
    first = registry.register_model_version(session, job=_succeeded_job(session, 0.7, dataset=name, owner=owner))
    second = registry.register_model_version(session, job=_succeeded_job(session, 0.6, dataset=name, owner=owner))
    assert first.private and first.owner == owner and first.auto_promotable  # its owner's jobs serve it
    assert registry.serving_version_id(session, dataset=name) == first.id
    with pytest.raises(errors.ModelNotFound):
        registry.get_model_version(session, model_id=first.id, owner="intruder")
    assert registry.list_model_versions(session, dataset=name, owner="intruder") == []
    assert registry.serving_history(session, dataset=name, owner="intruder") == []
    with pytest.raises(errors.NothingServed):
        registry.serving_at(session, dataset=name, at=utcnow(), owner="intruder")
    with pytest.raises(errors.ModelNotFound):
        registry.promote(session, model_id=second.id, owner="intruder")
    assert [v.id for v in registry.list_model_versions(session, dataset=name, owner=owner)] == [second.id, first.id]
    registry.promote(session, model_id=second.id, owner=owner)  # the owner changes their own serving
    assert registry.serving_version_id(session, dataset=name) == second.id


def test_a_version_keeps_the_training_label_counts_the_engine_reported(clean):
    session = clean
    job = _succeeded_job(session, 0.8)
    job.result = {"train_label_counts": {"0": 12, "1": 30}}
    session.commit()
    assert registry.register_model_version(session, job=job).train_label_counts == {"0": 12, "1": 30}
    # a job that ran before the engine reported them: the version has none (the label mix is then unavailable)
    older = _succeeded_job(session, 0.7)
    assert registry.register_model_version(session, job=older).train_label_counts is None
