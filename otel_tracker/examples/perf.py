"""Benchmark entry points for the reference pipeline's smoke tests
(``perf_scenarios.toml``): small, fixed pieces of its real work. Each call does
the same work and returns how many items it processed."""

from __future__ import annotations

from typing import Any

from .imitation import QUICK, CartPole, _np


def _setup(seed: int) -> tuple[Any, Any, Any]:
    np = _np()
    rng = np.random.default_rng(seed)
    env = CartPole(np, rng)
    gain = np.array([[-1.0, -2.2, -30.0, -5.5]])  # a stabilising policy, close to the expert's
    return np, env, gain


def rollouts(
    episodes: int = 20, horizon: int = QUICK.horizon, seed: int = 1, slowdown: float = 0.0
) -> int:
    """Collect ``episodes`` noisy rollouts; returns the env steps taken.

    ``slowdown`` (seconds per episode) exists to check that perf-test catches a
    deliberately slowed scenario.
    """
    import time

    _, env, gain = _setup(seed)
    steps = 0
    for _ in range(episodes):
        _, states, _ = env.rollout(gain, horizon, act_noise=0.5)
        steps += len(states)
        if slowdown:
            time.sleep(slowdown)
    return steps


def bc_epoch(samples: int = 12_000, batch: int = 256, seed: int = 1) -> int:
    """One behaviour-cloning epoch of minibatch SGD; returns the batches."""
    np = _np()
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(samples, 4))
    ys = xs @ np.array([[1.0], [2.2], [30.0], [5.5]])
    w = np.zeros((4, 1))
    order = rng.permutation(samples)
    batches = max(1, samples // batch)
    for i in range(batches):
        idx = order[i * batch : (i + 1) * batch]
        w -= 0.01 * xs[idx].T @ (xs[idx] @ w - ys[idx]) / len(idx)
    return batches


def policy_step(seed: int = 1) -> None:
    """One policy evaluation on one state: the per-action latency of the controller."""
    np, env, gain = _setup(seed)
    x = env.rng.normal(0, 0.05, size=4)
    for _ in range(100):
        _ = np.clip(-gain @ x, -20.0, 20.0)
