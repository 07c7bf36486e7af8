"""Uploaded datasets as public schemas."""
from __future__ import annotations

from api.datasets.schemas import ClassCount, DatasetPublic, FeedbackCountsPublic
from core.orm import UploadedDataset
from ml.catalog import models_for


def dataset_public(row: UploadedDataset) -> DatasetPublic:
    """The response for one upload."""
    m = row.manifest
    return DatasetPublic(name=row.name, kind=row.kind, task=row.task, classes=m.get("classes", []),
                         columns=m.get("columns", []), target=m.get("target"), samples=m["samples"],
                         sha256=row.sha256, size_bytes=row.size_bytes, refused=m.get("refused", []),
                         refused_count=m.get("refused_count", 0), models=models_for(row.name),
                         created_at=row.created_at)


def feedback_counts_public(dataset: str, counts: list[tuple[str, int]], *, everyone: bool) -> FeedbackCountsPublic:
    """The response of GET /v1/datasets/{name}/feedback."""
    return FeedbackCountsPublic(dataset=dataset, scope="all" if everyone else "yours",
                                labels=[ClassCount(name=label, count=n) for label, n in counts],
                                count=sum(n for _, n in counts), download_url=f"/v1/datasets/{dataset}/feedback.zip")
