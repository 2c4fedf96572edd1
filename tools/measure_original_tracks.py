"""Measure the original package's track pictures into our own track data (run once, while developing).

The original simulator (``rewards-envs`` 0.1.3 on the package index) ships its tracks as pictures: grey
asphalt on green grass. This script turns each picture into what ``rewards_api.envs.tracks`` builds a
track from, and keeps the picture's asphalt outline for the test that holds the two to an
intersection-over-union of at least 0.8. Neither the pictures nor anything downloaded is used at run time.

How a picture is measured:

1. Asphalt is every pixel whose green channel is below 200 (asphalt is (128, 128, 128), grass is
   (173, 255, 133); anti-aliased edge pixels fall on the nearer side).
2. The grass splits into two regions: outside the loop (touching the border) and inside it. The centre
   line is the zero level set of (distance to the inside grass - distance to the outside grass), traced
   with sub-pixel accuracy (marching squares) over the asphalt.
3. The width is the median, along that centre line, of the distance between the two grass regions.
4. The centre line is oriented the way the original car drives (east along the top straight, from its
   start at (200, 50)), sampled every ``CONTROL_SPACING`` px as the control points of the closed B-spline
   our tracks are made of, and started at the control point nearest the original start.
5. Bends tighter than ``MIN_RADIUS`` (the car turns on a 38 px circle) are eased: the control points
   around each such bend are smoothed a little, and again, only until every bend is wide enough; the
   script prints where and how far the centre line moved.

Usage (needs scikit-image, which the product itself does not)::

    pip download --no-deps rewards-envs==0.1.3 -d /tmp/orig && unzip -q /tmp/orig/*.whl -d /tmp/orig/x
    pip install -e '.[measure-tracks]'
    python tools/measure_original_tracks.py /tmp/orig/x/rewards_envs/engines/pygame/car_race/assets

It writes ``rewards_api/envs/data/original_tracks.json`` and ``tests/envs/data/original_asphalt.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage, optimize
from skimage import measure

from rewards_api.envs.tracks import MIN_GRASS_GAP, MIN_RADIUS, Track, asphalt_iou, track_from_control_points

ROOT = Path(__file__).resolve().parent.parent
TRACK_DATA = ROOT / "rewards_api" / "envs" / "data" / "original_tracks.json"
OUTLINE_DATA = ROOT / "tests" / "envs" / "data" / "original_asphalt.json"

PICTURES = {
    ("training", 1): "training/track-1.png",
    ("training", 2): "training/track-2.png",
    ("training", 3): "training/track-3.png",
    ("evaluation", 1): "evaluation/track-1.png",
}
ORIGINAL_START = (200.0, 50.0)  # the original car's centre at reset, heading east
CONTROL_SPACING = 15.0
"""Pixels between the B-spline control points taken from the measured centre line."""
EASE_MARGIN = 1.0
"""Pixels of radius added to MIN_RADIUS when easing, so rounding the data keeps every bend valid."""


def asphalt_mask(picture: Path) -> np.ndarray:
    """(H, W) bool: the picture's asphalt."""
    return np.asarray(Image.open(picture).convert("RGB"))[..., 1] < 200


def centre_line(asphalt: np.ndarray) -> tuple[np.ndarray, float]:
    """The closed centre line ((n, 2) x, y points, dense) and the track's width, in pixels."""
    labels, count = ndimage.label(~asphalt)
    if count != 2:
        raise SystemExit(f"expected grass inside and outside the loop, found {count} regions")
    outside = labels[0, 0]
    inside = 3 - outside
    to_inside = ndimage.distance_transform_edt(labels != inside)
    to_outside = ndimage.distance_transform_edt(labels != outside)
    contours = measure.find_contours(to_inside - to_outside, 0.0, mask=asphalt)
    loop = max(contours, key=len)[:, ::-1]  # (row, col) -> (x, y)
    if np.hypot(*(loop[0] - loop[-1])) > 2:
        raise SystemExit("the centre line is not a closed loop")
    rows, cols = (
        np.clip(np.round(loop[:, 1]).astype(int), 0, asphalt.shape[0] - 1),
        np.clip(np.round(loop[:, 0]).astype(int), 0, asphalt.shape[1] - 1),
    )
    width = float(np.median(to_inside[rows, cols] + to_outside[rows, cols]))
    return loop[:-1], width


def control_points(loop: np.ndarray) -> np.ndarray:
    """Points every CONTROL_SPACING px along the loop, driven as the original car drives, from its start."""
    closed = np.vstack([loop, loop[:1]])
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(closed, axis=0).T))])
    count = round(arc[-1] / CONTROL_SPACING)
    s = np.linspace(0.0, arc[-1], count, endpoint=False)
    points = np.stack([np.interp(s, arc, closed[:, 0]), np.interp(s, arc, closed[:, 1])], axis=1)
    first = int(np.argmin(np.hypot(*(points - ORIGINAL_START).T)))
    points = np.roll(points, -first, axis=0)
    if points[1, 0] < points[0, 0]:  # the original car starts heading east
        points = np.roll(points[::-1], 1, axis=0)
    return points


def build(name: str, points: np.ndarray, width: float, size: tuple[int, int]) -> Track:
    return track_from_control_points(name, points, width, size, start_index=0)


def _spline_matrices(k: int, per_span: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matrices giving a closed uniform cubic B-spline's points and first two derivatives from its k
    control points, ``per_span`` samples a span (the same basis as ``tracks.bspline_loop``)."""
    t = np.linspace(0.0, 1.0, per_span, endpoint=False)
    bases = (
        np.stack([(1 - t) ** 3, 3 * t**3 - 6 * t**2 + 4, -3 * t**3 + 3 * t**2 + 3 * t + 1, t**3], 1) / 6,
        np.stack([-3 * (1 - t) ** 2, 9 * t**2 - 12 * t, -9 * t**2 + 6 * t + 3, 3 * t**2], 1) / 6,
        np.stack([6 * (1 - t), 18 * t - 12, -18 * t + 6, 6 * t], 1) / 6,
    )
    matrices = []
    for basis in bases:
        m = np.zeros((k * per_span, k))
        for span in range(k):
            for i in range(4):
                m[span * per_span : (span + 1) * per_span, (span - 1 + i) % k] += basis[:, i]
        matrices.append(m)
    return matrices[0], matrices[1], matrices[2]


def ease(name: str, points: np.ndarray, width: float, size: tuple[int, int]) -> np.ndarray:
    """Move the control points as little as possible (least squares) so that no bend of the centre line
    is tighter than MIN_RADIUS and no two parts of the track have less than MIN_GRASS_GAP of grass
    between them (each plus EASE_MARGIN): a penalty method, tightened until both hold."""
    k = len(points)
    d0, d1, d2 = _spline_matrices(k)
    curvature_limit = 1.0 / (MIN_RADIUS + EASE_MARGIN)
    spacing_needed = width + MIN_GRASS_GAP + EASE_MARGIN
    start = d0 @ points
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(start, axis=0).T))])
    along = np.abs(arc[:, None] - arc[None, :])
    along = np.minimum(along, arc[-1] - along)
    apart = np.hypot(*(start[:, None, :] - start[None, :, :]).transpose(2, 0, 1))
    pairs = np.argwhere((along > 2.5 * (width + MIN_GRASS_GAP)) & (apart < spacing_needed + 10))
    pairs = pairs[pairs[:, 0] < pairs[:, 1]]

    def penalty(flat: np.ndarray) -> tuple[float, np.ndarray]:
        """Sum of squared curvature and spacing excesses, and its gradient by the control points."""
        c = flat.reshape(k, 2)
        (x1, y1), (x2, y2) = (d1 @ c).T, (d2 @ c).T
        cross = x1 * y2 - y1 * x2
        speed = np.hypot(x1, y1)
        excess = np.maximum(np.abs(cross) / speed**3 - curvature_limit, 0.0)
        g = 2 * excess * np.sign(cross) / speed**3  # d(penalty)/d(cross), at fixed speed
        h = -3 * 2 * excess * np.abs(cross) / speed**5  # d(penalty)/d(speed) / speed
        grad = d1.T @ np.stack([g * y2 + h * x1, -g * x2 + h * y1], 1)
        grad += d2.T @ np.stack([-g * y1, g * x1], 1)
        value = float((excess**2).sum())
        if len(pairs):
            p = d0 @ c
            delta = p[pairs[:, 0]] - p[pairs[:, 1]]
            distance = np.hypot(*delta.T)
            short = np.maximum(spacing_needed - distance, 0.0)
            value += float((short**2).sum()) / 1e4  # pixels against curvature (1/px): on one scale
            pull = (-2 * short / distance / 1e4)[:, None] * delta
            gp = np.zeros_like(p)
            np.add.at(gp, pairs[:, 0], pull)
            np.add.at(gp, pairs[:, 1], -pull)
            grad += d0.T @ gp
        return value, grad.ravel()

    flat0 = points.ravel()
    flat = flat0.copy()
    for weight in (1e4, 1e5, 1e6, 1e7, 1e8, 1e9):

        def objective(f: np.ndarray, w: float = weight) -> tuple[float, np.ndarray]:
            value, grad = penalty(f)
            return float(((f - flat0) ** 2).sum()) + w * value, 2 * (f - flat0) + w * grad

        flat = optimize.minimize(objective, flat, jac=True, method="L-BFGS-B", options={"maxiter": 5000}).x
        if penalty(flat)[0] == 0:
            break
    eased = flat.reshape(k, 2)
    problems = [p for p in build(name, eased, width, size).problems() if "bend" in p or "apart" in p]
    if problems:
        raise SystemExit(f"{name}: could not ease the track: {problems}")
    return eased


def start_on_straight(name: str, points: np.ndarray, width: float, size: tuple[int, int]) -> int:
    """The first control point, from the original car's start onwards, where the start line is on a
    straight."""
    for first in range(len(points) // 4):
        rolled = np.roll(points, -first, axis=0)
        if not any("start line" in p for p in build(name, rolled, width, size).problems()):
            return first
    raise SystemExit(f"{name}: no straight after the original start")


def outlines(asphalt: np.ndarray, tolerance: float = 0.4) -> list[list[list[float]]]:
    """The asphalt's boundaries as closed polygons (x, y), each simplified to within ``tolerance`` px."""
    padded = np.pad(asphalt.astype(float), 1)
    found = []
    for contour in measure.find_contours(padded, 0.5):
        simple = measure.approximate_polygon(contour - 1, tolerance)[:, ::-1]
        found.append(np.round(simple, 1).tolist())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assets", type=Path, help="the original package's car_race/assets folder")
    assets = parser.parse_args().assets
    tracks, asphalt_outlines = {}, {}
    for (mode, number), relative in PICTURES.items():
        asphalt = asphalt_mask(assets / relative)
        size = (asphalt.shape[1], asphalt.shape[0])
        loop, width = centre_line(asphalt)
        width = round(width, 1)
        name = f"{mode}-{number}"
        measured = control_points(loop)
        eased = ease(name, measured, width, size)
        first = start_on_straight(name, eased, width, size)
        eased, measured = np.roll(eased, -first, axis=0), np.roll(measured, -first, axis=0)
        moved = np.hypot(*(eased - measured).T)
        track = build(name, np.round(eased, 1), width, size)
        problems = track.problems()
        iou = asphalt_iou(track, asphalt)
        print(
            f"{name}: width {width} px, {len(eased)} control points, length {track.length:.0f} px, "
            f"IoU {iou:.3f}, eased {int((moved > 0.05).sum())} points by at most {moved.max():.1f} px, "
            f"tightest bend {track.curvature_radii().min():.1f} px; problems: {problems or 'none'}"
        )
        tracks[name] = {
            "mode": mode,
            "number": number,
            "size": list(size),
            "width": width,
            "control_points": np.round(eased, 1).tolist(),
            "eased_px": round(float(moved.max()), 1),
        }
        asphalt_outlines[name] = {"size": list(size), "polygons": outlines(asphalt)}
    TRACK_DATA.parent.mkdir(parents=True, exist_ok=True)
    TRACK_DATA.write_text(json.dumps(tracks, separators=(",", ":")) + "\n")
    OUTLINE_DATA.parent.mkdir(parents=True, exist_ok=True)
    OUTLINE_DATA.write_text(json.dumps(asphalt_outlines, separators=(",", ":")) + "\n")
    print(f"wrote {TRACK_DATA.relative_to(ROOT)} and {OUTLINE_DATA.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
