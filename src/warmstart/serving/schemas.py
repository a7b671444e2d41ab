"""The HTTP API's request and response bodies (pydantic models, shown in /openapi.json and /docs).

Requests are strict: no coercion (1 is not "1") and no unknown fields ("text" for "texts" is
an error), so a client's mistake is a 422 that names the field instead of a guess.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    # No coercion (1 is not "1"), no unknown fields ("text" for "texts" is an error).
    model_config = ConfigDict(extra="forbid", strict=True)


class EmbedRequest(_Strict):
    texts: list[str] = Field(min_length=1, description="the texts, one vector each")


class ClassifyRequest(EmbedRequest):
    top_k: int = Field(1, ge=1, le=1000, description="ranked labels to return per text")
    task: str | None = Field(None, description="the head of a multi-task classifier")


class AnalogyRequest(_Strict):
    a: str = Field(min_length=1, description="a is to b ...")
    b: str = Field(min_length=1)
    c: str = Field(min_length=1, description="... as c is to the answer")
    k: int = Field(10, ge=1, le=1000)
    method: Literal["add", "mul"] = "add"
    restrict_vocab: int | None = Field(None, ge=1, description="only the N most frequent words")


class Ranked(BaseModel):
    label: str
    probability: float


class ClassifyResult(BaseModel):
    label: str | None = Field(None, description="the predicted class (single-label tasks)")
    labels: list[str] | None = Field(None, description="labels at or above the threshold "
                                                       "(multi-label tasks)")
    probabilities: dict[str, float]
    top_k: list[Ranked]
    truncated: bool


class ClassifyResponse(BaseModel):
    model: str
    task: str
    multi_label: bool
    threshold: float | None
    results: list[ClassifyResult]


class EmbedResponse(BaseModel):
    model: str
    dim: int
    normalized: bool
    embeddings: list[list[float]]
    truncated: list[bool]


class Neighbor(BaseModel):
    word: str
    similarity: float


class NeighborsResponse(BaseModel):
    model: str
    word: str
    in_vocabulary: bool
    neighbors: list[Neighbor]


class AnalogyResponse(BaseModel):
    model: str
    query: dict[str, str]
    answers: list[Neighbor]


class MapResponse(BaseModel):
    model: str
    words: list[str] = Field(description="the most frequent words, most frequent first")
    method: Literal["pca", "umap"] = Field(description="how the words were laid out")
    points: list[list[float]] = Field(description="(x, y) of each word: its first two "
                                                  "principal components, or its UMAP position")
    explained: list[float] | None = Field(description="PCA: share of the variance each axis "
                                                      "holds (UMAP: null)")
