"""The reference imitation-learning pipeline, tracked: a small but real workload.

A noisy linearised cart-pole is balanced by five steps:

1. **Train expert**: Riccati value iteration for an LQR controller, refined by
   random search on rollout cost.
2. **Collect expert trajectories**: roll the expert out with exploration noise.
3. **Pretrain BC**: fit a linear policy to the (state, action) pairs with
   minibatch SGD (behaviour cloning).
4. **Fine-tune**: evolution strategies on the BC policy's rollout return.
5. **Evaluate**: compare random, BC, fine-tuned and expert policies.

Every step reports progress through ``step.advance()``. ``--quick`` (the default
of ``otel-tracker demo``) finishes in seconds; ``--full`` takes a few minutes.
Run it with ``python -m otel_tracker.examples.imitation`` or ``otel-tracker demo``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api import track_run
from ..errors import OtelTrackerError

STEPS = ("Train expert", "Collect expert trajectories", "Pretrain BC", "Fine-tune", "Evaluate")


@dataclass(frozen=True)
class Sizes:
    """How much work each step does."""

    riccati_iters: int
    search_rounds: int
    episodes: int
    horizon: int
    bc_epochs: int
    es_generations: int
    es_population: int
    eval_episodes: int


QUICK = Sizes(400, 60, 60, 200, 40, 30, 16, 40)
FULL = Sizes(4000, 800, 1500, 400, 400, 300, 32, 400)


def _np() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise OtelTrackerError(
            "the demo pipeline needs numpy: pip install 'otel-tracker[demo]'"
        ) from exc
    return numpy


class CartPole:
    """Linearised cart-pole (x, x', theta, theta'), dt = 0.02, with process noise."""

    def __init__(self, np: Any, rng: Any, noise: float = 0.01) -> None:
        dt, g, mc, mp, length = 0.02, 9.81, 1.0, 0.1, 0.5
        total = mc + mp
        self.np = np
        self.rng = rng
        self.noise = noise
        a = np.eye(4)
        a[0, 1] = a[2, 3] = dt
        a[3, 2] = dt * g * total / (length * (4 / 3 * total - mp))
        a[1, 2] = -dt * mp * length * a[3, 2] / (dt * total)
        b = np.zeros((4, 1))
        b[1, 0] = dt / total
        b[3, 0] = -dt / (length * (4 / 3 * total - mp))
        self.A, self.B = a, b
        self.Q = np.diag([1.0, 0.1, 10.0, 0.1])
        self.R = np.array([[0.01]])

    def rollout(self, gain: Any, horizon: int, act_noise: float = 0.0) -> tuple[float, Any, Any]:
        """Run ``u = -gain @ x``; return (total cost, states, actions)."""
        np = self.np
        x = self.rng.normal(0, 0.05, size=4)
        cost = 0.0
        states = np.empty((horizon, 4))
        actions = np.empty((horizon, 1))
        for t in range(horizon):
            u = -gain @ x
            if act_noise:
                u = u + self.rng.normal(0, act_noise, size=1)
            u = np.clip(u, -20.0, 20.0)
            states[t], actions[t] = x, u
            cost += float(x @ self.Q @ x + u @ self.R @ u)
            x = self.A @ x + self.B @ u + self.rng.normal(0, self.noise, size=4)
            if not np.all(np.isfinite(x)) or abs(x[2]) > 1.5:
                cost += 1e4 * (horizon - t)  # fell over
                return cost, states[: t + 1], actions[: t + 1]
        return cost, states, actions


# -- the five stages: each does its work on a tracked step and returns its result ----------


def train_expert(np: Any, env: CartPole, rng: Any, sizes: Sizes, step: Any) -> Any:
    """Riccati iteration, then random-search refinement on rollouts: the expert's gain."""
    step.set_total(sizes.riccati_iters + sizes.search_rounds, unit="iterations")
    p = np.copy(env.Q)
    for _ in range(sizes.riccati_iters):
        bt_p = env.B.T @ p
        gain = np.linalg.solve(env.R + bt_p @ env.B, bt_p @ env.A)
        p = env.Q + env.A.T @ p @ (env.A - env.B @ gain)
        step.advance()
    best_cost = np.mean([env.rollout(gain, sizes.horizon)[0] for _ in range(4)])
    for _ in range(sizes.search_rounds):
        candidate = gain + rng.normal(0, 0.02 * (np.abs(gain) + 1e-3))
        cost = np.mean([env.rollout(candidate, sizes.horizon)[0] for _ in range(2)])
        if cost < best_cost:
            gain, best_cost = candidate, cost
        step.advance()
    return gain


def collect_trajectories(np: Any, env: CartPole, expert: Any, sizes: Sizes, step: Any) -> Any:
    """Demonstrations with exploration noise (DART-style): states and expert labels."""
    step.set_total(sizes.episodes * sizes.horizon, unit="env steps")
    all_states, all_actions = [], []
    for _ in range(sizes.episodes):
        _, states, _noisy_actions = env.rollout(expert, sizes.horizon, act_noise=0.5)
        all_states.append(states)
        all_actions.append(-(expert @ states.T).T)  # the expert's label, not the noisy act
        step.advance(sizes.horizon)
    return np.concatenate(all_states), np.concatenate(all_actions)


def pretrain_bc(np: Any, rng: Any, xs: Any, ys: Any, sizes: Sizes, step: Any) -> Any:
    """Behaviour cloning: a linear policy by minibatch SGD on squared error."""
    batch = 256
    batches = max(1, len(xs) // batch)
    step.set_total(sizes.bc_epochs * batches, unit="batches")
    w = np.zeros((4, 1))
    lr = 0.5
    scale = xs.std(axis=0) + 1e-6
    xn = xs / scale
    for _ in range(sizes.bc_epochs):
        order = rng.permutation(len(xs))
        for i in range(batches):
            idx = order[i * batch : (i + 1) * batch]
            grad = xn[idx].T @ (xn[idx] @ w - ys[idx]) / len(idx)
            w -= lr * grad
            step.advance()
    return -(w[:, 0] / scale)[None, :]


def fine_tune(np: Any, env: CartPole, rng: Any, policy: Any, sizes: Sizes, step: Any) -> Any:
    """Evolution strategies on rollout cost."""
    step.set_total(sizes.es_generations * sizes.es_population, unit="rollouts")
    tuned = policy.copy()
    sigma, lr = 0.05, 0.02
    for _ in range(sizes.es_generations):
        noise = rng.normal(0, 1, size=(sizes.es_population, *tuned.shape))
        costs = np.empty(sizes.es_population)
        for k in range(sizes.es_population):
            costs[k] = env.rollout(tuned + sigma * noise[k], sizes.horizon // 2)[0]
            step.advance()
        ranks = (costs.argsort().argsort() / (len(costs) - 1)) - 0.5
        tuned = tuned - lr / sigma * np.tensordot(ranks, noise, axes=1) / len(costs)
    return tuned


def evaluate(
    np: Any, env: CartPole, policies: dict[str, Any], sizes: Sizes, step: Any
) -> dict[str, dict[str, float]]:
    """Every policy on fresh episodes: mean and spread of the cost."""
    step.set_total(len(policies) * sizes.eval_episodes, unit="episodes")
    results = {}
    for label, gain in policies.items():
        costs = []
        for _ in range(sizes.eval_episodes):
            costs.append(env.rollout(gain, sizes.horizon)[0])
            step.advance()
        results[label] = {"mean_cost": float(np.mean(costs)), "std_cost": float(np.std(costs))}
    return results


def _report(run: Any, step: Any, results: dict[str, Any], out: bool) -> None:
    if run.dir is not None:
        report = Path(run.dir) / "evaluation.json"
        report.write_text(json.dumps(results, indent=2) + "\n")
        step.add_artifact(report, kind="report")
    if out:
        # sys.stdout looked up now: a live progress view may have redirected it
        for label, figures in results.items():
            print(f"  {label:<10} mean cost {figures['mean_cost']:>12.1f}", file=sys.stdout)


def run_pipeline(
    sizes: Sizes = QUICK,
    *,
    seed: int = 1,
    skip: Sequence[str] = (),
    root: str | None = None,
    sample_interval: float | None = None,
    scenario: str | None = None,
    out: bool = False,
    **track_options: Any,
) -> Any:
    """Run the five tracked steps; return the run (its ``manifest_path`` included).

    ``track_options`` go to :func:`~otel_tracker.track_run` (``otlp=``, ``tensorboard=``...).
    """
    np = _np()
    unknown = [s for s in skip if s not in STEPS]
    if unknown:
        raise OtelTrackerError(
            f"unknown step(s) to skip: {', '.join(unknown)}; steps: {', '.join(STEPS)}"
        )
    rng = np.random.default_rng(seed)
    env = CartPole(np, rng)
    params = {"seed": seed, **sizes.__dict__}
    with track_run(
        "imitation-pipeline",
        steps=STEPS,
        params=params,
        scenario=scenario,
        root=root,
        sample_interval=sample_interval,
        **track_options,
    ) as run:
        for name in skip:  # up front, so that "Step i/N" counts only what will run
            run.skip(name, reason="skipped on the command line")
        with run.step("Train expert") as step:
            expert = train_expert(np, env, rng, sizes, step)
        with run.step("Collect expert trajectories") as step:
            xs, ys = collect_trajectories(np, env, expert, sizes, step)
        if "Pretrain BC" in skip:
            policy = np.zeros_like(expert)
        else:
            with run.step("Pretrain BC") as step:
                policy = pretrain_bc(np, rng, xs, ys, sizes, step)
        if "Fine-tune" in skip:
            tuned = policy
        else:
            with run.step("Fine-tune") as step:
                tuned = fine_tune(np, env, rng, policy, sizes, step)
        with run.step("Evaluate") as step:
            policies = {
                "random": rng.normal(0, 0.1, size=expert.shape),
                "bc": policy,
                "fine_tuned": tuned,
                "expert": expert,
            }
            _report(run, step, evaluate(np, env, policies, sizes, step), out)
    return run


# -- one stage per process: the pipeline file examples/imitation_pipeline.toml -------------

STATE_FILE = "state.npz"


def run_stage(stage: str, workdir: Path, sizes: Sizes = QUICK, *, seed: int = 1) -> Any:
    """Run one stage as its own tracked process; arrays pass through ``workdir``.

    Started by ``otel-tracker pipeline run``, the process joins the pipeline's run:
    its step nests under the pipeline step that launched it, in the same trace.
    """
    np = _np()
    if stage not in STEPS:
        raise OtelTrackerError(f"unknown stage {stage!r}; stages: {', '.join(STEPS)}")
    workdir.mkdir(parents=True, exist_ok=True)
    state_path = workdir / STATE_FILE
    if STEPS.index(stage) == 0:
        state: dict[str, Any] = {}
    else:
        try:
            with np.load(state_path) as saved:
                state = dict(saved)
        except OSError as exc:
            raise OtelTrackerError(
                f"stage {stage!r} needs the earlier stages' {state_path} ({exc})"
            ) from None
    # each stage its own stream, so a stage run again gives the same result
    rng = np.random.default_rng([seed, STEPS.index(stage)])
    env = CartPole(np, rng)
    with track_run(stage, steps=[stage], params={"seed": seed, **sizes.__dict__}) as run:
        with run.step(stage) as step:
            if stage == "Train expert":
                state["expert"] = train_expert(np, env, rng, sizes, step)
            elif stage == "Collect expert trajectories":
                state["xs"], state["ys"] = collect_trajectories(
                    np, env, state["expert"], sizes, step
                )
            elif stage == "Pretrain BC":
                state["policy"] = pretrain_bc(np, rng, state["xs"], state["ys"], sizes, step)
            elif stage == "Fine-tune":
                policy = state.get("policy", np.zeros_like(state["expert"]))
                state["tuned"] = fine_tune(np, env, rng, policy, sizes, step)
            else:
                policy = state.get("policy", np.zeros_like(state["expert"]))
                policies = {
                    "random": rng.normal(0, 0.1, size=state["expert"].shape),
                    "bc": policy,
                    "fine_tuned": state.get("tuned", policy),
                    "expert": state["expert"],
                }
                results = evaluate(np, env, policies, sizes, step)
                (workdir / "evaluation.json").write_text(json.dumps(results, indent=2) + "\n")
                step.add_artifact(workdir / "evaluation.json", kind="report")
                _report(run, step, results, out=True)
        # write-then-rename: a stage killed mid-save leaves the previous state intact
        partial = workdir / f".{STATE_FILE}.{os.getpid()}.npz"
        np.savez(partial, **state)
        os.replace(partial, state_path)
    return run


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m otel_tracker.examples.imitation [--full] [--seed N] [--skip STEP]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the long version (minutes)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip", action="append", default=[], choices=STEPS[2:4])
    parser.add_argument("--root", default=None)
    parser.add_argument(
        "--stage",
        choices=STEPS,
        help="run one stage in this process (arrays pass through --workdir); "
        "see examples/imitation_pipeline.toml",
    )
    parser.add_argument("--workdir", default="output/imitation-stages", help="with --stage")
    args = parser.parse_args(argv)
    if args.stage:
        run_stage(args.stage, Path(args.workdir), FULL if args.full else QUICK, seed=args.seed)
        return 0

    run = run_pipeline(
        FULL if args.full else QUICK, seed=args.seed, skip=args.skip, root=args.root, out=True
    )
    if run.manifest_path is not None:
        print(f"manifest: {run.manifest_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
