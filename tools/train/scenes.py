"""Procedural scenes for the vision-language model: a few saturated shapes on a cluttered,
textured background, with questions about colours, shapes, counts and positions.

Most of a 96 x 96 image is background (the shapes cover roughly a tenth of it), as in real photos,
so that vision-token pruning has something to find.
"""
import numpy as np

IMAGE_SIZE = 96
SHAPES = ["circle", "square", "triangle"]
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (50, 80, 230), "yellow": (235, 205, 35), "purple": (150, 60, 200)}
COLOR_NAMES = list(COLORS)
COUNT_WORDS = ["zero", "one", "two", "three", "four"]
QUESTION_TYPES = ["color", "shape", "count", "position", "exists"]
PAIRS = len(SHAPES) * len(COLOR_NAMES)  # shape-colour pairs, the auxiliary heads' classes
DESCRIBE = "Describe the scene."


def _background(rng):
    s = IMAGE_SIZE
    y, x = np.mgrid[0:s, 0:s].astype(np.float32)
    base = rng.uniform(70, 170, size=3) * rng.uniform(0.8, 1.2, size=3)
    img = np.broadcast_to(base, (s, s, 3)).astype(np.float32).copy()
    for _ in range(3):  # low-frequency shading
        angle, freq, phase = rng.uniform(0, np.pi), rng.uniform(0.02, 0.12), rng.uniform(0, 2 * np.pi)
        wave = np.sin(freq * (x * np.cos(angle) + y * np.sin(angle)) + phase)
        img += wave[..., None] * rng.uniform(-18, 18, size=3)
    img += rng.normal(0, 10, size=img.shape)  # grain
    for _ in range(rng.integers(6, 14)):  # clutter: thin muted lines
        x0, y0 = rng.uniform(0, s, 2)
        angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(8, 40)
        t = np.linspace(0, 1, int(length * 2))
        xs = np.clip((x0 + t * length * np.cos(angle)).astype(int), 0, s - 1)
        ys = np.clip((y0 + t * length * np.sin(angle)).astype(int), 0, s - 1)
        gray = img.mean()
        img[ys, xs] = 0.7 * gray + 0.3 * rng.uniform(0, 255, size=3)
    return img


def _mask(shape, cx, cy, r):
    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32)
    if shape == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    if shape == "square":
        h = r * 0.85
        return (np.abs(x - cx) <= h) & (np.abs(y - cy) <= h)
    top, bottom = cy - r, cy + 0.8 * r
    width = (y - top) / (bottom - top) * r
    return (y >= top) & (y <= bottom) & (np.abs(x - cx) <= width)


def make_scene(rng):
    """(uint8 image [96, 96, 3], list of objects {shape, color, x, y, r})."""
    img = _background(rng)
    count = int(rng.integers(1, 5))
    pairs = [(s, c) for s in SHAPES for c in COLOR_NAMES]
    chosen = rng.choice(len(pairs), size=count, replace=False)
    objects = []
    for index in chosen:
        shape, color = pairs[index]
        for _ in range(100):  # place without overlapping the others
            r = rng.uniform(6, 10)
            cx, cy = rng.uniform(r + 2, IMAGE_SIZE - r - 2, size=2)
            if all((cx - o["x"]) ** 2 + (cy - o["y"]) ** 2 > (r + o["r"] + 3) ** 2 for o in objects):
                break
        mask = _mask(shape, cx, cy, r)
        img[mask] = np.array(COLORS[color], dtype=np.float32) + rng.normal(0, 8, size=(int(mask.sum()), 3))
        objects.append({"shape": shape, "color": color, "x": float(cx), "y": float(cy), "r": float(r)})
    return np.clip(img, 0, 255).astype(np.uint8), objects


def ask(rng, objects, kind=None):
    """A (question type, question, answer) about the scene, or None when that type does not fit."""
    kind = kind or QUESTION_TYPES[int(rng.integers(len(QUESTION_TYPES)))]
    shapes = [o["shape"] for o in objects]
    colors = [o["color"] for o in objects]
    if kind == "color":
        unique = [o for o in objects if shapes.count(o["shape"]) == 1]
        if not unique:
            return None
        o = unique[int(rng.integers(len(unique)))]
        return kind, f"What color is the {o['shape']}?", o["color"]
    if kind == "shape":
        unique = [o for o in objects if colors.count(o["color"]) == 1]
        if not unique:
            return None
        o = unique[int(rng.integers(len(unique)))]
        return kind, f"What shape is {o['color']}?", o["shape"]
    if kind == "count":
        return kind, "How many shapes are there?", COUNT_WORDS[len(objects)]
    if kind == "position":
        clear = [o for o in objects if side(o) != "middle"]
        if not clear:
            return None
        o = clear[int(rng.integers(len(clear)))]
        return kind, f"Is the {o['color']} {o['shape']} on the left or the right?", side(o)
    present = {(o["shape"], o["color"]) for o in objects}
    if rng.random() < 0.5:
        shape, color = sorted(present)[int(rng.integers(len(present)))]
        return kind, f"Is there a {color} {shape}?", "yes"
    absent = [(s, c) for s in SHAPES for c in COLOR_NAMES if (s, c) not in present]
    shape, color = absent[int(rng.integers(len(absent)))]
    return kind, f"Is there a {color} {shape}?", "no"


def side(o):
    """Left or right of the centre, or middle within 6 px of it (too close to ask about)."""
    return "left" if o["x"] < IMAGE_SIZE / 2 - 6 else "right" if o["x"] > IMAGE_SIZE / 2 + 6 else "middle"


def describe(objects):
    """The answer to DESCRIBE: every object as colour, shape and side, in a fixed colour-then-shape
    order, so that each shape and side is said right after the colour it belongs to (for training,
    where it ties every attribute to its object)."""
    ordered = sorted(objects, key=lambda o: (COLOR_NAMES.index(o["color"]), SHAPES.index(o["shape"])))
    return ", ".join(f"{o['color']} {o['shape']} {side(o)}" for o in ordered) + "."


def patch_labels(objects, patch):
    """Per patch (row-major), the (shape, colour) pair covering at least a quarter of it, or
    PAIRS for background: the patch tokens' auxiliary objective."""
    cells = IMAGE_SIZE // patch
    labels = np.full(cells * cells, PAIRS, dtype=np.int64)
    best = np.zeros(cells * cells)
    for o in objects:
        cover = _mask(o["shape"], o["x"], o["y"], o["r"]).reshape(cells, patch, cells, patch).mean(axis=(1, 3)).ravel()
        take = (cover >= 0.25) & (cover > best)
        labels[take] = pair_index(o)
        best = np.maximum(best, cover)
    return labels


def pair_index(o):
    """An object's (shape, colour) pair as a class of the auxiliary heads, 0..PAIRS - 1."""
    return SHAPES.index(o["shape"]) * len(COLOR_NAMES) + COLOR_NAMES.index(o["color"])


def presence_labels(objects):
    """Which (shape, colour) pairs the scene holds, for the class token's auxiliary objective."""
    labels = np.zeros(PAIRS, dtype=np.float32)
    for o in objects:
        labels[pair_index(o)] = 1
    return labels


def prompt_text(question):
    return f"Question: {question} Answer:"
