"""Sensor series for simulated devices and for training the anomaly classifier.

A `SimulatedSensor` produces a realistic reading stream (daily cycle + slow wander + noise,
quantized to the sensor's resolution) into which faults can be injected: spike, drift, stuck,
dropout. `window_features` turns the last WINDOW readings into the classifier's input; the trainer
(`edge/convert.py`) and the device use the same function, so they cannot disagree.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "WINDOW",
    "CLASSES",
    "FAULTS",
    "SensorSpec",
    "SimulatedSensor",
    "window_features",
    "synthetic_windows",
]

WINDOW = 64
CLASSES = ("normal", "spike", "drift", "stuck")
FAULTS = ("spike", "drift", "stuck", "dropout")
_CLIP = 8.0


@dataclass(frozen=True)
class SensorSpec:
    name: str
    unit: str
    base: float
    daily_amplitude: float
    noise: float  # standard deviation of the measurement noise, in units
    resolution: float  # readings are quantized to this step
    low: float
    high: float


GREENHOUSE = (
    SensorSpec("temperature", "°C", 24.0, 4.0, 0.08, 0.01, -10.0, 60.0),
    SensorSpec("humidity", "%", 65.0, 10.0, 0.5, 0.1, 0.0, 100.0),
    SensorSpec("soil_moisture", "%", 40.0, 1.0, 0.3, 0.1, 0.0, 100.0),
)


def window_features(values: np.ndarray, noise: float) -> np.ndarray:
    """Last WINDOW readings -> (2*WINDOW,) float32: the centred series and its first differences,
    both in units of the sensor's noise, squashed into [-1, 1] so int8 keeps the detail near zero."""
    v = np.asarray(values, dtype=np.float64)[-WINDOW:]
    if v.size < WINDOW:
        v = np.concatenate([np.full(WINDOW - v.size, v[0] if v.size else 0.0), v])
    scale = max(float(noise), 1e-6) * 4.0
    centred = (v - np.median(v)) / scale
    diffs = np.diff(v, prepend=v[0]) / scale
    out = np.concatenate([centred, diffs])
    return (np.tanh(out / _CLIP * 2.0)).astype(np.float32)


def _normal_series(rng: np.random.Generator, n: int, spec: SensorSpec, t0: float, dt: float) -> np.ndarray:
    t = t0 + dt * np.arange(n)
    daily = spec.daily_amplitude * np.sin(2 * np.pi * t / 86400.0)
    wander = np.cumsum(rng.normal(0, spec.noise * 0.05, n))
    noise = rng.normal(0, spec.noise, n)
    return spec.base + daily + wander + noise


def _quantize(v: np.ndarray, spec: SensorSpec) -> np.ndarray:
    return np.clip(np.round(v / spec.resolution) * spec.resolution, spec.low, spec.high)


def _apply_fault(rng: np.random.Generator, v: np.ndarray, fault: str, spec: SensorSpec, start: int) -> np.ndarray:
    v = v.copy()
    n = v.size
    if fault == "spike":
        k = rng.integers(max(start, 1), n)
        width = int(rng.integers(1, 3))
        size = rng.choice([-1, 1]) * rng.uniform(15, 60) * spec.noise
        v[k : k + width] += size
    elif fault == "drift":
        rate = rng.choice([-1, 1]) * rng.uniform(0.6, 3.0) * spec.noise  # per sample
        ramp = np.zeros(n)
        ramp[start:] = rate * np.arange(1, n - start + 1)
        v += ramp
    elif fault == "stuck":
        v[start:] = v[start]
    return v


def synthetic_windows(n_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labelled training windows (features, class index) over all greenhouse sensor kinds."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, cls in enumerate(CLASSES):
        for _ in range(n_per_class):
            spec = GREENHOUSE[int(rng.integers(len(GREENHOUSE)))]
            dt = float(rng.choice([1.0, 10.0, 60.0]))
            v = _normal_series(rng, WINDOW, spec, rng.uniform(0, 86400), dt)
            if cls != "normal":
                # the fault must cover enough of the window to be visible
                start = int(rng.integers(0, WINDOW - 16 if cls != "spike" else WINDOW - 1))
                v = _apply_fault(rng, v, cls, spec, start)
            xs.append(window_features(_quantize(v, spec), spec.noise))
            ys.append(label)
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


@dataclass
class SimulatedSensor:
    """A live reading stream. `tick()` adds one reading; `inject(fault)` changes what follows."""

    spec: SensorSpec
    interval_s: float = 1.0
    seed: int = 0
    history: int = 512
    _fault: str = field(default="", init=False, repr=False)
    _values: deque = field(default_factory=deque, init=False, repr=False)
    _times: deque = field(default_factory=deque, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._lock = threading.Lock()
        start = time.time() - self.interval_s * self.history
        self._t = start
        self._wander = 0.0
        self._stuck_value: float | None = None
        self._drift = 0.0
        self._spike_left = 0
        for i in range(self.history):  # a full history, so a new device can answer at once
            self.tick(start + i * self.interval_s)

    @property
    def fault(self) -> str:
        return self._fault

    def inject(self, fault: str) -> None:
        """Start a fault ("spike", "drift", "stuck", "dropout") or clear it with ""."""
        if fault and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {FAULTS}")
        with self._lock:
            self._fault = fault
            self._stuck_value = None
            self._drift = 0.0
            self._spike_left = 2 if fault == "spike" else 0

    def tick(self, now: float | None = None) -> float | None:
        spec, rng = self.spec, self._rng
        with self._lock:
            self._t = now if now is not None else self._t + self.interval_s
            self._wander += rng.normal(0, spec.noise * 0.05)
            v = spec.base + spec.daily_amplitude * np.sin(2 * np.pi * self._t / 86400.0) + self._wander
            v += rng.normal(0, spec.noise)
            value: float | None = float(_quantize(np.array([v]), spec)[0])
            if self._fault == "stuck":
                if self._stuck_value is None:
                    self._stuck_value = (
                        float(self._values[-1]) if self._values and self._values[-1] is not None else value
                    )
                value = self._stuck_value
            elif self._fault == "drift":
                self._drift += 1.5 * spec.noise
                value = float(_quantize(np.array([v + self._drift]), spec)[0])
            elif self._fault == "spike" and self._spike_left > 0:
                self._spike_left -= 1
                value = float(_quantize(np.array([v + 40 * spec.noise]), spec)[0])
            elif self._fault == "dropout" and rng.random() < 0.7:
                value = None
            self._values.append(value)
            self._times.append(self._t)
            while len(self._values) > self.history:
                self._values.popleft()
                self._times.popleft()
            return value

    def advance(self, n: int) -> None:
        for _ in range(n):
            self.tick()

    def recent(self, n: int) -> tuple[list[float], list[float | None]]:
        """The last `n` (timestamps, values); a value is None where a reading dropped out."""
        with self._lock:
            n = max(1, min(int(n), len(self._values)))
            return list(self._times)[-n:], list(self._values)[-n:]
