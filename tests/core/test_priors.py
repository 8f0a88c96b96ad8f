"""Priors: training (loss goes down, exact resume), safetensors checks, registry and shipped priors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from geodiff.cli import cli
from geodiff.priors import DiffusionPrior, abar_at, list_models, load, tweedie_x0
from geodiff.priors.registry import SHIPPED_DIR
from geodiff.priors.train import TrainConfig, train
from geodiff.priors.weights_io import load_tensors

VSAR = "virtual_sar_clean_gray"


pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(shared: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        sources=[str(shared / VSAR / f"0100{i}.jpg") for i in range(4)],
        val_sources=[str(shared / VSAR / "01850.jpg")],
        out=str(out),
        name="t",
        tile=16,
        batch=8,
        width=8,
        channel_mult=[1, 2],
        num_res_blocks=1,
        lr=2e-3,
        warmup=10,
        ema=0.9,
        val_crops=16,
        val_every=50,
        save_every=50,
        threads=1,
        seed=3,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
def test_tiny_model_trains_and_validation_loss_goes_down(shared_data, tmp_path):
    res = train(_cfg(shared_data, tmp_path, steps=150, val_every=25, save_every=150), progress=False)
    vals = [h["val_loss_ema"] for h in res["history"]]
    assert res["step"] == 150
    # an untrained eps-network outputs ~0 (zero-initialised head): loss ~1; training must beat that clearly
    assert vals[-1] < 0.75 * vals[0], vals
    assert vals[-1] < 0.6, vals
    prior = load(tmp_path / "t.safetensors")
    assert isinstance(prior, DiffusionPrior)
    assert prior.config["training"]["steps"] == 150
    assert prior.config["domain"] == "amplitude"


@pytest.mark.slow
def test_resume_continues_from_saved_step_and_matches_uninterrupted_run(shared_data, tmp_path):
    train(_cfg(shared_data, tmp_path / "a", steps=12, val_every=6, save_every=6), progress=False)
    first = train(
        _cfg(shared_data, tmp_path / "b", steps=12, val_every=6, save_every=6), progress=False, stop_after=6
    )
    assert first["step"] == 6
    with pytest.raises(FileExistsError, match="--resume"):
        train(_cfg(shared_data, tmp_path / "b", steps=12), progress=False)
    resumed = train(_cfg(shared_data, tmp_path / "b", steps=12), resume=True, progress=False)
    assert resumed["step"] == 12
    assert [h["step"] for h in resumed["history"]] == [6, 12]
    a = load_tensors(tmp_path / "a" / "checkpoint.safetensors")
    b = load_tensors(tmp_path / "b" / "checkpoint.safetensors")
    for k in a:
        if k.startswith(("model.", "ema.")):
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    assert json.loads((tmp_path / "b" / "state.json").read_text())["step"] == 12
    # `geodiff models export` re-exports the chosen weights and records the choice
    r = CliRunner().invoke(cli, ["models", "export", str(tmp_path / "a"), "--weights", "raw", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["weights"] == "raw"
    exported = load_tensors(tmp_path / "a" / "t.safetensors")
    for k, v in exported.items():
        torch.testing.assert_close(v, a[f"model.{k}"], msg=k)
    assert json.loads((tmp_path / "a" / "t.json").read_text())["training"]["exported_weights"] == "raw"
    assert CliRunner().invoke(cli, ["models", "export", str(tmp_path)]).exit_code == 2  # no run there


def test_init_starts_from_a_priors_weights_and_architecture(shared_data, tmp_path):
    # fine-tuning start: the tiny prior's weights and architecture, whatever --width/--mult say
    res = train(_cfg(shared_data, tmp_path, steps=0, width=16, channel_mult=[1, 2, 2], init="tiny"),
                progress=False)  # fmt: skip
    assert res["step"] == 0
    start = load(tmp_path / "t.safetensors")
    tiny = load("tiny")
    assert start.config["unet"] == tiny.config["unet"]
    assert start.config["training"]["init"] == "tiny"
    for k, v in tiny.net.state_dict().items():
        torch.testing.assert_close(start.net.state_dict()[k], v, rtol=0, atol=0, msg=k)
    with pytest.raises(ValueError, match="--prediction eps"):
        train(_cfg(shared_data, tmp_path / "v", steps=0, init="tiny", prediction="v"), progress=False)


def test_resume_without_a_run_is_a_clear_error(tmp_path):
    cfg = TrainConfig(sources=[], out=str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(cfg, resume=True, progress=False)


def _copy_tiny(tmp_path: Path) -> Path:
    for ext in (".safetensors", ".json"):
        shutil.copy(SHIPPED_DIR / f"tiny{ext}", tmp_path / f"m{ext}")
    return tmp_path / "m.safetensors"


def test_load_rejects_truncated_weights(tmp_path):
    w = _copy_tiny(tmp_path)
    data = w.read_bytes()
    w.write_bytes(data[:-100])
    with pytest.raises(ValueError, match="truncated"):
        load(w)
    w.write_bytes(data[:5])
    with pytest.raises(ValueError, match="truncated"):
        load(w)
    w.write_bytes(b"\xff" * 8 + data[8:])  # header length beyond the file
    with pytest.raises(ValueError, match="truncated"):
        load(w)


def test_load_rejects_config_weights_mismatch(tmp_path):
    w = _copy_tiny(tmp_path)
    cfg = json.loads(w.with_suffix(".json").read_text())
    cfg["unet"]["width"] *= 2
    w.with_suffix(".json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not match the architecture"):
        load(w)
    cfg["unet"]["width"] //= 2
    cfg["unet"]["channel_mult"] = cfg["unet"]["channel_mult"] + [2]
    w.with_suffix(".json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="missing"):
        load(w)


def test_load_missing_files_and_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="no prior named"):
        load("no-such-prior")
    with pytest.raises(FileNotFoundError, match="not found"):
        load(tmp_path / "x.safetensors")
    w = _copy_tiny(tmp_path)
    w.with_suffix(".json").unlink()
    with pytest.raises(FileNotFoundError, match="needs its .json"):
        load(w)


@pytest.mark.parametrize("name", ["tiny", "gray"])
def test_shipped_priors_load_and_run_on_stride_multiples(name):
    prior = load(name)
    assert isinstance(prior, DiffusionPrior)
    assert prior.domain == "amplitude" and prior.channels == 1
    assert (SHIPPED_DIR / f"{name}.safetensors").stat().st_size <= 16 * 2**20
    abar = prior.alphas_cumprod
    assert abar.shape == (1000,) and bool((abar[1:] < abar[:-1]).all())
    s = prior.stride
    for h, w in [(4 * s, 4 * s), (8 * s, 3 * s)]:
        x = torch.randn(2, 1, h, w)
        eps = prior.eps(x, torch.tensor([10, 900]))
        assert eps.shape == x.shape and torch.isfinite(eps).all()
    with pytest.raises(ValueError, match=f"multiple of .*stride {s}"):
        prior.eps(torch.randn(1, 1, 4 * s + 1, 4 * s), torch.tensor([10]))
    with pytest.raises(ValueError, match="timesteps"):
        prior.eps(torch.randn(1, 1, 4 * s, 4 * s), torch.tensor([1000]))


def test_shipped_gray_prior_denoises_a_dev_image(shared_data):
    """Tweedie x0 at sigma = 25/255 must clearly beat the noisy input (the bench compares with BM3D)."""
    from PIL import Image

    from geodiff.priors.schedule import t_for_sigma

    prior = load("gray")
    g = np.asarray(Image.open(shared_data / VSAR / "01900.jpg").convert("L"), dtype=np.float64)[:128, :128]
    a = (g + 1) / 256
    sigma = 25 / 255
    y = a + sigma * np.random.default_rng(0).standard_normal(a.shape)
    t = t_for_sigma(prior.alphas_cumprod, 2 * sigma)
    x_t = float(prior.alphas_cumprod[t].sqrt()) * torch.from_numpy(2 * y - 1).float()[None, None]
    tt = torch.tensor([t])
    with torch.no_grad():
        x0 = tweedie_x0(x_t, prior.eps(x_t, tt), abar_at(prior.alphas_cumprod, tt, x_t))
    a_hat = ((x0[0, 0].double().numpy() + 1) / 2).clip(0, 1)
    psnr = lambda u: 10 * np.log10(1 / np.mean((u - a) ** 2))  # noqa: E731
    assert psnr(a_hat) > psnr(np.clip(y, 0, 1)) + 4


def test_registry_lists_shipped_and_user_models(tmp_path, monkeypatch):
    monkeypatch.setenv("GEODIFF_MODELS", str(tmp_path))
    names = {m["name"]: m for m in list_models()}
    assert {"gray", "tiny"} <= set(names)
    for m in names.values():
        assert {"name", "path", "size_bytes", "domain"} <= set(m)
        assert m["size_bytes"] == Path(m["path"]).stat().st_size
    _copy_tiny(tmp_path)
    (tmp_path / "m.safetensors").rename(tmp_path / "mine.safetensors")
    (tmp_path / "m.json").rename(tmp_path / "mine.json")
    mine = {m["name"]: m for m in list_models()}["mine"]
    assert mine["origin"] == "user" and mine["domain"] == "amplitude"
    assert load("mine").stride == load("tiny").stride


def test_models_cli_json(tmp_path, monkeypatch):
    monkeypatch.setenv("GEODIFF_MODELS", str(tmp_path))
    r = CliRunner().invoke(cli, ["models", "--json"])
    assert r.exit_code == 0, r.output
    models = json.loads(r.stdout)
    assert {"gray", "tiny"} <= {m["name"] for m in models}
    assert all(isinstance(m["size_bytes"], int) and m["domain"] == "amplitude" for m in models)
    r = CliRunner().invoke(cli, ["models"])
    assert r.exit_code == 0 and "gray" in r.output


def test_train_cli_bad_tile_exits_2(tmp_path):
    img = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(np.zeros((40, 40), np.uint8)).save(img)
    r = CliRunner().invoke(
        cli, ["train", str(img), "--out", str(tmp_path / "r"), "--tile", "30", "--mult", "1,2,4"]
    )
    assert r.exit_code == 2
    assert "multiple of the network stride 4" in r.output


@pytest.mark.parametrize("name", ["gray", "tiny"])
def test_shipped_configs_name_sources_relative_to_the_data_root(name):
    """No machine paths in shipped JSON: sources and files are relative to the (shared) data root."""
    text = (SHIPPED_DIR / f"{name}.json").read_text()
    training = json.loads(text)["training"]
    assert "virtual_sar_clean_gray" in training["sources"]
    for p in training["sources"] + training["files"]:
        assert not p.startswith(("/", "~", "..")) and "\\" not in p and ":" not in p, p
    assert "/work/" not in text and ".device" not in text


def test_trainer_records_sources_relative_to_the_data_root(tmp_path):
    from geodiff.priors.train import _relative, data_root

    (tmp_path / "data" / "a" / "b").mkdir(parents=True)
    (tmp_path / "data" / "c").mkdir()
    cfg = TrainConfig(sources=[str(tmp_path / "data" / "a" / "b"), str(tmp_path / "data" / "c")], out="x")
    root = data_root(cfg)
    assert root == (tmp_path / "data").resolve()
    assert [_relative(s, root) for s in cfg.sources] == ["a/b", "c"]
    cfg.data_root = str(tmp_path)
    assert [_relative(s, data_root(cfg)) for s in cfg.sources] == ["data/a/b", "data/c"]
    assert _relative("/elsewhere/img.png", root) == "img.png"  # outside the root: never absolute


def test_lr_schedule_is_torch_lambdalr_with_warmup_and_cosine():
    from geodiff.priors.train import lr_factor, make_scheduler

    cfg = TrainConfig(sources=[], out="x", steps=100, warmup=10, lr=1e-3, min_lr_ratio=0.1)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = make_scheduler(opt, cfg, lambda: 0.0)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert isinstance(sched, torch.optim.lr_scheduler.LambdaLR)
    assert lrs[0] == pytest.approx(1e-4) and max(lrs) == pytest.approx(lrs[9]) and lrs[-1] < 0.15 * max(lrs)
    assert lrs[50] == pytest.approx(1e-3 * lr_factor(cfg, 50, 0.0))
    cfg.max_minutes = 1.0  # a time budget further along than the steps anneals earlier
    assert lr_factor(cfg, 20, 55.0) < lr_factor(cfg, 20, 0.0)


def test_train_pack_writes_amplitude_caches(tmp_path):
    from PIL import Image

    from geodiff.priors.data import load_amplitude

    img = tmp_path / "img" / "a.png"
    img.parent.mkdir()
    Image.fromarray(np.arange(40 * 40, dtype=np.uint32).reshape(40, 40).astype(np.uint8)).save(img)
    r = CliRunner().invoke(cli, ["train", str(img.parent), "--pack", str(tmp_path / "packed"), "--json"])
    assert r.exit_code == 0, r.output
    packed = tmp_path / "packed" / "a.amp.npy"
    assert json.loads(r.stdout)["packed"] == [str(packed)]
    np.testing.assert_allclose(load_amplitude(packed).amp, load_amplitude(img).amp, atol=1e-3)
    r = CliRunner().invoke(cli, ["train", str(img.parent)])
    assert r.exit_code == 2 and "--out is required" in r.output
