import numpy as np
import pytest

from edge.sensors import CLASSES, GREENHOUSE, WINDOW, SimulatedSensor, synthetic_windows, window_features


def test_window_features_have_a_fixed_shape_and_range():
    f = window_features(np.linspace(20, 21, 200), noise=0.1)
    assert f.shape == (2 * WINDOW,) and f.dtype == np.float32
    assert np.all(np.abs(f) <= 1.0)
    short = window_features(np.array([1.0, 2.0]), noise=0.1)  # padded, not an error
    assert short.shape == (2 * WINDOW,)


def test_synthetic_windows_are_balanced_and_deterministic():
    x, y = synthetic_windows(20, seed=3)
    assert x.shape == (20 * len(CLASSES), 2 * WINDOW)
    assert np.bincount(y).tolist() == [20] * len(CLASSES)
    x2, _ = synthetic_windows(20, seed=3)
    assert np.array_equal(x, x2)


def test_stuck_sensor_repeats_one_value_and_dropout_loses_readings():
    s = SimulatedSensor(GREENHOUSE[0], seed=1)
    _, before = s.recent(64)
    assert len(set(before)) > 5  # a live sensor moves
    s.inject("stuck")
    s.advance(30)
    _, after = s.recent(30)
    assert len(set(after)) == 1
    s.inject("dropout")
    s.advance(100)
    _, vals = s.recent(100)
    assert 30 < sum(v is None for v in vals) < 100
    with pytest.raises(ValueError):
        s.inject("melted")


def test_history_has_increasing_timestamps():
    s = SimulatedSensor(GREENHOUSE[1], interval_s=2.0)
    times, _ = s.recent(10)
    assert np.allclose(np.diff(times), 2.0)
