"""Spectral clustering of embeddings: speaker count by eigengap, hints, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from voxhelm.diarization.base import SpeakerHints
from voxhelm.diarization.clustering import cluster, pruned_affinity


def voices(counts: list[int], spread: float = 0.35, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of ``len(counts)`` speakers: noisy copies of random 192-dim directions,
    interleaved as turns of a conversation would be."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(len(counts), 192))
    rows, truth = [], []
    for speaker, count in enumerate(counts):
        for _ in range(count):
            rows.append(
                centers[speaker]
                + spread * np.linalg.norm(centers[speaker]) / 14 * rng.normal(size=192)
            )
            truth.append(speaker)
    order = rng.permutation(len(rows))
    return np.array(rows)[order], np.array(truth)[order]


def agreement(labels: np.ndarray, truth: np.ndarray) -> float:
    """Share of rows whose label is the majority label of their true speaker, one-to-one."""
    correct = 0
    for speaker in np.unique(truth):
        _values, counts = np.unique(labels[truth == speaker], return_counts=True)
        correct += counts.max()
    return correct / len(truth)


@pytest.mark.parametrize("counts", [[30], [30, 25], [20, 30, 15], [12, 12, 12, 12]])
def test_it_estimates_the_number_of_speakers(counts: list[int]) -> None:
    embeddings, truth = voices(counts)
    labels = cluster(embeddings, SpeakerHints())
    assert len(np.unique(labels)) == len(counts)
    assert agreement(labels, truth) == 1.0


def test_it_honours_an_exact_speaker_count() -> None:
    embeddings, _truth = voices([30, 25])
    assert len(np.unique(cluster(embeddings, SpeakerHints(num_speakers=3)))) == 3
    assert len(np.unique(cluster(embeddings, SpeakerHints(num_speakers=1)))) == 1


def test_it_searches_the_count_within_min_and_max() -> None:
    embeddings, _truth = voices([20, 30, 15])
    assert len(np.unique(cluster(embeddings, SpeakerHints(max_speakers=2)))) <= 2
    assert len(np.unique(cluster(embeddings, SpeakerHints(min_speakers=4)))) >= 4


def test_it_numbers_clusters_in_order_of_first_row_and_is_deterministic() -> None:
    embeddings, _truth = voices([20, 20, 20], seed=5)
    first = cluster(embeddings, SpeakerHints())
    assert first[0] == 0
    assert list(dict.fromkeys(first.tolist())) == sorted(set(first.tolist()))
    assert np.array_equal(first, cluster(embeddings, SpeakerHints()))


def test_it_handles_tiny_inputs() -> None:
    assert cluster(np.zeros((0, 192)), SpeakerHints()).tolist() == []
    one = np.ones((1, 192))
    assert cluster(one, SpeakerHints()).tolist() == [0]
    two, _ = voices([1, 1])
    assert cluster(two, SpeakerHints(num_speakers=2)).tolist() == [0, 1]


def test_it_clusters_a_sample_and_assigns_the_rest_beyond_the_size_cap() -> None:
    embeddings, truth = voices([1000, 700])
    labels = cluster(embeddings, SpeakerHints())
    assert len(np.unique(labels)) == 2
    assert agreement(labels, truth) == 1.0


def test_the_affinity_keeps_only_strong_neighbours_symmetrically() -> None:
    embeddings, _ = voices([40, 40])
    affinity = pruned_affinity(embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True))
    assert np.allclose(affinity, affinity.T)
    assert np.all(np.diag(affinity) == 0)
    assert (affinity[0] > 0).sum() <= 2 * 6
