"""The detailed world's reader: every attribute a caption can name, read from pixels, per object.

Colours are exact measurements (hue classes, the world's six hues being 60° apart with ±12° jitter);
segmentation is classical (hue distance from the background, connected components); the two
attributes that need judgement use scikit-learn classifiers fitted on the world's own renders:

* an object's **kind** from its segment's shape features (area against the farthest point, compactness,
  solidity, eccentricity, Hu moments: all rotation-invariant), and
* the **texture** from the background's brightness after the objects are filled in (variance, the
  share of a planar ramp, the largest peaks of the power spectrum).

Both are fitted once per process on renders that are blurred and noised, so that a VAE round trip or
a model sample still reads (:func:`fit_reader`, a few seconds).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy import ndimage
from skimage.color import rgb2hsv
from skimage.measure import regionprops
from sklearn.ensemble import RandomForestClassifier

from toy.detailed.world import COLORS, HUES, IMAGE_SIZE, KINDS, MARGIN, TEXTURES, Described, Scene, parse_caption, sample_scenes, render

MIN_AREA = 12  # pixels: a smaller segment is a speck, not an object
OBJECT_HUE_GAP = 30.0  # degrees from the background hue beyond which a saturated pixel is an object's
MIN_SAT = 0.35
N_FIT = 1500  # scenes the classifiers are fitted on
_HUE_ARRAY = np.array(list(HUES.values()))


@dataclass(frozen=True)
class Reading:
    """What an image shows: objects as (colour, kind) left to right, background colour, texture."""

    objects: tuple[tuple[str, str], ...]
    background: str
    texture: str

    def matches(self, d: Described) -> bool:
        """Whether the reading agrees with a caption's description (the texture only if named)."""
        return self.objects == d.objects and self.background == d.background and d.texture in (None, self.texture)


def _hue_distance(h: np.ndarray, ref: float) -> np.ndarray:
    d = np.abs(h - ref) % 360
    return np.minimum(d, 360 - d)


def _hue_class(hues_deg: np.ndarray, weights: np.ndarray | None = None) -> int:
    """The colour index nearest to the circular mean of the hues."""
    ang = np.radians(hues_deg)
    w = np.ones_like(ang) if weights is None else weights
    mean = np.degrees(np.arctan2((w * np.sin(ang)).sum(), (w * np.cos(ang)).sum())) % 360
    return int(np.argmin(_hue_distance(_HUE_ARRAY, mean)))


def _segments(hsv: np.ndarray) -> tuple[int, list[np.ndarray]]:
    """Background colour index and the object masks (left to right) of one HSV image (H, W, 3)."""
    h, s = hsv[..., 0] * 360, hsv[..., 1]
    border = np.ones(h.shape, bool)
    border[MARGIN - 1:-(MARGIN - 1), MARGIN - 1:-(MARGIN - 1)] = False
    bg = _hue_class(h[border], s[border])
    fg = (_hue_distance(h, _HUE_ARRAY[bg]) > OBJECT_HUE_GAP) & (s > MIN_SAT)
    fg = ndimage.binary_opening(fg)
    labels, n = ndimage.label(fg)
    if n == 0:
        return bg, []
    areas = np.bincount(labels.ravel())[1:]
    keep = [i + 1 for i in np.argsort(-areas)[:2] if areas[i] >= MIN_AREA]
    masks = [ndimage.binary_fill_holes(labels == k) for k in keep]
    return bg, sorted(masks, key=lambda m: np.nonzero(m)[1].mean())


def kind_features(mask: np.ndarray) -> np.ndarray:
    """Rotation-invariant shape features of one object mask (H, W) bool: (9,)."""
    p = regionprops(mask.astype(np.uint8))[0]
    ys, xs = np.nonzero(mask)
    r_max = np.sqrt((ys - p.centroid[0]) ** 2 + (xs - p.centroid[1]) ** 2).max() + 0.5
    hu = -np.sign(p.moments_hu[:4]) * np.log10(np.abs(p.moments_hu[:4]) + 1e-12)
    return np.array([p.area / r_max**2, 4 * np.pi * p.area / max(p.perimeter, 1) ** 2, p.solidity,
                     p.eccentricity, p.extent, *hu])


def texture_features(value: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """Features of the background's brightness (H, W), objects (H, W bool) filled in: (13,).

    Its relative spread, the share a planar ramp explains (shaded), and the strongest peaks of the
    windowed power spectrum after the ramp is removed: their power shares and their radii and angle
    relative to the first (stripes: one peak; checks: two at right angles; dots: a lattice with
    harmonics at √2 and 2 times the first radius), and the skewness and kurtosis of what is left (dots
    are sparse dark spots: skewed; stripes and checks are symmetric, with kurtosis 1.5 and 2.25).
    """
    v = value.copy()
    grown = ndimage.binary_dilation(objects, iterations=2)
    if grown.any():  # fill each object with its surroundings, so edges add no texture
        idx = ndimage.distance_transform_edt(grown, return_distances=False, return_indices=True)
        v[grown] = v[tuple(i[grown] for i in idx)]
    v = v[MARGIN:-MARGIN, MARGIN:-MARGIN]
    rel = v / max(v.mean(), 1e-6) - 1
    ys, xs = np.mgrid[: rel.shape[0], : rel.shape[1]]
    design = np.stack([np.ones(rel.size), xs.ravel(), ys.ravel()], 1)
    coef, *_ = np.linalg.lstsq(design, rel.ravel(), rcond=None)
    resid = (rel.ravel() - design @ coef).reshape(rel.shape)
    floor = rel.size * 0.01**2  # a spread of 1 % is noise, not a ramp
    explained = 1 - (resid**2).sum() / ((rel**2).sum() + floor)
    window = np.outer(np.hanning(rel.shape[0]), np.hanning(rel.shape[1]))
    power = np.fft.fftshift(np.abs(np.fft.fft2(resid * window)) ** 2)
    c = np.array(power.shape) // 2
    power[c[0], c[1]] = 0
    power[: c[0]] = 0  # the spectrum is symmetric: keep one half-plane
    power[c[0], : c[1]] = 0
    peaks = np.argwhere((power == ndimage.maximum_filter(power, 3)) & (power > 0))
    order = np.argsort(-power[tuple(peaks.T)])[:8]
    peaks = peaks[order]
    share = np.zeros(8)
    share[: len(peaks)] = power[tuple(peaks.T)] / (power.sum() + 1e-12)
    k = (peaks - c).astype(float)
    radius = np.linalg.norm(k, axis=1) if len(k) else np.zeros(1)
    ratio = [radius[i] / max(radius[0], 1e-6) if i < len(radius) else 0.0 for i in (1, 2)]
    cosine = abs(k[0] @ k[1]) / max(radius[0] * radius[1], 1e-6) if len(k) > 1 else 1.0
    z = (resid - resid.mean()) / (resid.std() + 1e-6)
    return np.array([np.log(rel.std() + 1e-3), explained, share[0], share[1], share[2:4].sum(), share[4:8].sum(),
                     *ratio, cosine, share[:2].sum(), share[:4].sum(), (z**3).mean(), (z**4).mean()])


def _augment(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Blur and noise like a VAE round trip or a sample: a reader fitted on clean renders would overfit."""
    out = []
    for x in images.numpy():
        sigma = rng.uniform(0, 1.0)
        x = ndimage.gaussian_filter(x, (0, sigma, sigma)) + rng.normal(0, rng.uniform(0, 0.06), x.shape)
        out.append(x)
    return torch.from_numpy(np.stack(out)).float()


def _to_hsv(images: torch.Tensor) -> np.ndarray:
    x = images.detach().cpu().float()
    if x.shape[-1] != IMAGE_SIZE:
        x = torch.nn.functional.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="area")
    return rgb2hsv(((x.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy())


@lru_cache(maxsize=1)
def fit_reader(n: int = N_FIT, seed: int = 0) -> tuple[RandomForestClassifier, RandomForestClassifier]:
    """The kind and texture classifiers, fitted on ``n`` blurred and noised training renders."""
    rng = np.random.default_rng(seed)
    scenes = sample_scenes(n, seed, "train")
    hsv = _to_hsv(_augment(render(scenes), rng))
    kx, ky, tx, ty = [], [], [], []
    for s, im in zip(scenes, hsv):
        _, masks = _segments(im)
        if len(masks) == len(s.objects):
            for m, o in zip(masks, s.objects):
                kx.append(kind_features(m))
                ky.append(KINDS.index(o.kind))
        tx.append(texture_features(im[..., 2], np.any(masks, axis=0) if masks else np.zeros(im.shape[:2], bool)))
        ty.append(TEXTURES.index(s.texture))
    kinds = RandomForestClassifier(100, min_samples_leaf=2, random_state=seed, n_jobs=1).fit(kx, ky)
    textures = RandomForestClassifier(100, min_samples_leaf=2, random_state=seed, n_jobs=1).fit(tx, ty)
    return kinds, textures


def read(images: torch.Tensor) -> list[Reading]:
    """Read every image: (B, 3, H, W) in [-1, 1] (any square size; read on the 64² grid).

    Returns:
        B :class:`Reading`; an image with no visible object reads with ``objects=()``.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected a (B, 3, H, W) tensor in [-1, 1], got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    kinds, textures = fit_reader()
    hsv = _to_hsv(images)
    found = [_segments(im) for im in hsv]
    shape_x = [kind_features(m) for _, masks in found for m in masks]
    shape_y = iter(kinds.predict(np.array(shape_x)) if shape_x else [])
    texture_x = [texture_features(im[..., 2], np.any(masks, axis=0) if masks else np.zeros(im.shape[:2], bool))
                 for im, (_, masks) in zip(hsv, found)]
    texture_y = textures.predict(np.array(texture_x))
    out = []
    for im, (bg, masks), t in zip(hsv, found, texture_y):
        objects = tuple((COLORS[_hue_class(im[..., 0][m] * 360, im[..., 1][m])], KINDS[int(next(shape_y))]) for m in masks)
        out.append(Reading(objects, COLORS[bg], TEXTURES[int(t)]))
    return out


def degrade(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A 3×3 box blur and noise σ = 0.04, clipped to [−1, 1]: renders made to look like a generator's
    samples, to test the reader on (B, 3, H, W) → (B, 3, H, W)."""
    blurred = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(images, (1, 1, 1, 1), mode="replicate"), 3, 1)
    return (blurred + 0.04 * torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))).clamp(-1, 1)


def truth(scene: Scene) -> Reading:
    """The reading a perfect render of ``scene`` should give."""
    return Reading(tuple((o.color, o.kind) for o in scene.objects), scene.background, scene.texture)


def prompt_accuracy(images: torch.Tensor, captions: list[str]) -> float:
    """Share of images whose reading matches their caption: every object's colour and kind in order,
    the background colour, and the texture where the caption names it."""
    if len(images) != len(captions):
        raise ValueError(f"prompt_accuracy: {len(images)} images but {len(captions)} captions")
    return float(np.mean([r.matches(parse_caption(c)) for r, c in zip(read(images), captions)]))
