"""Input-domain check: is this image like the images the model was trained on?

The demo weights were trained on synthetic phantoms only; on a real film they still return
confident-looking probabilities (the real hip RG2_JLSL.dcm: "left fracture p=0.59"). A network's
softmax cannot say "I have never seen anything like this", so the check is made beside it.

The measure
-----------
For every image the network receives (a femur crop, a letterboxed spine view, a CT slice on the
working grid), after the task's own preprocessing, ``image_features`` computes a small vector:

- intensity quantiles, mean and spread (what the windowing / equalisation left);
- the share of pixels at the image's minimum and maximum (clipping, padding, saturation);
- gradient-magnitude statistics and the mean absolute Laplacian (edge sharpness, noise level);
- the share of spectral power in six octave-wide radial bands of a Hann-windowed FFT (texture
  and grain: phantoms have smooth anatomy plus white and 6-pixel-correlated noise; real films
  have trabecular texture, grids, collimation edges and labels).

The distance is the Mahalanobis distance of that vector to the phantoms' feature distribution,
with the features standardised (spread floored at ``SCALE_FLOOR``) and the covariance shrunk
toward the identity (Ledoit-Wolf, 2004: the shrinkage intensity estimated from the data),
because a few hundred training images cannot pin down 22x22 covariances and the raw sample covariance would make the distance blow up along
poorly sampled directions. Where a task feeds the network several images (two femur crops, the
slices of a CT), the input's distance aggregates theirs (``aggregate``: the largest for
crops, each of which gets its own findings; the median for CT slices, so that one odd slice at the
end of a series does not decide).

Why input statistics and not the network's penultimate features: none of the shipped ONNX graphs
exposes them (femur returns class maps and the STN transform, cervical and spine probabilities
only), re-exporting weights is not this check's business, and weights are being retrained while
this ships: a measure of the input stays valid whatever the weights, so ``domain.json`` need not
be recalibrated with every retraining. The price is that it sees only what the statistics see
(an image can be like the phantoms in all of them and still be unlike in shape); the tests
enumerate every real file a task accepts and check that each gets no call.

The threshold is calibrated on held-out phantoms (seeds never used for fitting): the 99.5th
percentile of their distances times ``MARGIN``, so that well over 99% of new phantoms get calls
(measured on a third, disjoint set of seeds: ``app.analysis.domain_calibrate``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.engine.runtime import WeightsError

NO_CALL_REASON = "no call: this image is unlike the images the model was trained on"
DOMAIN_FILE = "domain.json"
MEASURE = "mahalanobis-ledoit-wolf on input image statistics"
QUANTILE = 0.995
# Headroom over the held-out 99.5th percentile: a few hundred calibration phantoms estimate that
# tail only roughly, and the real images measured sit far beyond it (see each domain.json's
# "calibration"), so the margin costs no real image its "no call".
MARGIN = 1.25
# Smallest per-feature spread used to standardise. Quantiles and shares are in the units of each
# task's normalised input (about 0..1), the log statistics in nats; a spread below 0.02 in either
# is less than resampling and noise change between two acquisitions. Without a floor, a feature
# the phantom generator happens to hold nearly fixed dominates the distance (calcaneus: the
# 99th percentile of the gradient, z = 117 on two held-out phantoms with 40 fitting phantoms).
SCALE_FLOOR = 0.02
_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_BANDS = 6

FEATURE_NAMES: tuple[str, ...] = (
    *(f"q{int(q * 100):02d}" for q in _QUANTILES),
    "mean",
    "std",
    "share_at_min",
    "share_at_max",
    "log_grad_mean",
    "log_grad_p50",
    "log_grad_p90",
    "log_grad_p99",
    "log_laplacian",
    *(f"log_power_band{b}" for b in range(_BANDS)),
)


class DomainError(WeightsError):
    """domain.json is unreadable or does not match the digest pinned in the task's code (a
    WeightsError: it ships with the weights, and every caller already reports those)."""


def image_features(image: np.ndarray) -> np.ndarray:
    """The feature vector of one 2-D network input image (see the module docstring)."""
    x = np.asarray(image, np.float64)
    if x.ndim != 2 or min(x.shape) < 8:
        raise ValueError(f"expected a 2-D image at least 8 pixels across, got {x.shape}")
    q = np.quantile(x, _QUANTILES)
    lo, hi = float(x.min()), float(x.max())
    tol = 1e-6 * max(hi - lo, 1e-12)
    gy, gx = np.gradient(x)
    grad = np.hypot(gx, gy).ravel()
    g = np.quantile(grad, (0.5, 0.9, 0.99))
    lap = np.abs(x[1:-1, 1:-1] * 4 - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:])
    eps = 1e-6
    feats = [
        *q,
        x.mean(),
        x.std(),
        float(np.mean(x <= lo + tol)),
        float(np.mean(x >= hi - tol)),
        math.log(grad.mean() + eps),
        *(math.log(v + eps) for v in g),
        math.log(lap.mean() + eps),
        *radial_power(x),
    ]
    return np.asarray(feats, np.float64)


def radial_power(x: np.ndarray) -> np.ndarray:
    """log10 share of spectral power in ``_BANDS`` octave bands (Nyquist down), DC excluded."""
    h, w = x.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.rfft2((x - x.mean()) * win)) ** 2
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    r = np.hypot(fy, fx) / 0.5  # 1 = Nyquist
    total = power[r > 0].sum() + 1e-20
    edges = [0.5**b for b in range(_BANDS)] + [0.0]  # 1, 1/2, ..., 1/32, then down to DC
    shares = []
    for b in range(_BANDS):
        upper = np.inf if b == 0 else edges[b]  # the corners beyond Nyquist join the top band
        sel = (r > edges[b + 1]) & (r <= upper)
        shares.append(math.log10(power[sel].sum() / total + 1e-12))
    return np.asarray(shares)


def features_of(images) -> np.ndarray:
    """(n, d) features of an iterable of 2-D images (a batch of crops or slices)."""
    return np.stack([image_features(im) for im in images])


def ledoit_wolf(z: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrunk covariance of centred rows ``z`` (n, d) and the shrinkage used."""
    n, d = z.shape
    s = z.T @ z / n
    mu = np.trace(s) / d
    target = mu * np.eye(d)
    delta = float(np.sum((s - target) ** 2))
    # beta: how far the sample covariance may be from the true one (the estimator's variance)
    beta = float(sum(np.sum((np.outer(row, row) - s) ** 2) for row in z)) / n**2
    shrink = 1.0 if delta <= 0 else min(1.0, beta / delta)
    return shrink * target + (1 - shrink) * s, shrink


@dataclass
class DomainModel:
    """Mahalanobis distance to the training inputs' features; ``threshold`` from held-out data."""

    mean: np.ndarray
    scale: np.ndarray
    precision: np.ndarray
    threshold: float = math.inf
    aggregate: str = "max"  # how one input's several network images combine: "max" or "median"
    shrinkage: float = 0.0
    feature_names: tuple[str, ...] = FEATURE_NAMES
    measure: str = MEASURE
    calibration: dict = field(default_factory=dict)

    @classmethod
    def fit(
        cls, features: np.ndarray, aggregate: str = "max", scale_floor: float = SCALE_FLOOR
    ) -> DomainModel:
        x = np.asarray(features, np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"need at least two feature rows, got shape {x.shape}")
        mean = x.mean(0)
        # a feature that never varies in training (e.g. a share that is always 0) gets the floor
        # (1.0 without one): a deviation then counts in its own units, not divided by ~zero
        scale = np.maximum(x.std(0), scale_floor) if scale_floor > 0 else x.std(0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        cov, shrink = ledoit_wolf((x - mean) / scale)
        model = cls(mean, scale, np.linalg.inv(cov), aggregate=aggregate, shrinkage=shrink)
        model.calibration["scale_floor"] = scale_floor
        return model

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Per-row Mahalanobis distances."""
        z = (np.atleast_2d(np.asarray(features, np.float64)) - self.mean) / self.scale
        d2 = np.einsum("ij,jk,ik->i", z, self.precision, z)
        return np.sqrt(np.maximum(d2, 0.0))

    def distance(self, features: np.ndarray) -> float:
        """One input's distance: its network images' distances combined by ``aggregate``."""
        d = self.distances(features)
        return float(np.median(d) if self.aggregate == "median" else d.max())

    def calibrate(self, heldout: list[float], quantile: float = QUANTILE) -> None:
        """Threshold = ``quantile`` of held-out inputs' distances times ``MARGIN``."""
        q = float(np.quantile(np.asarray(heldout, np.float64), quantile))
        self.threshold = q * MARGIN
        self.calibration.update(
            {"heldout_n": len(heldout), "quantile": quantile, "quantile_distance": q,
             "margin": MARGIN}
        )  # fmt: skip

    def to_json(self) -> dict:
        return {
            "format": "osteoview-domain",
            "measure": self.measure,
            "feature_names": list(self.feature_names),
            "aggregate": self.aggregate,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "precision": self.precision.tolist(),
            "shrinkage": self.shrinkage,
            "threshold": self.threshold,
            "calibration": self.calibration,
        }

    @classmethod
    def from_json(cls, doc: Mapping) -> DomainModel:
        if doc.get("format") != "osteoview-domain":
            raise DomainError("not an OsteoView domain model")
        names = tuple(doc["feature_names"])
        if names != FEATURE_NAMES:
            raise DomainError("its features are not the ones this code computes; recalibrate")
        return cls(
            np.asarray(doc["mean"], np.float64),
            np.asarray(doc["scale"], np.float64),
            np.asarray(doc["precision"], np.float64),
            float(doc["threshold"]),
            str(doc.get("aggregate", "max")),
            float(doc.get("shrinkage", 0.0)),
            names,
            str(doc.get("measure", MEASURE)),
            dict(doc.get("calibration", {})),
        )


@dataclass
class DomainCheck:
    """The check's outcome for one run (recorded in the provenance)."""

    measure: str
    distance: float | None
    threshold: float | None
    in_domain: bool
    per_slot: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def to_json(self) -> dict:
        def r(v):
            return None if v is None or not math.isfinite(v) else round(float(v), 4)

        return {
            "measure": self.measure,
            "distance": r(self.distance),
            "threshold": r(self.threshold),
            "in_domain": bool(self.in_domain),
            "per_slot": {k: r(v) for k, v in self.per_slot.items()},
            "note": self.note,
        }


def pinned_domain_digest(adapter) -> str | None:
    """``DOMAIN_SHA256`` from the task package's ``domain_digest.py``; None when the adapter
    reads weights from elsewhere than the package (training, evaluation), "" when nothing is
    pinned for a shipped domain.json (which is then refused, like unpinned weights)."""
    default = getattr(adapter, "default_weights_dir", None)
    weights_dir = getattr(adapter, "weights_dir", None)
    if default is None or weights_dir is None:
        return None
    if Path(weights_dir).resolve() != Path(default).resolve():
        return None
    package = type(adapter).__module__.rpartition(".")[0]
    try:
        return str(importlib.import_module(f"{package}.domain_digest").DOMAIN_SHA256)
    except (ImportError, AttributeError):
        return ""


def load_domain_model(adapter) -> DomainModel | None:
    """The task's calibrated DomainModel (``<weights_dir>/domain.json``), None when there is none.

    A shipped domain.json is checked against the digest pinned in the task's code, for the same
    reason as the weights: whoever can edit the file could otherwise widen the domain silently.
    """
    weights_dir = getattr(adapter, "weights_dir", None)
    if weights_dir is None:
        return None
    path = Path(weights_dir) / DOMAIN_FILE
    if not path.is_file():
        return None
    data = path.read_bytes()
    pin = pinned_domain_digest(adapter)
    if pin is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != pin:
            raise DomainError(
                f"{path}: sha256 {digest[:12]}... does not match the one pinned in the task's "
                f"code ({(pin or 'none')[:12]}...); refusing a domain model nobody reviewed"
            )
    try:
        return DomainModel.from_json(json.loads(data))
    except (KeyError, TypeError, ValueError, DomainError) as exc:
        raise DomainError(f"{path}: unreadable domain model ({exc})") from exc


def check_domain(
    model: DomainModel | None, features: Mapping[str, np.ndarray] | None
) -> DomainCheck:
    """Distance of each slot's features; the input is in the domain when every slot is."""
    if model is None or features is None:
        why = "no domain model shipped with these weights" if model is None else "no features"
        return DomainCheck("none", None, None, True, note=f"not checked: {why}")
    per_slot = {slot: model.distance(f) for slot, f in features.items()}
    distance = max(per_slot.values())
    return DomainCheck(model.measure, distance, model.threshold, distance <= model.threshold,
                       per_slot)  # fmt: skip


def domain_check(adapter, request) -> DomainCheck:
    """The check for one run: the adapter's optional ``domain_features(request)`` hook against
    its task's shipped DomainModel. Features that cannot be computed on an input the adapter
    accepted make no call (the image is certainly unlike the phantoms)."""
    hook = domain_hook(adapter)
    if hook is None:
        return check_domain(None, None)
    model = load_domain_model(adapter)
    if model is None:
        return check_domain(None, None)
    try:
        features = hook(request)
    except (ValueError, IndexError, FloatingPointError) as exc:
        return DomainCheck(model.measure, None, model.threshold, False,
                           note=f"features could not be computed ({exc})")  # fmt: skip
    return check_domain(model, features)


def domain_hook(adapter):
    """The adapter's ``domain_features(request)``, else ``domain_features(adapter, request)`` in
    its task package's ``domain.py`` (where the adapter's code is someone else's to edit), else
    None (no check)."""
    from app.engine.adapter import Adapter  # here: the adapter module must not need this one

    own = getattr(type(adapter), "domain_features", None)
    if own is not None and own is not Adapter.domain_features:  # the adapter says itself
        return adapter.domain_features
    package = type(adapter).__module__.rpartition(".")[0]
    try:
        fn = importlib.import_module(f"{package}.domain").domain_features
    except (ImportError, AttributeError):
        return None
    return lambda request: fn(adapter, request)
