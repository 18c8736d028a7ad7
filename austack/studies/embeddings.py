"""Per-AU embeddings of a trained fold, projected to 2-D and coloured by label (the paper's
Fig. 4): t-SNE (scikit-learn), or PCA when there are too many points for t-SNE to be quick.

The faces are the fold's own test split (or another split) of the store its run dir names;
the detector file's store identity must match that store's, so a moved or rebuilt store is
refused rather than silently embedded.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..runs.rundir import DETECTOR_NAME, fold_dirs, read_config
from .plots import plt, save_figure

TSNE_MAX_POINTS = 5000      # frames x AUs; above this t-SNE takes minutes on a CPU: PCA instead
BATCH = 64


def fold_dir_of(path: str | Path) -> Path:
    path = Path(path).expanduser().resolve()
    dirs = fold_dirs(path, DETECTOR_NAME)
    if not dirs:
        raise ConfigError(f"no {DETECTOR_NAME} in {path} or its fold*/ folders; give a run dir of `austack bench`",
                          path=path)
    return dirs[0][1]


def fold_embeddings(fold_dir: Path, *, split: str = "test", max_frames: int = 400):
    """(embeddings [N, n_au, d], labels [N, n_au], aus, detector info) for up to `max_frames`
    evenly spaced frames of the fold's `split`."""
    import torch

    from ..data import AUStoreDataset
    from ..store import read_store_info
    from ..models.detector import load_detector

    cfg = read_config(fold_dir)
    det = load_detector(fold_dir / DETECTOR_NAME)
    store = cfg["data"]
    if not Path(store).is_file():
        raise ConfigError(f"the store {store} that {fold_dir} was trained on is gone; the embeddings need "
                          f"its faces", path=store)
    identity = det.info.get("store_identity")
    if identity and read_store_info(store).identity != identity:
        raise ConfigError(f"{store} is not the store {fold_dir} was trained on (its content changed)",
                          path=store)
    ds = AUStoreDataset(store, protocol=cfg["protocol"], fold=int(cfg["fold"]), split=split)
    idx = np.unique(np.linspace(0, len(ds) - 1, min(max_frames, len(ds))).round().astype(int))
    det.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(idx), BATCH):
            faces = torch.stack([ds[int(i)][0] for i in idx[start:start + BATCH]])
            out.append(det.encoder(det.preprocess(faces)).embeddings.float().numpy())
    return np.concatenate(out), ds.labels[idx], list(det.aus), det.info


def project(z: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """[N, d] -> ([N, 2], the method used)."""
    if method == "auto":
        method = "tsne" if len(z) <= TSNE_MAX_POINTS else "pca"
    if method == "pca" or len(z) < 5:
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(z), "pca"
    if method != "tsne":
        raise ConfigError(f"unknown projection {method!r}; expected auto, tsne or pca")
    from sklearn.manifold import TSNE

    perplexity = float(min(30, (len(z) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(z), "tsne"


def embedding_figure(emb: np.ndarray, labels: np.ndarray, aus: list[int], path: str | Path, *,
                     title: str, method: str = "auto") -> tuple[list[Path], str]:
    """Every AU's embedding of every face projected together (one map, so AUs can be told
    apart); one panel per AU shows its points coloured active / inactive / unknown over the
    other AUs' points in light grey."""
    n, n_au, _ = emb.shape
    xy_all, used = project(emb.reshape(n * n_au, -1), method)
    xy_all = xy_all.reshape(n, n_au, 2)
    cols = min(4, len(aus))
    rows = -(-len(aus) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols, 2.7 * rows), squeeze=False)
    for a, au in enumerate(aus):
        ax = axes[a // cols][a % cols]
        others = np.delete(xy_all, a, axis=1).reshape(-1, 2)
        ax.scatter(others[:, 0], others[:, 1], s=2, c="0.88", linewidths=0)
        xy, y = xy_all[:, a], labels[:, a]
        for value, name, colour in ((0, "inactive", "tab:blue"), (1, "active", "tab:red"), (-1, "unknown", "0.6")):
            m = y == value
            if m.any():
                ax.scatter(xy[m, 0], xy[m, 1], s=5, c=colour, label=f"{name} ({m.sum()})", alpha=0.7,
                           linewidths=0)
        ax.set_title(f"AU{au}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=6, loc="best", markerscale=2)
    for a in range(len(aus), rows * cols):
        axes[a // cols][a % cols].axis("off")
    fig.suptitle(f"{title} ({'t-SNE' if used == 'tsne' else 'PCA'} of all AU embeddings; grey: other AUs)",
                 fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path), used
