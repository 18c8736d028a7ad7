"""From a prepared store to training batches: dataset, loader and batch augmentation.

    ds = AUStoreDataset("bp4d.h5", protocol="bp4d-3fold@v1", fold=1, split="train")
    loader = make_loader(ds, batch_size=64, shuffle=True, workers=4, seed=0, drop_last=True)
    augment = BatchAugment(crop=224, views=2, seed=0).to(device)
    for images, labels, rows in loader:
        v1, v2 = augment(images.to(device))
"""
from .augment import POLICIES, BatchAugment
from .dataset import AUStoreDataset
from .loader import make_loader

__all__ = ["AUStoreDataset", "BatchAugment", "POLICIES", "make_loader"]
