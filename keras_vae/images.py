"""A folder of images (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.gif``), class subfolders giving labels.

The folder is read with ``keras.utils.image_dataset_from_directory``:
``folder/<class>/<image>`` gives each image the index of its class in the
sorted class names; images directly in a folder without subfolders have no
labels. Every image is checked first (readable, one size unless an
``image_size`` resizes them all), so a bad file is named in one error.
"""

import os
import pathlib

import numpy as np

#: Image file suffixes read (those of ``keras.utils.image_dataset_from_directory``).
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
COLOR_MODES = ("grayscale", "rgb", "rgba")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _files(folder):
    """The image files Keras reads, and whether they come from class subfolders."""
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir())
    roots = subfolders or [folder]
    files = [
        p for root in roots for p in sorted(root.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    ]
    return files, bool(subfolders)


def _scan(folder, files):
    """``(sizes, modes)`` of every image, read by header; one clear error for an unreadable file."""
    from PIL import Image

    sizes, modes = {}, set()
    for path in files:
        try:
            with Image.open(path) as image:
                image.verify()
                size, mode = image.size, image.mode
        except Exception as err:  # noqa: BLE001  (PIL raises many kinds for a bad file)
            raise ValueError(f"{path} is not a readable image ({type(err).__name__}: {err}).") from None
        sizes.setdefault((size[1], size[0]), path)  # (height, width)
        modes.add(mode)
    return sizes, modes


def load_image_folder(path, image_size=None, color_mode=None):
    """All the images of a folder as one array, with labels from its class subfolders.

    Args:
        path: a folder of images, or of class subfolders of images.
        image_size: ``(height, width)`` every image is resized to; None:
            the images' own size, which must then be the same for all.
        color_mode: ``"grayscale"`` (1 channel), ``"rgb"`` (3) or
            ``"rgba"`` (4); None: grayscale when every image is, else rgb.

    Returns:
        dict: ``"x"`` float32 ``[N, height, width, channels]`` in [0, 1]
        (8-bit values divided by 255), ``"y"`` int32 ``[N]`` class indices
        (None without subfolders), ``"class_names"`` the sorted subfolder
        names (empty without subfolders), ``"files"`` the N file paths.

    Raises:
        FileNotFoundError: no folder at ``path``.
        ValueError: no images, an unreadable image, images of several sizes
            without ``image_size``, or a bad ``image_size`` / ``color_mode``.

    Example:
        >>> data = load_image_folder("pets", image_size=(64, 64))   # pets/cat/*.jpg, pets/dog/*.jpg
        >>> data["x"].shape, data["class_names"]
        ((N, 64, 64, 3), ['cat', 'dog'])
    """
    folder = pathlib.Path(os.fspath(path))
    if not folder.is_dir():
        raise FileNotFoundError(f"No such folder: {folder}; expected a folder of images or of class subfolders.")
    if color_mode is not None and color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {COLOR_MODES} or None, got {color_mode!r}.")
    if image_size is not None:
        image_size = tuple(int(s) for s in image_size)
        if len(image_size) != 2 or min(image_size) < 1:
            raise ValueError(f"image_size must be (height, width) of positive sizes, got {image_size!r}.")
    files, labelled = _files(folder)
    if not files:
        raise ValueError(
            f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); expected images, or class subfolders of images."
        )
    sizes, modes = _scan(folder, files)
    if image_size is None:
        if len(sizes) > 1:
            examples = "; ".join(f"{h}x{w} ({p.name})" for (h, w), p in list(sizes.items())[:3])
            raise ValueError(
                f"{folder} holds images of {len(sizes)} sizes ({examples}); give an image size to resize them "
                "to (image_size=(height, width), --image-size H,W)."
            )
        image_size = next(iter(sizes))
    if color_mode is None:
        color_mode = "grayscale" if modes <= set(_GRAY_MODES) else "rgb"

    import keras
    import tensorflow as tf

    ds = keras.utils.image_dataset_from_directory(
        str(folder),
        labels="inferred" if labelled else None,
        label_mode="int",
        color_mode=color_mode,
        image_size=image_size,
        batch_size=256,
        shuffle=False,
        verbose=False,
    )
    xs, ys = [], []
    try:
        for batch in ds.as_numpy_iterator():
            x, y = batch if labelled else (batch, None)
            xs.append(x)
            if y is not None:
                ys.append(y)
    except tf.errors.OpError as err:
        raise ValueError(f"An image in {folder} could not be decoded ({err.message.splitlines()[0]}).") from None
    x = (np.concatenate(xs) / np.float32(255.0)).astype(np.float32)
    return {
        "x": x,
        "y": np.concatenate(ys).astype(np.int32) if labelled else None,
        "class_names": list(ds.class_names) if labelled else [],
        "files": list(ds.file_paths),
    }
