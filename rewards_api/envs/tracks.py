"""Race tracks as data: a closed centre line and a width, plus the look-up grids physics needs.

Coordinates are image pixels: ``x`` to the right, ``y`` *down*, origin at the top-left corner, exactly
as in the track's PNG. A track is driven in the order of its waypoints; waypoint 0 is the start line,
placed on a straight, and the car starts there facing along the track.

Every track is made from control points, smoothed by a closed cubic B-spline and resampled every
``WAYPOINT_SPACING`` pixels. The built-in tracks 1-3 and evaluation track 1 are the original package's
track pictures, measured once into control points and a width (``data/original_tracks.json``, made by
``tools/measure_original_tracks.py``); the tracks this project designed first are kept by name
(``NAMED_TRACKS``), and the racing tracks (``RACING_TRACKS``, and the held-out ``EVALUATION_NAMED_TRACKS``)
add long straights into braking zones, hairpins, chicanes and narrower asphalt. Every built-in track has a
difficulty (``DIFFICULTIES``, beginner to expert); :mod:`rewards_api.envs.catalogue` lists them with their
reference lap times. Random tracks (``"random:SEED"``, ``"random:SEED:DIFFICULTY"``) come from the same
machinery with random control points and are always checked to be valid closed loops.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

WAYPOINT_SPACING = 5.0
"""Pixels between consecutive waypoints of every track."""

MIN_RADIUS = 45.0
"""Tightest allowed bend of a centre line, in pixels (the car's own turning circle is ~38 px)."""

MIN_GRASS_GAP = 20.0
"""Narrowest strip of grass allowed between two parts of a track, in pixels."""

EDGE_MARGIN = 5.0
"""Grass kept between the asphalt and the border of the image, in pixels (the original track 1 has 6)."""

DIFFICULTIES: tuple[str, ...] = ("beginner", "intermediate", "advanced", "expert")
"""How hard a track is to race, easiest first: wide and gentle (beginner) to narrow, with hairpins and
chicanes (expert). Every built-in track has one, and so does every random track."""

_FAR = np.float32(1e4)  # "distance to the centre line" of pixels well away from any asphalt


@dataclass(frozen=True, eq=False)
class Track:
    """A closed race track: centre-line waypoints (pixels), a width (pixels) and an image size.

    ``waypoints[0]`` is the start line; the track runs in the order of the waypoints. ``difficulty`` is
    one of ``DIFFICULTIES`` for the built-in and random tracks, empty for a track made by hand.
    """

    name: str
    waypoints: np.ndarray
    width: float
    size: tuple[int, int]
    description: str = ""
    difficulty: str = ""
    _grid_band: float = field(default=30.0, repr=False)

    def __post_init__(self) -> None:
        wp = np.ascontiguousarray(self.waypoints, dtype=np.float64)
        if wp.ndim != 2 or wp.shape[1] != 2 or len(wp) < 8:
            raise ValueError(f"track {self.name!r}: waypoints must be an (n >= 8, 2) array")
        if self.difficulty and self.difficulty not in DIFFICULTIES:
            raise ValueError(f"track {self.name!r}: difficulty {self.difficulty!r} is not one of "
                             f"{', '.join(DIFFICULTIES)}")
        wp.setflags(write=False)
        object.__setattr__(self, "waypoints", wp)

    # ----- geometry of the centre line -------------------------------------------------------------
    @property
    def half_width(self) -> float:
        return self.width / 2.0

    @property
    def num_waypoints(self) -> int:
        return len(self.waypoints)

    @cached_property
    def segments(self) -> np.ndarray:
        """(n, 2) vectors from waypoint i to waypoint i+1 (the last one closes the loop)."""
        return np.roll(self.waypoints, -1, axis=0) - self.waypoints

    @cached_property
    def segment_lengths(self) -> np.ndarray:
        return np.hypot(self.segments[:, 0], self.segments[:, 1])

    @cached_property
    def arc_starts(self) -> np.ndarray:
        """Distance along the centre line from the start line to each waypoint, in pixels."""
        return np.concatenate([[0.0], np.cumsum(self.segment_lengths)[:-1]])

    @cached_property
    def length(self) -> float:
        """Length of one lap along the centre line, in pixels."""
        return float(self.segment_lengths.sum())

    def pose_at(self, index: int) -> tuple[float, float, float]:
        """``(x, y, heading)`` at a waypoint, facing along the track (heading in radians, CCW on screen)."""
        x, y = self.waypoints[index]
        dx, dy = self.segments[index]
        return float(x), float(y), float(np.arctan2(-dy, dx))

    @cached_property
    def waypoint_tuples(self) -> tuple[tuple[float, float], ...]:
        """The waypoints as an immutable tuple of ``(x, y)`` pairs, as reward functions see them."""
        return tuple((float(x), float(y)) for x, y in self.waypoints)

    # ----- look-up grids ---------------------------------------------------------------------------
    @cached_property
    def _grids(self) -> tuple[np.ndarray, np.ndarray]:
        return _distance_grids(self.waypoints, self.size, self.half_width + self._grid_band)

    @property
    def center_distance(self) -> np.ndarray:
        """(H, W) float32: distance from each pixel centre to the centre line (large far away)."""
        return self._grids[0]

    @property
    def nearest_waypoint(self) -> np.ndarray:
        """(H, W) int32: index of the waypoint nearest to each pixel (-1 far from the track)."""
        return self._grids[1]

    @cached_property
    def asphalt(self) -> np.ndarray:
        """(H, W) bool: True where a pixel is on the track."""
        return self.center_distance <= self.half_width

    # ----- validity --------------------------------------------------------------------------------
    def curvature_radii(self, window: int = 3) -> np.ndarray:
        """Radius of the bend at each waypoint, in pixels, measured over ±``window`` waypoints."""
        headings = np.unwrap(np.arctan2(self.segments[:, 1], self.segments[:, 0]))
        n = len(headings)
        idx = np.arange(n)
        turned = headings[(idx + window) % n] - headings[(idx - window) % n]
        # Across the loop's closure the unwrapped headings differ by a whole turn: fold into (-pi, pi].
        turned = (turned + np.pi) % (2 * np.pi) - np.pi
        arc = 2 * window * WAYPOINT_SPACING
        with np.errstate(divide="ignore"):
            return np.where(np.abs(turned) > 1e-9, arc / np.abs(turned), np.inf)

    def problems(self) -> list[str]:
        """Reasons this track is not a drivable closed loop; empty when it is valid."""
        found: list[str] = []
        w, h = self.size
        margin = self.half_width + EDGE_MARGIN
        x, y = self.waypoints[:, 0], self.waypoints[:, 1]
        if x.min() < margin or y.min() < margin or x.max() > w - margin or y.max() > h - margin:
            found.append(f"the asphalt comes closer than {EDGE_MARGIN:g} px to the image border")
        tightest = float(self.curvature_radii().min())
        if tightest < MIN_RADIUS:
            found.append(f"a bend of radius {tightest:.0f} px is tighter than {MIN_RADIUS:g} px")
        gap = _narrowest_gap(self.waypoints, self.arc_starts, self.length, self.width)
        if gap < MIN_GRASS_GAP:
            found.append(f"two parts of the track are {gap:.0f} px apart (need {MIN_GRASS_GAP:g} px)")
        start_radius = float(self.curvature_radii(window=6)[:4].min())
        if start_radius < 400:
            found.append("the start line is not on a straight")
        return found

    def __repr__(self) -> str:
        return (
            f"Track({self.name!r}, {self.size[0]}x{self.size[1]}, width={self.width:g}, "
            f"length={self.length:.0f}px)"
        )


def asphalt_iou(track: Track, asphalt: np.ndarray) -> float:
    """Intersection over union of ``track``'s asphalt and another (H, W) bool asphalt mask of its size."""
    ours = track.asphalt
    if ours.shape != asphalt.shape:
        raise ValueError(f"the masks differ in size: {ours.shape} and {asphalt.shape}")
    return float((ours & asphalt).sum() / (ours | asphalt).sum())


# ----- building tracks -------------------------------------------------------------------------------
def bspline_loop(control_points: np.ndarray, samples_per_span: int = 40) -> np.ndarray:
    """Densely sample the closed uniform cubic B-spline of ``control_points`` ((k, 2) array)."""
    p = np.asarray(control_points, dtype=np.float64)
    t = np.linspace(0.0, 1.0, samples_per_span, endpoint=False)
    basis = np.stack(
        [(1 - t) ** 3, 3 * t**3 - 6 * t**2 + 4, -3 * t**3 + 3 * t**2 + 3 * t + 1, t**3], axis=1
    ) / 6.0
    spans = np.stack([np.roll(p, 1 - i, axis=0) for i in range(4)], axis=1)  # (k, 4, 2)
    return np.einsum("sj,kjd->ksd", basis, spans).reshape(-1, 2)


def resample_loop(points: np.ndarray, spacing: float = WAYPOINT_SPACING) -> np.ndarray:
    """Resample a closed polyline to points ``spacing`` pixels apart along its length."""
    closed = np.vstack([points, points[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    count = max(8, round(cum[-1] / spacing))
    s = np.linspace(0.0, cum[-1], count, endpoint=False)
    return np.stack([np.interp(s, cum, closed[:, 0]), np.interp(s, cum, closed[:, 1])], axis=1)


def _straightest_index(waypoints: np.ndarray, look: int = 12) -> int:
    """Index of the waypoint where the track is straightest over the next ``look`` waypoints."""
    seg = np.roll(waypoints, -1, axis=0) - waypoints
    ang = np.arctan2(seg[:, 1], seg[:, 0])
    turn = np.abs((np.roll(ang, -1) - ang + np.pi) % (2 * np.pi) - np.pi)
    window = np.convolve(np.concatenate([turn, turn[: 2 * look]]), np.ones(2 * look), "valid")
    return int((np.argmin(window[: len(turn)]) + look) % len(turn))


def track_from_control_points(
    name: str,
    control_points: list[tuple[float, float]] | np.ndarray,
    width: float,
    size: tuple[int, int],
    description: str = "",
    start_index: int | None = None,
    difficulty: str = "",
) -> Track:
    """Build a track from the control points of a closed B-spline, starting on its straightest part.

    ``start_index`` (a control-point index) puts the start line near that control point instead.
    """
    dense = bspline_loop(np.asarray(control_points, dtype=np.float64))
    wp = resample_loop(dense)
    if start_index is None:
        first = _straightest_index(wp)
    else:
        target = np.asarray(control_points[start_index], dtype=np.float64)
        first = int(np.argmin(np.hypot(*(wp - target).T)))
    return Track(name=name, waypoints=np.roll(wp, -first, axis=0), width=width, size=size,
                 description=description, difficulty=difficulty)


def _narrowest_gap(wp: np.ndarray, arc: np.ndarray, length: float, width: float) -> float:
    """Narrowest grass strip between parts of the loop that are far apart along the track."""
    d = np.hypot(wp[:, None, 0] - wp[None, :, 0], wp[:, None, 1] - wp[None, :, 1])
    along = np.abs(arc[:, None] - arc[None, :])
    along = np.minimum(along, length - along)
    far_apart = along > 2.5 * (width + MIN_GRASS_GAP)
    if not far_apart.any():
        return np.inf
    return float(d[far_apart].min() - width)


def _distance_grids(wp: np.ndarray, size: tuple[int, int], band: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel distance to the nearest waypoint and its index, within ``band`` of the centre line."""
    w, h = size
    dist = np.full((h, w), _FAR, dtype=np.float32)
    nearest = np.full((h, w), -1, dtype=np.int32)
    r = int(np.ceil(band)) + 1
    offs = np.arange(-r, r + 1)
    for i, (x, y) in enumerate(wp):
        cx, cy = int(x), int(y)
        xs = np.clip(cx + offs, 0, w - 1)
        ys = np.clip(cy + offs, 0, h - 1)
        x0, x1, y0, y1 = xs[0], xs[-1] + 1, ys[0], ys[-1] + 1
        px = np.arange(x0, x1) + 0.5 - x
        py = np.arange(y0, y1) + 0.5 - y
        d = np.sqrt(py[:, None] ** 2 + px[None, :] ** 2).astype(np.float32)
        view = dist[y0:y1, x0:x1]
        closer = (d < view) & (d <= band)
        view[closer] = d[closer]
        nearest[y0:y1, x0:x1][closer] = i
    dist.setflags(write=False)
    nearest.setflags(write=False)
    return dist, nearest


# ----- the built-in tracks ---------------------------------------------------------------------------
TRAINING_SIZE = (800, 700)
EVALUATION_SIZE = (1000, 700)
TRACK_WIDTH = 70.0

# The built-in tracks 1-3 and evaluation track 1 are the original package's (rewards-envs 0.1.3) track
# pictures, measured into centre-line control points and a width by tools/measure_original_tracks.py.
ORIGINAL_TRACKS_FILE = Path(__file__).with_name("data") / "original_tracks.json"

_ORIGINAL_DESCRIPTIONS = {
    ("training", 1): "The original track 1: a long top straight, S-bends down the right, a hairpin in the "
                     "middle and a winding return",
    ("training", 2): "The original track 2: a long top straight, a sweeping descent and an S on the left",
    ("training", 3): "The original track 3: a long top straight, an S through the middle and a wide return",
    ("evaluation", 1): "The original evaluation track: 1000 px wide, a hairpin, long sweepers and a double "
                       "fold",
}

_ORIGINAL_DIFFICULTIES = {
    ("training", 1): "intermediate",  # S-bends and a hairpin, on the widest asphalt
    ("training", 2): "beginner",
    ("training", 3): "beginner",
    ("evaluation", 1): "intermediate",
}

# The tracks this project first shipped as 1-3 and evaluation 1, kept under names of their own.
_NAMED_CONTROL_POINTS: dict[str, tuple[tuple[int, int], str, list[tuple[float, float]]]] = {
    "serpent": (
        TRAINING_SIZE,
        "Serpent: a long top straight, a run of S-bends down the right and two hairpins",
        [
            (75, 165), (84, 131), (105, 103), (134, 85), (169, 80), (289, 80), (409, 80),
            (529, 80), (642, 80), (676, 86), (703, 108), (716, 140), (715, 175), (700, 206),
            (637, 250), (612, 274), (602, 307), (610, 341), (633, 367), (657, 392), (665, 425),
            (657, 459), (572, 530), (462, 576), (429, 588), (395, 591), (363, 577), (344, 548),
            (340, 429), (340, 321), (333, 287), (311, 261), (278, 250), (244, 258), (219, 282),
            (210, 315), (210, 435), (210, 549), (204, 583), (181, 609), (148, 620), (114, 614),
            (88, 591), (77, 558), (70, 439), (67, 378), (66, 343), (72, 223), (75, 170),
        ],
    ),
    "twin-hairpins": (
        TRAINING_SIZE,
        "Twin hairpins: a fast outer loop folded by two deep hairpins",
        [
            (73, 163), (83, 129), (104, 102), (134, 85), (254, 80), (374, 80), (494, 80),
            (585, 80), (620, 83), (653, 94), (683, 112), (707, 137), (726, 166), (737, 199),
            (740, 234), (740, 354), (740, 474), (740, 544), (734, 578), (713, 606), (681, 619),
            (646, 616), (618, 596), (602, 566), (600, 446), (600, 326), (600, 281), (593, 247),
            (571, 221), (538, 210), (504, 218), (479, 242), (470, 275), (470, 395), (470, 515),
            (470, 552), (463, 586), (440, 611), (406, 620), (373, 613), (348, 588), (340, 555),
            (340, 435), (340, 371), (333, 337), (311, 311), (278, 300), (244, 308), (219, 332),
            (210, 365), (210, 485), (210, 552), (203, 586), (180, 611), (146, 620), (112, 614),
            (86, 592), (76, 559), (68, 439), (62, 365), (61, 330), (70, 211), (73, 168),
        ],
    ),
    "zig-zag": (
        TRAINING_SIZE,
        "Zig-zag: a fold with chicanes through the middle and a sweeping return",
        [
            (108, 202), (106, 167), (116, 134), (138, 106), (167, 88), (201, 80), (321, 80),
            (441, 80), (561, 80), (640, 80), (674, 86), (702, 106), (718, 137), (718, 172),
            (703, 203), (675, 224), (641, 230), (546, 230), (512, 237), (482, 256), (371, 260),
            (337, 266), (311, 289), (300, 322), (308, 356), (332, 381), (365, 390), (455, 390),
            (489, 383), (519, 365), (638, 372), (672, 378), (701, 398), (717, 428), (720, 524),
            (715, 559), (698, 589), (671, 610), (637, 620), (517, 620), (397, 620), (277, 620),
            (202, 620), (168, 615), (138, 598), (116, 571), (100, 540), (92, 506), (92, 471),
            (118, 353), (125, 319), (125, 284), (109, 207),
        ],
    ),
    "grand-tour": (
        EVALUATION_SIZE,
        "Grand tour: 1000 px wide, a tightening hairpin, fast sweepers and a double-apex return",
        [
            (88, 188), (94, 153), (111, 123), (136, 99), (168, 84), (202, 80), (322, 80),
            (442, 80), (562, 80), (682, 80), (794, 80), (829, 84), (861, 98), (886, 122),
            (903, 152), (910, 186), (910, 306), (910, 426), (910, 514), (906, 549), (890, 580),
            (865, 604), (833, 617), (796, 620), (762, 614), (734, 592), (721, 561), (720, 441),
            (720, 331), (715, 296), (699, 265), (673, 243), (640, 231), (605, 233), (577, 254),
            (565, 286), (564, 321), (554, 354), (531, 381), (501, 397), (466, 400), (395, 373),
            (362, 363), (327, 366), (296, 383), (274, 409), (234, 522), (221, 554), (195, 577),
            (161, 584), (128, 572), (101, 551), (84, 520), (83, 401), (86, 281), (88, 193),
        ],
    ),
}

_NAMED_DIFFICULTIES = {
    "serpent": "advanced",  # S-bends and two hairpins of 48 px radius, 70 px across
    "twin-hairpins": "advanced",
    "zig-zag": "intermediate",
    "grand-tour": "intermediate",
}


@dataclass(frozen=True)
class _Design:
    """A racing track's design: ``start`` is the control point the start line is at."""

    mode: str  # "training", or "evaluation": held out from training
    size: tuple[int, int]
    width: float
    difficulty: str
    start: int
    description: str
    control_points: list[tuple[float, float]]


# The racing tracks: straights long enough to reach top speed (4 m/s takes 2.7 m from rest) ending in
# braking zones, hairpins (two 90-degree bends of 50-60 px radius: a cornering speed of 1.7-1.9 m/s),
# chicanes, and asphalt down to 50 px (the racing car is 16 px wide). Drawn as polygons with rounded
# corners, sampled into control points; each starts on its top straight, heading east.
_RACING_DESIGNS: dict[str, _Design] = {
    "speedway": _Design(
        "training", EVALUATION_SIZE, 90.0, "beginner", 13,
        "Speedway: 1000 px wide and 90 px across, two long straights, four sweeping bends and a "
        "gentle kink: the place to learn to go fast",
        [
            (100, 280), (102, 257), (106, 233), (114, 211), (124, 190), (137, 170), (153, 153), (170, 137),
            (190, 124), (211, 114), (233, 106), (257, 102), (280, 100), (330, 100), (390, 100), (500, 100),
            (610, 100), (720, 100), (743, 102), (767, 106), (789, 114), (810, 124), (830, 137), (847, 153),
            (863, 170), (876, 190), (886, 211), (894, 233), (898, 257), (900, 280), (900, 386), (898, 410),
            (894, 433), (886, 456), (875, 478), (861, 498), (845, 516), (826, 531), (806, 544), (784, 554),
            (761, 561), (737, 565), (713, 566), (689, 563), (617, 550), (545, 538), (522, 535), (500, 534),
            (478, 535), (455, 538), (383, 550), (311, 563), (287, 566), (263, 565), (239, 561), (216, 554),
            (194, 544), (174, 531), (155, 516), (139, 498), (125, 478), (114, 456), (106, 433), (102, 410),
            (100, 386),
        ],
    ),
    "drag-strip": _Design(
        "training", TRAINING_SIZE, 65.0, "intermediate", 7,
        "Drag strip: a 600 px top straight braking into a hairpin, an S through the middle and a "
        "chicane on the bottom straight",
        [
            (90, 180), (93, 157), (102, 135), (116, 116), (135, 102), (157, 93), (180, 90), (240, 90),
            (298, 90), (415, 90), (532, 90), (650, 90), (673, 95), (692, 108), (705, 127), (710, 150),
            (710, 170), (705, 193), (692, 212), (673, 225), (650, 230), (567, 230), (483, 230), (400, 230),
            (378, 233), (359, 243), (343, 259), (333, 278), (330, 300), (330, 330), (333, 352), (343, 371),
            (359, 387), (378, 397), (400, 400), (483, 400), (567, 400), (650, 400), (673, 405), (692, 418),
            (705, 437), (710, 460), (710, 520), (707, 543), (698, 565), (684, 584), (665, 598), (643, 607),
            (620, 610), (547, 610), (522, 605), (502, 590), (488, 575), (468, 560), (443, 555), (417, 555),
            (392, 560), (372, 575), (358, 590), (338, 605), (313, 610), (247, 610), (180, 610), (157, 607),
            (135, 598), (116, 584), (102, 565), (93, 543), (90, 520), (90, 407), (90, 293),
        ],
    ),
    "chicanes": _Design(
        "training", TRAINING_SIZE, 60.0, "advanced", 7,
        "Chicanes: 60 px across, a fast square of straights broken by three chicanes, each a quick "
        "left-right flick",
        [
            (95, 180), (98, 157), (107, 135), (121, 116), (140, 102), (162, 93), (185, 90), (250, 90),
            (268, 90), (352, 90), (369, 93), (385, 100), (398, 112), (412, 128), (425, 140), (441, 147),
            (458, 150), (482, 150), (499, 147), (515, 140), (528, 128), (542, 112), (555, 100), (571, 93),
            (588, 90), (615, 90), (638, 93), (660, 102), (679, 116), (693, 135), (702, 157), (705, 180),
            (705, 228), (702, 247), (693, 264), (678, 278), (672, 282), (657, 296), (648, 313), (645, 332),
            (645, 368), (648, 387), (657, 404), (672, 418), (678, 422), (693, 436), (702, 453), (705, 472),
            (705, 520), (702, 543), (693, 565), (679, 584), (660, 598), (638, 607), (615, 610), (548, 610),
            (531, 607), (515, 600), (502, 588), (488, 572), (475, 560), (459, 553), (442, 550), (418, 550),
            (401, 553), (385, 560), (372, 572), (358, 588), (345, 600), (329, 607), (312, 610), (248, 610),
            (185, 610), (162, 607), (140, 598), (121, 584), (107, 565), (98, 543), (95, 520), (95, 407),
            (95, 293),
        ],
    ),
    "hairpin-alley": _Design(
        "training", TRAINING_SIZE, 60.0, "advanced", 7,
        "Hairpin alley: 60 px across, a long top straight, then five hairpins back and forth up and "
        "down the field",
        [
            (100, 160), (103, 139), (111, 120), (123, 103), (140, 91), (159, 83), (180, 80), (240, 80),
            (292, 80), (405, 80), (518, 80), (630, 80), (652, 83), (671, 93), (687, 109), (697, 128),
            (700, 150), (700, 252), (700, 355), (700, 458), (700, 560), (695, 583), (682, 602), (663, 615),
            (640, 620), (617, 615), (598, 602), (585, 583), (580, 560), (580, 477), (580, 393), (580, 310),
            (575, 287), (562, 268), (543, 255), (520, 250), (497, 255), (478, 268), (465, 287), (460, 310),
            (460, 393), (460, 477), (460, 560), (455, 583), (442, 602), (423, 615), (400, 620), (377, 615),
            (358, 602), (345, 583), (340, 560), (340, 477), (340, 393), (340, 310), (335, 287), (322, 268),
            (303, 255), (280, 250), (257, 255), (238, 268), (225, 287), (220, 310), (220, 393), (220, 477),
            (220, 560), (215, 583), (202, 602), (183, 615), (160, 620), (137, 615), (118, 602), (105, 583),
            (100, 560), (100, 460), (100, 360), (100, 260),
        ],
    ),
    "needle": _Design(
        "training", TRAINING_SIZE, 50.0, "expert", 5,
        "Needle: 50 px across, three hairpins folded one under another, a long bottom straight and a "
        "chicane on the way back",
        [
            (90, 140), (95, 117), (108, 98), (127, 85), (150, 80), (240, 80), (252, 80), (354, 80), (456, 80),
            (558, 80), (660, 80), (679, 84), (695, 95), (706, 111), (710, 130), (710, 150), (706, 169),
            (695, 185), (679, 196), (660, 200), (557, 200), (453, 200), (350, 200), (331, 204), (315, 215),
            (304, 231), (300, 250), (304, 269), (315, 285), (331, 296), (350, 300), (450, 300), (550, 300),
            (569, 304), (585, 315), (596, 331), (600, 350), (596, 369), (585, 385), (569, 396), (550, 400),
            (450, 400), (350, 400), (331, 404), (315, 415), (304, 431), (300, 450), (304, 469), (315, 485),
            (331, 496), (350, 500), (453, 500), (557, 500), (660, 500), (679, 504), (695, 515), (706, 531),
            (710, 550), (710, 560), (705, 583), (692, 602), (673, 615), (650, 620), (550, 620), (450, 620),
            (350, 620), (250, 620), (150, 620), (127, 615), (108, 602), (95, 583), (90, 560), (90, 473),
            (95, 452), (108, 435), (132, 415), (145, 398), (150, 377), (150, 353), (145, 332), (132, 315),
            (108, 295), (95, 278), (90, 257),
        ],
    ),
    "gauntlet": _Design(
        "evaluation", EVALUATION_SIZE, 50.0, "expert", 5,
        "Gauntlet: the expert evaluation track, 1000 px wide and 50 px across: an 800 px straight into a "
        "hairpin, a chicane, a U-turn, a switchback and a fast S",
        [
            (90, 140), (95, 117), (108, 98), (127, 85), (150, 80), (240, 80), (268, 80), (387, 80), (505, 80),
            (623, 80), (742, 80), (860, 80), (879, 84), (895, 95), (906, 111), (910, 130), (910, 140),
            (906, 159), (895, 175), (879, 186), (860, 190), (824, 190), (802, 195), (785, 209), (775, 221),
            (758, 235), (736, 240), (714, 240), (692, 235), (675, 221), (665, 209), (648, 195), (626, 190),
            (540, 190), (517, 195), (498, 208), (485, 227), (480, 250), (480, 270), (485, 293), (498, 312),
            (517, 325), (540, 330), (643, 330), (747, 330), (850, 330), (873, 335), (892, 348), (905, 367),
            (910, 390), (910, 475), (910, 560), (905, 583), (892, 602), (873, 615), (850, 620), (750, 620),
            (650, 620), (631, 616), (615, 605), (604, 589), (600, 570), (600, 530), (596, 511), (585, 495),
            (569, 484), (550, 480), (531, 484), (515, 495), (504, 511), (500, 530), (500, 570), (496, 589),
            (485, 605), (469, 616), (450, 620), (350, 620), (250, 620), (150, 620), (127, 615), (108, 602),
            (95, 583), (90, 560), (90, 534), (94, 514), (104, 496), (120, 483), (221, 423), (237, 410),
            (249, 394), (257, 375), (260, 354), (257, 328), (248, 308), (233, 291), (214, 278), (124, 236),
            (106, 223), (94, 204), (90, 182),
        ],
    ),
}

TRACK_NAMES = {f"track-{n}.png": ("training", n) for n in (1, 2, 3)}
"""The original API's track file names for the training tracks."""

NAMED_TRACKS = tuple(_NAMED_CONTROL_POINTS)
"""The tracks this project first designed, by name: ``get_track("serpent")``."""

RACING_TRACKS = tuple(name for name, design in _RACING_DESIGNS.items() if design.mode == "training")
"""Further training tracks, made for the racing car: ``get_track("hairpin-alley")``."""

EVALUATION_NAMED_TRACKS = tuple(name for name, design in _RACING_DESIGNS.items()
                                if design.mode == "evaluation")
"""Named evaluation tracks, held out from training like evaluation track 1: ``get_track("gauntlet",
"evaluation")``; in ``training`` mode they are refused."""

ALL_NAMED_TRACKS = NAMED_TRACKS + RACING_TRACKS + EVALUATION_NAMED_TRACKS

_RANDOM_BORDER = 25.0  # px between the reach of a random track's control points and the border
_RANDOM = re.compile(r"^random:(\d{1,18})(?::([A-Za-z]+))?$")


@lru_cache(maxsize=1)
def _original_tracks() -> dict[tuple[str, int], dict]:
    data = json.loads(ORIGINAL_TRACKS_FILE.read_text())
    return {(entry["mode"], entry["number"]): entry for entry in data.values()}


@lru_cache(maxsize=8)
def builtin_track(mode: str, number: int) -> Track:
    """A built-in track: ``mode`` is ``"training"`` (1..3) or ``"evaluation"`` (1)."""
    if mode not in ("training", "evaluation"):
        raise ValueError(f"mode must be 'training' or 'evaluation', not {mode!r}")
    numbers = sorted(n for m, n in _original_tracks() if m == mode)
    if number not in numbers:
        raise ValueError(
            f"there is no {mode} track {number!r}: {mode} tracks are {', '.join(map(str, numbers))}"
        )
    entry = _original_tracks()[(mode, number)]
    return track_from_control_points(f"{mode}-{number}", entry["control_points"], entry["width"],
                                     tuple(entry["size"]), _ORIGINAL_DESCRIPTIONS[(mode, number)],
                                     start_index=0, difficulty=_ORIGINAL_DIFFICULTIES[(mode, number)])


@lru_cache(maxsize=32)
def named_track(name: str) -> Track:
    """One of the further built-in tracks (``ALL_NAMED_TRACKS``), such as ``"serpent"``, whatever its mode."""
    if name in _NAMED_CONTROL_POINTS:
        size, description, points = _NAMED_CONTROL_POINTS[name]
        return track_from_control_points(name, points, TRACK_WIDTH, size, description,
                                         difficulty=_NAMED_DIFFICULTIES[name])
    if name in _RACING_DESIGNS:
        design = _RACING_DESIGNS[name]
        return track_from_control_points(name, design.control_points, design.width, design.size,
                                         design.description, start_index=design.start,
                                         difficulty=design.difficulty)
    raise ValueError(f"there is no track called {name!r}: the named tracks are {', '.join(ALL_NAMED_TRACKS)}")


def track_mode(track: Track) -> str:
    """``"evaluation"`` for a track held out from training (evaluation track 1 and the named evaluation
    tracks), else ``"training"``."""
    held_out = track.name.startswith("evaluation-") or track.name in EVALUATION_NAMED_TRACKS
    return "evaluation" if held_out else "training"


def builtin_tracks() -> list[Track]:
    """Every built-in track: the training and evaluation tracks 1-3 and 1, the first named ones, then the
    racing tracks (training ones first)."""
    numbered = sorted(_original_tracks(), key=lambda mode_number: (mode_number[0] != "training", mode_number))
    named = [named_track(name) for name in ALL_NAMED_TRACKS]
    return [builtin_track(mode, number) for mode, number in numbered] + named


@dataclass(frozen=True)
class _RandomRecipe:
    """How ``random:SEED:DIFFICULTY`` draws its loops: ``controls`` (low, high) control points (high
    excluded), a width among ``widths``, control points at ``inner``..1 of the reach from the centre
    (a low ``inner`` makes deep dents: tight bends), and a tightest bend within ``tightest`` px.
    ``half_width`` is kept from the image border besides ``_RANDOM_BORDER``: at least the widest half."""

    controls: tuple[int, int]
    widths: tuple[float, ...]
    inner: float
    tightest: tuple[float, float] = (MIN_RADIUS, np.inf)
    half_width: float = TRACK_WIDTH / 2


_RANDOM_RECIPES: dict[str, _RandomRecipe] = {
    # Few control points, wide, and no bend tighter than 100 px (a cornering speed of 2.4 m/s).
    "beginner": _RandomRecipe((6, 10), (80.0, 85.0, 90.0), 0.6, (100.0, np.inf), half_width=45.0),
    # The original generator: "random:SEED" draws exactly these.
    "intermediate": _RandomRecipe((8, 14), (60.0, 65.0, 70.0, 75.0), 0.28),
    # More control points, narrower, and at least one bend of 75 px or tighter.
    "advanced": _RandomRecipe((10, 15), (55.0, 57.5), 0.4, (MIN_RADIUS, 75.0)),
    # Most control points, narrowest, and a bend of 60 px or tighter (a cornering speed under 1.9 m/s).
    "expert": _RandomRecipe((12, 17), (50.0, 52.5), 0.5, (MIN_RADIUS, 60.0)),
}


def random_track(seed: int, size: tuple[int, int] = TRAINING_SIZE, difficulty: str | None = None) -> Track:
    """A seeded random practice track: always a valid closed loop, the same for the same seed and difficulty.

    Control points are drawn around the image centre at random radii (a star-shaped loop, so it never
    crosses itself); draws that bend too tightly or pass too close to themselves (or, for a difficulty,
    whose tightest bend is outside its range) are redrawn from the same random stream, so the result
    depends on the seed and difficulty alone. Without a difficulty it is ``"random:SEED"``, the original
    generator's track, which ``"intermediate"`` draws too.
    """
    if difficulty is not None and difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty {difficulty!r} is not known: use one of {', '.join(DIFFICULTIES)}")
    return _random_track(int(seed), tuple(size), difficulty)


@lru_cache(maxsize=32)
def _random_track(seed: int, size: tuple[int, int], difficulty: str | None = None) -> Track:
    recipe = _RANDOM_RECIPES[difficulty or "intermediate"]
    name = f"random:{seed}" if difficulty is None else f"random:{seed}:{difficulty}"
    kind = "Random practice track" if difficulty is None else f"Random {difficulty} practice track"
    rng = np.random.default_rng(seed)
    w, h = size
    centre = np.array([w / 2, h / 2])
    reach = np.array([w / 2, h / 2]) - (recipe.half_width + _RANDOM_BORDER)
    lowest, highest = recipe.tightest
    for _attempt in range(500):
        k = int(rng.integers(*recipe.controls))
        width = float(rng.choice(recipe.widths))
        angles = np.sort((np.arange(k) + rng.uniform(-0.3, 0.3, k)) / k * 2 * np.pi)
        radii = rng.uniform(recipe.inner, 1.0, k)
        points = centre + np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None] * reach
        track = track_from_control_points(name, points, width, size, f"{kind} (seed {seed})",
                                          difficulty=difficulty or "intermediate")
        if lowest <= track.curvature_radii().min() <= highest and not track.problems():
            return track
    raise RuntimeError(f"could not generate a valid random track for seed {seed}")  # pragma: no cover


def _random_from_text(text: str, mode: str) -> Track | None:
    """The random track ``text`` names (``random:SEED`` or ``random:SEED:DIFFICULTY``), or ``None``."""
    match = _RANDOM.match(text)
    if not match:
        if text.lower().startswith("random:"):
            raise ValueError(
                f"track {text!r} is not a random track: use 'random:SEED' or 'random:SEED:DIFFICULTY' with "
                f"a whole number SEED and DIFFICULTY one of {', '.join(DIFFICULTIES)}, such as "
                f"'random:42:expert'"
            )
        return None
    difficulty = match.group(2)
    if difficulty is not None and difficulty.lower() not in DIFFICULTIES:
        raise ValueError(
            f"track {text!r}: difficulty {difficulty!r} is not known: use 'random:SEED:DIFFICULTY' with "
            f"DIFFICULTY one of {', '.join(DIFFICULTIES)}, such as 'random:42:expert'"
        )
    size = TRAINING_SIZE if mode == "training" else EVALUATION_SIZE
    return random_track(int(match.group(1)), size, difficulty.lower() if difficulty else None)


def get_track(track: int | str | Track, mode: str = "training") -> Track:
    """Resolve a track argument: a number (1..3 training, 1 evaluation), ``"random:SEED"`` or
    ``"random:SEED:DIFFICULTY"``, an original file name such as ``"track-2.png"``, a named track
    (``ALL_NAMED_TRACKS``; the ``EVALUATION_NAMED_TRACKS`` in ``evaluation`` mode only), or a
    :class:`Track` itself."""
    if isinstance(track, Track):
        return track
    if isinstance(track, str):
        random = _random_from_text(track.strip(), mode)
        if random is not None:
            return random
        if track in TRACK_NAMES:
            _, number = TRACK_NAMES[track]
            return builtin_track(mode, number)
        if track in EVALUATION_NAMED_TRACKS and mode != "evaluation":
            raise ValueError(
                f"track {track!r} is an evaluation track, held out from training: evaluate on it with mode "
                f"'evaluation'; train on 1-3, random:SEED or a named training track "
                f"({', '.join(NAMED_TRACKS + RACING_TRACKS)})"
            )
        if track in _NAMED_CONTROL_POINTS or track in _RACING_DESIGNS:
            return named_track(track)
        if track.strip().isdigit():
            return builtin_track(mode, int(track))
        raise ValueError(
            f"track {track!r} is not known: use a number (training 1-3, evaluation 1), 'random:SEED' such "
            f"as 'random:42' (or 'random:SEED:DIFFICULTY' such as 'random:42:expert'), 'track-1.png', or a "
            f"named track ({', '.join(NAMED_TRACKS + RACING_TRACKS)}; in evaluation mode also "
            f"{', '.join(EVALUATION_NAMED_TRACKS)})"
        )
    if isinstance(track, (int, np.integer)) and not isinstance(track, bool):
        return builtin_track(mode, int(track))
    raise TypeError(f"track must be a number, 'random:SEED' or a Track, not {type(track).__name__}")
