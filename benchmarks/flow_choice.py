"""flowjax or NumPyro's flows for the proposals? The same job on both, one run.

Run: ``python benchmarks/flow_choice.py`` (writes benchmarks/results/flow_choice.md).
Job: maximum likelihood on 10⁴ draws of the rings toy, 8 flow layers, 2 hidden layers of 64,
Adam 1e-3, 3000 steps of 256 points; then held-out NLL (true: the toy's entropy) and the
time of one ``sample_and_log_prob`` of 10⁴ draws (what importance sampling needs).
* flowjax: ``coupling_flow`` with rational-quadratic splines (8 knots on [-5, 5]).
* NumPyro: ``InverseAutoregressiveTransform`` with ``AutoregressiveNN`` (stax) and
  permutations (NumPyro's flows offer IAF and BNAF; BNAF has no inverse, so it cannot give
  log q of data; IAF inverts by d sequential passes).
"""

import sys
import time
from functools import partial
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
import optax
from numpyro.distributions.flows import InverseAutoregressiveTransform
from numpyro.distributions.transforms import PermuteTransform
from numpyro.nn import AutoregressiveNN

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maxent_gan.inference.io import write_atomic  # noqa: E402
from maxent_gan.inference.proposals.flow import Flow  # noqa: E402
from maxent_gan.models.problems import make_problem  # noqa: E402

LAYERS, STEPS, BATCH = 8, 3000, 256


def numpyro_flow(params, arn_apply, dim):
    transforms = []
    for i, layer in enumerate(params):
        transforms.append(InverseAutoregressiveTransform(partial(arn_apply, layer)))
        if i < len(params) - 1:
            transforms.append(PermuteTransform(jnp.arange(dim)[::-1]))
    return dist.TransformedDistribution(dist.Normal(jnp.zeros(dim), 1.0).to_event(1), transforms)


def fit(loss_fn, params, data, key):
    optimizer = optax.adam(1e-3)
    state = optimizer.init(params)

    @jax.jit
    def step(params, state, key):
        batch = data[jax.random.choice(key, data.shape[0], (BATCH,))]
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    start = time.perf_counter()
    for i in range(STEPS):
        params, state, loss = step(params, state, jax.random.fold_in(key, i))
    jax.block_until_ready(params)
    return params, time.perf_counter() - start


def timed(fn):
    jax.block_until_ready(fn())  # compile
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def main():
    target = make_problem("rings").target
    data, test = target.sample(jax.random.key(0), (10_000,)), target.sample(jax.random.key(1), (10_000,))
    true_nll = float(-jnp.mean(target.normalized_log_prob(test)))
    rows = []

    flow = Flow.coupling(jax.random.key(2), 2, layers=LAYERS, width=64)
    arrays, static = eqx.partition(flow, eqx.is_inexact_array)
    arrays, seconds = fit(lambda a, x: -jnp.mean(eqx.combine(a, static).log_prob(x)), arrays, data, jax.random.key(3))
    flow = eqx.combine(arrays, static)
    draw = jax.jit(lambda: flow.sample_and_log_prob(jax.random.key(4), 10_000))
    rows.append(("flowjax coupling + RQ splines", float(-jnp.mean(flow.log_prob(test))), seconds, timed(draw)))

    arn_init, arn_apply = AutoregressiveNN(2, [64, 64])
    layers = [arn_init(jax.random.key(10 + i), (2,))[1] for i in range(LAYERS)]
    layers, seconds = fit(lambda p, x: -jnp.mean(numpyro_flow(p, arn_apply, 2).log_prob(x)), layers, data,
                          jax.random.key(3))
    model = numpyro_flow(layers, arn_apply, 2)

    def numpyro_draw():
        x = model.sample(jax.random.key(4), (10_000,))
        return x, model.log_prob(x)  # no joint sample-and-log-prob: log q needs the inverse passes

    rows.append(("NumPyro IAF (AutoregressiveNN)", float(-jnp.mean(model.log_prob(test))), seconds,
                 timed(jax.jit(numpyro_draw))))
    lines = ["# flowjax vs NumPyro flows: maximum likelihood on the rings toy (one run, CPU, float32)", "",
             f"True NLL (entropy of the toy): {true_nll:.4f} nats. {LAYERS} layers, {STEPS} Adam steps of {BATCH}.", "",
             "| library / flow | held-out NLL | gap to true | fit seconds | 10⁴ draws + log q, seconds |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {nll:.4f} | {nll - true_nll:+.4f} | {fit_s:.1f} | {draw_s:.4f} |"
              for name, nll, fit_s, draw_s in rows]
    print("\n".join(lines))
    write_atomic(Path(__file__).parent / "results" / "flow_choice.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
