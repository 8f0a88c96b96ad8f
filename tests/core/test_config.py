"""SamplerConfig: JSON round trip, per-solver defaults, validation, start step and NFE."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from geodiff.priors.schedule import make_schedule, t_for_sigma
from geodiff.solvers import SOLVERS, SamplerConfig

ABAR = make_schedule("cosine", 1000)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_json_round_trip_of_every_solver_default(solver: str) -> None:
    cfg = SamplerConfig.defaults(solver)
    text = cfg.to_json()
    assert json.loads(text) == cfg.to_dict()
    assert SamplerConfig.from_json(text) == cfg
    assert SamplerConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_round_trip_keeps_every_changed_field() -> None:
    changed = dict(
        steps=7, t0=321, sigma0=0.2, init="noise", samples=3, eta=0.5, zeta=0.3, data_std=0.4, newton_iters=2,
        jacobian=True, keep_eps=True, ensemble=True, clip=(-0.5, 0.75), mean_window=31, bright=0.9,
        admm_iters=3, admm_sigma=0.25, admm_decay=0.8, looks_power=0.5, admm_ensemble=2, admm_weight=1.5,
        refine=False, log_tweedie=4,
    )  # fmt: skip
    assert set(changed) == {
        f.name for f in dataclasses.fields(SamplerConfig)
    }  # a new field needs a case here
    cfg = SamplerConfig(**changed)
    back = SamplerConfig.from_json(cfg.to_json())
    assert back == cfg and back.clip == (-0.5, 0.75)
    assert back != SamplerConfig()


def test_defaults_differ_per_solver_and_take_changes() -> None:
    assert SamplerConfig.defaults("sar_dps") == SamplerConfig()
    assert SamplerConfig.defaults("dps").jacobian and SamplerConfig.defaults("dps").steps == 100
    assert SamplerConfig.defaults("fuse_dps", steps=3).steps == 3
    with pytest.raises(ValueError, match="unknown solver"):
        SamplerConfig.defaults("ddim")
    with pytest.raises(ValueError, match="unknown sampler settings"):
        SamplerConfig.from_dict({"steps": 3, "guidance": 1.0})
    with pytest.raises(ValueError, match="JSON"):
        SamplerConfig.from_json("{steps: 3")


@pytest.mark.parametrize(
    ("field", "value"),
    [("steps", 0), ("samples", 1.5), ("eta", 1.5), ("zeta", 0.0), ("sigma0", -0.1), ("t0", -1),
     ("clip", (1.0, -1.0)), ("mean_window", 2), ("bright", 1.5), ("newton_iters", 0)],
)  # fmt: skip
def test_out_of_range_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        SamplerConfig(**{field: value})


def test_start_step_and_nfe() -> None:
    cfg = SamplerConfig(steps=10, t0=None, sigma0=0.15)
    t = t_for_sigma(ABAR, 0.15)
    assert cfg.start_step(ABAR, has_init=True) == t
    assert cfg.start_step(ABAR, has_init=False) == 999  # noise always starts at T-1
    assert (
        SamplerConfig(t0=5).start_step(ABAR, True) == 5 and SamplerConfig(t0=5, steps=10).nfe(ABAR, True) == 6
    )
    assert SamplerConfig(sigma0=None).start_step(ABAR, True) == 999
    with pytest.raises(ValueError, match="t0"):
        SamplerConfig(t0=1000).start_step(ABAR, True)
    assert isinstance(cfg.start_step(ABAR.to(torch.float32), True), int)


def test_a_number_where_the_config_belongs_is_a_clear_error() -> None:
    from geodiff.priors.gaussian import GaussianPrior
    from geodiff.solvers import sar_dps

    prior = GaussianPrior(0.0, 0.5)
    prior.domain = "amplitude"
    y = torch.rand(1, 1, 8, 8) + 0.1
    with pytest.raises(ValueError, match="SpeckleModel"):
        sar_dps(y, prior, 4.0, 0.3)  # the old (looks, scale) positional call
    assert SamplerConfig.of(None, "hqs") == SamplerConfig.defaults("hqs")
