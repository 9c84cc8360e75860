"""The data set: scikit-learn's handwritten digits, shipped inside the scikit-learn wheel (no download).

1,797 grey 8×8 images (values 0 … 16) of the digits 0 … 9 (UCI "Optical Recognition of Handwritten Digits",
Alpaydin & Kaynak 1998; ``sklearn.datasets.load_digits``). The split is fixed: a stratified
``train_test_split(test_size=0.25, random_state=0)`` gives 1,347 training and 450 test images. scikit-learn is
the optional extra ``net``.
"""

import numpy as np

from hw import checks

__all__ = ["DATASET", "SPLIT_SEED", "TEST_FRACTION", "IMAGE_MAX", "digits"]

DATASET = "sklearn digits (8×8)"
SPLIT_SEED = 0
TEST_FRACTION = 0.25
IMAGE_MAX = 16.0          # pixel values are 0 … 16


def digits(split: str = "test"):
    """``(images, labels)`` of one split: images ``(n, 1, 8, 8)`` float64 in ``0 … 16``, labels ``(n,)`` int64.

    ``split`` is ``"train"`` (1,347 images), ``"test"`` (450) or ``"all"`` (1,797, in the data set's order).
    """
    checks.check_choice("split", split, ("train", "test", "all"))
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as e:     # an optional extra: say how to get it
        raise OSError(f"the digits data set needs scikit-learn: pip install 'sparsegen[net]' ({e})") from None
    data = load_digits()
    images = data.images.astype(np.float64)[:, None]
    labels = data.target.astype(np.int64)
    if split == "all":
        return images, labels
    idx = np.arange(len(labels))
    train, test = train_test_split(idx, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels)
    pick = np.sort(train if split == "train" else test)
    return images[pick], labels[pick]
