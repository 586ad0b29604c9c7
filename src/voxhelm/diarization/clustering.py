"""Speaker clustering of window embeddings: pruned-affinity spectral clustering (numpy only).

The affinity is the cosine similarity of the embeddings. Each row keeps only its strongest
entries (the rest become 0) so that a few chance similarities between different speakers
cannot join their clusters; the matrix is made symmetric again, and the eigenvalues of its
unnormalized Laplacian give the number of speakers: the largest gap between consecutive
eigenvalues, searched within the caller's hints. k-means on the first eigenvectors assigns
the windows. Average-linkage clustering did much worse on real telephone speech.
"""

from __future__ import annotations

import numpy as np

from voxhelm.diarization.base import SpeakerHints
from voxhelm.diarization.embedding import normalize

DEFAULT_MAX_SPEAKERS = 8
PRUNE_KEEP_FRACTION = 0.02  # share of each row's neighbours kept…
PRUNE_MIN_KEEP = 6  # …but at least this many (a quarter of them in short recordings)
MAX_CLUSTERED = 1500  # beyond this, cluster a spread sample and assign the rest
MIN_SPEAKER_SHARE = 0.04  # smaller clusters (with an estimated count) fold into the nearest
MIN_SPEAKER_WINDOWS = 3  # nor can a speaker have fewer windows than this
MERGE_SIMILARITY = 0.8  # clusters whose centroids are this alike are one speaker


def cluster(embeddings: np.ndarray, hints: SpeakerHints) -> np.ndarray:
    """A cluster id ``0..k-1`` for every row of ``embeddings`` (numbered by first row)."""
    count = len(embeddings)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    vectors = normalize(np.asarray(embeddings, dtype=np.float64))
    if count <= 2:
        return _numbered(_few(vectors, hints))
    if count > MAX_CLUSTERED:
        sample = np.linspace(0, count - 1, MAX_CLUSTERED).round().astype(np.int64)
        labels = _spectral(vectors[sample], hints)
        return _numbered(_nearest_centroid(vectors, vectors[sample], labels))
    return _numbered(_spectral(vectors, hints))


def _few(vectors: np.ndarray, hints: SpeakerHints) -> np.ndarray:
    if len(vectors) == 2 and (hints.num_speakers or 0) >= 2:
        return np.array([0, 1])
    if len(vectors) == 2 and not hints.num_speakers and float(vectors[0] @ vectors[1]) < 0.3:
        return np.array([0, 1])
    return np.zeros(len(vectors), dtype=np.int64)


def _bounds(hints: SpeakerHints, count: int) -> tuple[int, int]:
    if hints.num_speakers:
        k = min(hints.num_speakers, count)
        return k, k
    low = hints.min_speakers or 1
    high = hints.max_speakers or max(low, DEFAULT_MAX_SPEAKERS)
    # Each speaker needs a few windows (~2 s of speech) to be told apart from noise.
    high = max(1, min(high, count - 1, count // MIN_SPEAKER_WINDOWS))
    return min(low, high), high


def pruned_affinity(vectors: np.ndarray) -> np.ndarray:
    """Cosine affinity with each row's weak entries zeroed, symmetric, zero diagonal."""
    count = len(vectors)
    affinity: np.ndarray = np.clip(vectors @ vectors.T, 0.0, None)
    # A short recording has few windows: keeping six neighbours would keep nearly all.
    keep = int(max(PRUNE_KEEP_FRACTION * count, min(PRUNE_MIN_KEEP, count // 4), 2))
    drop = max(0, count - keep)
    if drop:
        weakest = np.argsort(affinity, axis=1)[:, :drop]
        np.put_along_axis(affinity, weakest, 0.0, axis=1)
    affinity = 0.5 * (affinity + affinity.T)
    np.fill_diagonal(affinity, 0.0)
    return affinity


def _spectral(vectors: np.ndarray, hints: SpeakerHints) -> np.ndarray:
    low, high = _bounds(hints, len(vectors))
    affinity = pruned_affinity(vectors)
    laplacian = np.diag(affinity.sum(axis=1)) - affinity
    eigenvalues, eigenvectors = np.linalg.eigh(laplacian)
    if low == high:
        k = low
    else:
        gaps = np.diff(eigenvalues[low - 1 : high + 1])
        k = int(np.argmax(gaps)) + low
    if k <= 1:
        return np.zeros(len(vectors), dtype=np.int64)
    labels = _kmeans(eigenvectors[:, :k], k)
    if hints.num_speakers:
        return labels
    return _tidy(vectors, labels, low)


def _kmeans(points: np.ndarray, k: int, *, restarts: int = 8, iterations: int = 100) -> np.ndarray:
    """Lloyd's k-means with k-means++ starts from a fixed seed (deterministic results)."""
    rng = np.random.default_rng(0)
    best: tuple[float, np.ndarray] | None = None
    for _ in range(restarts):
        centers = _plus_plus(points, k, rng)
        labels = np.zeros(len(points), dtype=np.int64)
        for _step in range(iterations):
            distances = ((points[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
            new = distances.argmin(axis=1)
            if _step and np.array_equal(new, labels):
                break
            labels = new
            for c in range(k):
                members = points[labels == c]
                if len(members):
                    centers[c] = members.mean(axis=0)
        inertia = float(((points - centers[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, labels.copy())
    assert best is not None
    return best[1]


def _plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centers = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        distances = np.min([((points - c) ** 2).sum(axis=1) for c in centers], axis=0)
        total = distances.sum()
        if total <= 0:
            centers.append(points[rng.integers(len(points))])
        else:
            centers.append(points[rng.choice(len(points), p=distances / total)])
    return np.array(centers, dtype=np.float64)


def _centroids(vectors: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    return {
        int(c): normalize(vectors[labels == c].mean(axis=0)[None])[0] for c in np.unique(labels)
    }


def _tidy(vectors: np.ndarray, labels: np.ndarray, minimum: int) -> np.ndarray:
    """With an estimated count: merge near-identical clusters, then fold tiny ones away."""
    labels = labels.copy()
    while len(np.unique(labels)) > max(1, minimum):
        centroids = _centroids(vectors, labels)
        keys = sorted(centroids)
        pairs = [
            (float(centroids[a] @ centroids[b]), a, b)
            for i, a in enumerate(keys)
            for b in keys[i + 1 :]
        ]
        similarity, a, b = max(pairs)
        if similarity < MERGE_SIMILARITY:
            break
        labels[labels == b] = a
    while len(np.unique(labels)) > max(1, minimum):
        ids, sizes = np.unique(labels, return_counts=True)
        smallest = int(ids[int(np.argmin(sizes))])
        if sizes.min() >= max(MIN_SPEAKER_WINDOWS, MIN_SPEAKER_SHARE * len(labels)):
            break
        others = {c: v for c, v in _centroids(vectors, labels).items() if c != smallest}
        members = np.flatnonzero(labels == smallest)
        for index in members:
            labels[index] = max(others, key=lambda c: float(others[c] @ vectors[index]))
    return labels


def _nearest_centroid(vectors: np.ndarray, sample: np.ndarray, labels: np.ndarray) -> np.ndarray:
    centroids = _centroids(sample, labels)
    ids = sorted(centroids)
    matrix = np.stack([centroids[c] for c in ids])
    nearest: np.ndarray = np.asarray(ids)[(vectors @ matrix.T).argmax(axis=1)]
    return nearest


def _numbered(labels: np.ndarray) -> np.ndarray:
    """Cluster ids renumbered in order of first appearance."""
    order: dict[int, int] = {}
    for label in labels:
        order.setdefault(int(label), len(order))
    return np.array([order[int(label)] for label in labels], dtype=np.int64)
