"""The prepared HDF5 store (schema in docs/store-schema.md).

`StoreWriter` saves chunks and sessions durably into `OUT.h5.partial/` and assembles `OUT.h5`
from them when whole; `open_store` reads a finished one; `verify` checks one against the schema
and its digests, `check_store` cheaply before training and `check_images` (the image bytes)
once per store; `store_identity` names its content; `info` summarises it per subject and fold.
"""
from ._codec import decode_image, encode_image
from ._image_check import check_images
from ._info import GroupSummary, StoreInfo, StoreSummary, describe_alignment, info, label_rates, read_store_info
from ._reader import Store, open_store, store_identity
from ._schema import ENCODINGS, JPEG_QUALITY, ORIGIN, SCHEMA_VERSION, StoreSettings
from ._verify import VerifyReport, check_store, verify
from ._writer import FrameRows, StoreWriter, partial_path

__all__ = ["SCHEMA_VERSION", "ENCODINGS", "JPEG_QUALITY", "ORIGIN", "StoreSettings", "StoreWriter", "FrameRows",
           "partial_path", "Store", "open_store", "store_identity", "verify", "check_store", "check_images",
           "VerifyReport", "info", "describe_alignment", "StoreInfo", "StoreSummary", "read_store_info",
           "GroupSummary", "label_rates", "encode_image", "decode_image"]
