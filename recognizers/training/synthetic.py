"""Synthetic plates to train on beside the real ones (sim/plate_render.py draws them).

Real US plates are few (about 250 crops) and their labels rarely carry a digit 0 where an
O could stand, so a reader trained on them alone learns EU and US letter Os and reads
some rendered 0s as O. Rendered plates add every serial layout the renderer knows, in
every style and font, with the state name, slogan, stickers and bolts around the serial.
They train only: val and test stay real, so no figure is measured on them.
"""

from __future__ import annotations

import cv2
import numpy as np

from recognizers.states import STATE_NAMES
from recognizers.training.samples import Sample
from sim.plate_render import plate_truth, random_plate, render_plate

SOURCE = "synthetic"
# Plate width drawn; augmentation then scales it down to camera sizes.
_WIDTH = 240
# The serial's band on the drawn plate, as shares of its width and height (draw_plate
# prints the characters from y 62 to 172 of 240, inside a 22 px margin of 480).
_SERIAL_BAND = ((22 / 480, 56 / 240), (458 / 480, 178 / 240))
# Surroundings around the plate, as a share of its height: room for a loose box.
_MARGIN = 0.4


def synthetic_samples(count: int, seed: int) -> list[Sample]:
    """`count` rendered plates, each as a whole plate and as its serial's line, on a
    random surround (split "train")."""
    rng = np.random.default_rng(seed)
    states = sorted(STATE_NAMES.values())
    out: list[Sample] = []
    for i in range(count):
        text = random_plate(rng)
        plate = render_plate(text, rng, state=str(rng.choice(states)), width=_WIDTH)
        h, w = plate.shape[:2]
        m = round(_MARGIN * h)
        surround = [int(v) for v in rng.integers(0, 256, 3)]
        image = cv2.copyMakeBorder(plate, m, m, m, m, cv2.BORDER_CONSTANT, value=surround)
        noise = rng.normal(0, 12, image.shape)
        image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        whole = np.array([[m, m], [m + w, m], [m + w, m + h], [m, m + h]], np.float32)
        (x0, y0), (x1, y1) = _SERIAL_BAND
        line = np.array([[m + x0 * w, m + y0 * h], [m + x1 * w, m + y0 * h],
                         [m + x1 * w, m + y1 * h], [m + x0 * w, m + y1 * h]], np.float32)
        label = plate_truth(text)
        name = f"synthetic-{seed}-{i}"
        out.append(Sample(image, whole, label, "whole", SOURCE, "train", name))
        out.append(Sample(image, line, label, "line", SOURCE, "train", name))
    return out
