"""Small datasets in the real on-disk formats, written by the tests themselves.

``write_coco``: COCO-2017 ``instances_*.json`` files (one polygon, one compressed RLE, one
crowd annotation as uncompressed RLE, ...) with JPEG images, and the expected full-resolution
masks. ``write_pcle``: a ``frames/<class>/<patient>/`` tree of grey PNG (and one 16-bit TIFF
patient) frames with PNG masks. ``write_image_folder``: ``images/<class>/`` with masks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from pycocotools import mask as mask_utils

CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 5, "name": "airplane", "supercategory": "vehicle"},
    {"id": 17, "name": "cat", "supercategory": "animal"},
    {"id": 18, "name": "dog", "supercategory": "animal"},
]
CAT, DOG, AIRPLANE = 17, 18, 5
#: colour painted under each category's mask (the rest of an image is dark grey)
COLOURS = {CAT: (230, 30, 30), DOG: (30, 200, 30), AIRPLANE: (30, 30, 220), 1: (200, 200, 30)}


def rectangle(x0: int, y0: int, x1: int, y1: int, shape: tuple[int, int]) -> np.ndarray:
    """The pixels a COCO polygon with corners (x0, y0), (x1, y1) covers: [y0, y1) x [x0, x1)."""
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def disc(cy: float, cx: float, r: float, shape: tuple[int, int]) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE (crowd annotations): run lengths over the column-major pixels,
    starting with a run of zeros."""
    flat = mask.flatten(order="F").astype(np.uint8)
    runs, current, length = [], 0, 0
    for v in flat:
        if v == current:
            length += 1
        else:
            runs.append(length)
            current, length = int(v), 1
    runs.append(length)
    return {"counts": runs, "size": list(mask.shape)}


def compressed_rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"counts": rle["counts"].decode("ascii"), "size": list(rle["size"])}


def _paint(shape: tuple[int, int], regions: list[tuple[int, np.ndarray]]) -> np.ndarray:
    img = np.full((*shape, 3), 60, np.uint8)
    for cat, m in regions:
        img[m] = COLOURS[cat]
    return img


def write_coco(root: Path, with_train: bool = True) -> dict[int, dict[int, np.ndarray]]:
    """A mini COCO-2017 under ``root``; returns {image id: {category id: expected mask}}.

    val2017 ids (odd: split val, even: split test):
    1 (64x64)  cat polygon rectangle + small dog polygon          -> val
    2 (64x64)  cat as compressed RLE (a disc)                      -> test
    3 (64x64)  cat crowd region (uncompressed RLE) + cat polygon   -> val
    4 (48x80)  cat triangle polygon on a wide image                -> test
    5 (64x64)  dog only                                            -> val
    6 (64x64)  a tiny cat (25 px, under the default min_area)      -> test
    7 (64x64)  airplane polygon                                    -> val
    train2017: ids 10 and 12, a cat rectangle each.
    """
    sq = (64, 64)
    tri = [[8, 40], [40, 4], [72, 44]]  # (x, y) vertices on the 48x80 image
    from skimage.draw import polygon as draw_polygon

    tri_mask = np.zeros((48, 80), bool)
    rr, cc = draw_polygon([p[1] for p in tri], [p[0] for p in tri], (48, 80))
    tri_mask[rr, cc] = True
    crowd = disc(44, 44, 9, sq) & ~rectangle(40, 40, 64, 44, sq)
    specs = {
        1: (sq, [(CAT, "poly", (10, 20, 30, 40)), (DOG, "poly", (44, 4, 54, 12))]),
        2: (sq, [(CAT, "rle", disc(24, 40, 12, sq))]),
        3: (sq, [(CAT, "crowd", crowd), (CAT, "poly", (4, 4, 20, 16))]),
        4: ((48, 80), [(CAT, "tri", tri)]),
        5: (sq, [(DOG, "poly", (8, 8, 48, 40))]),
        6: (sq, [(CAT, "poly", (30, 30, 35, 35))]),
        7: (sq, [(AIRPLANE, "poly", (12, 12, 52, 36))]),
    }
    expected: dict[int, dict[int, np.ndarray]] = {}
    images, anns = [], []
    for image_id, (shape, objects) in specs.items():
        masks: dict[int, np.ndarray] = {}
        for cat, kind, geom in objects:
            ann = {"id": len(anns) + 1, "image_id": image_id, "category_id": cat, "iscrowd": 0}
            if kind == "poly":
                x0, y0, x1, y1 = geom
                ann["segmentation"] = [[x0, y0, x1, y0, x1, y1, x0, y1]]
                m = rectangle(x0, y0, x1, y1, shape)
            elif kind == "tri":
                ann["segmentation"] = [[float(v) for p in geom for v in p]]
                m = tri_mask
            elif kind == "rle":
                ann["segmentation"] = compressed_rle(geom)
                m = geom
            else:
                ann["segmentation"] = uncompressed_rle(geom)
                ann["iscrowd"] = 1
                m = geom
            ys, xs = np.nonzero(m)
            ann["area"] = float(m.sum())
            ann["bbox"] = [
                float(xs.min()),
                float(ys.min()),
                float(np.ptp(xs) + 1),
                float(np.ptp(ys) + 1),
            ]
            anns.append(ann)
            masks[cat] = masks.get(cat, np.zeros(shape, bool)) | m
        expected[image_id] = masks
        images.append(_image_record(root / "val2017", image_id, shape, masks))
    _write_json(root / "annotations" / "instances_val2017.json", images, anns)
    if with_train:
        images, anns = [], []
        for image_id in (10, 12):
            m = rectangle(8, 8, 40, 56, sq)
            expected[image_id] = {CAT: m}
            images.append(_image_record(root / "train2017", image_id, sq, {CAT: m}))
            anns.append(
                {
                    "id": image_id,
                    "image_id": image_id,
                    "category_id": CAT,
                    "iscrowd": 0,
                    "segmentation": [[8, 8, 40, 8, 40, 56, 8, 56]],
                    "area": float(m.sum()),
                    "bbox": [8.0, 8.0, 32.0, 48.0],
                }
            )
        _write_json(root / "annotations" / "instances_train2017.json", images, anns)
    return expected


def _image_record(folder: Path, image_id: int, shape, masks) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{image_id:012d}.jpg"
    Image.fromarray(_paint(shape, list(masks.items()))).save(folder / name, quality=95)
    return {"id": image_id, "file_name": name, "height": shape[0], "width": shape[1]}


def _write_json(path: Path, images: list, anns: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": CATEGORIES}))


# -- pCLE frames by patient ----------------------------------------------------------------------
PCLE_SHAPE = (40, 48)  # frames are wider than high: the loader keeps the centred 40 x 40
N_FRAMES = 12


def background(i: int) -> int:
    """Grey level of frame ``i`` of a video (identifies the frame after loading)."""
    return 5 + 10 * i


def body(i: int) -> np.ndarray:
    """The psammoma-like disc of meningioma frame ``i`` (inside the centred square)."""
    return disc(20, 14 + i, 5, PCLE_SHAPE)


def write_pcle(root: Path, n_glio: int = 4, n_menin: int = 5) -> None:
    """``frames/<class>/<patient>/f<i>.png`` (i = 0..11, natural order matters: f2 < f10)
    and ``masks/meningioma/<patient>/f<i>.png``.

    Glioblastoma patient g4 stores 16-bit TIFF frames (0..65535); meningioma patient m1 lacks
    the mask of f2; the last meningioma patient has two video folders of 6 frames (v1, v2).
    """
    for k in range(1, n_glio + 1):
        folder = root / "frames" / "glioblastoma" / f"g{k}"
        folder.mkdir(parents=True)
        for i in range(N_FRAMES):
            frame = np.full(PCLE_SHAPE, background(i), np.uint8)
            if k == 4:  # full 16-bit range: scaled back to the same grey levels
                wide = frame.astype(np.uint16) * 257
                wide[-1, 0], wide[-1, -1] = 0, 65535  # outside the centred square
                tifffile.imwrite(folder / f"f{i}.tif", wide)
            else:
                Image.fromarray(frame).save(folder / f"f{i}.png")
    for k in range(1, n_menin + 1):
        videos = [("v1", 6), ("v2", 6)] if k == n_menin else [("", N_FRAMES)]
        for video, count in videos:
            rel = Path("meningioma") / f"m{k}" / video
            (root / "frames" / rel).mkdir(parents=True)
            (root / "masks" / rel).mkdir(parents=True)
            for i in range(count):
                frame = np.full(PCLE_SHAPE, background(i), np.uint8)
                frame[body(i)] = 255
                Image.fromarray(frame).save(root / "frames" / rel / f"f{i}.png")
                if not (k == 1 and i == 2):
                    mask = body(i).astype(np.uint8) * 255
                    Image.fromarray(mask).save(root / "masks" / rel / f"f{i}.png")


# -- generic image folders -----------------------------------------------------------------------
def write_image_folder(root: Path, counts: dict[str, int] | None = None) -> None:
    """``images/<class>/img<i>.png`` of value 10 * i + class offset; masks for class
    ``tumour`` (a square whose side grows with i), except img1."""
    counts = counts or {"normal": 10, "tumour": 10}
    for c, (cls, n) in enumerate(counts.items()):
        (root / "images" / cls).mkdir(parents=True)
        for i in range(n):
            img = np.full((36, 36, 3), 10 * i + c, np.uint8)
            Image.fromarray(img).save(root / "images" / cls / f"img{i}.png")
            if cls == "tumour" and i != 1:
                (root / "masks" / cls).mkdir(parents=True, exist_ok=True)
                m = np.zeros((36, 36), np.uint8)
                m[: i + 2, : i + 2] = 255
                Image.fromarray(m).save(root / "masks" / cls / f"img{i}.png")
