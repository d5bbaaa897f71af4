"""`python -m examples.digits --quick` runs in about a minute and its numbers say it learned
something (loose versions of the full run's claims); the saved model samples and inpaints
again without retraining, to the same numbers; --resume refuses other settings and keeps the
training record."""
import csv
import json
import os
import shutil

import numpy as np
import pytest

from examples import digits


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    metrics = digits.main(["--quick", "--out", str(out), "--seed", "0"])
    return out, metrics


def losses(out):
    with open(os.path.join(out, "loss.csv")) as f:
        return [(int(row["step"]), float(row["loss"])) for row in csv.DictReader(f)]


def test_outputs_exist_and_match_the_documented_keys(run):
    out, metrics = run
    with open(os.path.join(out, "metrics.json")) as f:
        saved = json.load(f)
    for key in ("classifier_accuracy", "sample_confidence", "class_counts", "nn_distance_ratio",
                "inpaint_agreement", "train_seconds", "seconds", "n_params", "ceiling", "floor", "training",
                "n_score_evals", "bits_per_dim", "annealed_langevin", "samplers"):
        assert key in saved
    assert saved["sample_confidence"] == metrics["sample_confidence"]
    for name in ("samples", "inpaint_lower", "inpaint_right", "loss", "samplers"):
        assert os.path.getsize(os.path.join(out, f"{name}.png")) > 5_000
    # the sampler table: the default, the reference and each SDE sampler, with exact call counts
    assert [(row["sampler"], row["calls"]) for row in saved["samplers"]] == [
        ("annealed", 20), ("annealed", 106), ("reverse_sde", 20), ("reverse_sde", 50), ("pc", 20), ("pc", 50),
        ("pf_ode", 20), ("pf_ode", 20)]
    samples = np.load(os.path.join(out, "samples.npy"))
    assert samples.shape == (metrics["n_samples"], 1, 8, 8) and samples.dtype == np.float32
    assert samples.min() >= 0 and samples.max() <= 1
    assert [step for step, _ in losses(out)] == list(range(1, 601))
    assert sorted(os.listdir(out)) == sorted(
        ["checkpoint.npz", "model.npz", "loss.csv", "loss.png", "metrics.json", "samples.npy", "samples.png",
         "inpaint_lower.png", "inpaint_right.png", "progress.csv", "progress_00300.png", "guided.png",
         "guided_samples.npy", "guided_labels.npy", "samplers.csv", "samplers.png",
         "progress_00600.png"])  # and no temporary file left
    with open(os.path.join(out, "progress.csv")) as f:
        progress = list(csv.DictReader(f))
    assert [row["step"] for row in progress] == ["300", "600"]
    assert all(0.1 < float(row["confidence"]) <= 1 for row in progress)


def test_the_judge_is_trustworthy(run):
    _, m = run
    # a 64-128-10 MLP reaches ~97% on the 297 held-out digits; outlier exposure keeps its
    # confidence on noise near 1/10 while real digits stay near 0.97
    assert m["classifier_accuracy"] > 0.8
    assert m["ceiling"]["confidence"] > 0.85 and m["floor"]["confidence"] < 0.4
    assert 0.7 < m["ceiling"]["nn_distance_ratio"] < 1.5  # held-out digits are as new as typical
    assert m["ceiling"]["inpaint_agreement"] > 0.8


def test_quick_samples_beat_the_noise_floor(run):
    _, m = run
    # 600 steps of a width-8 net do not make good digits (the full run's do); they must already
    # put the default sampler's digits clearly above the floor (measured at seed 0: confidence
    # 0.63 against 0.12, nearest-neighbour ratio 2.5 against 3.5; annealed Langevin's 0.78 and
    # 1.7). Inpainting is not asserted against its floor: the full run beats the noise-filled
    # half clearly, this net not yet (0.58 against 0.64 at seed 0, 60 digits a mask); here,
    # only well above chance (0.1)
    assert m["sample_confidence"] > m["floor"]["confidence"] + 0.3
    assert m["nn_distance_ratio"] < m["floor"]["nn_distance_ratio"] - 0.5
    assert m["annealed_langevin"]["nn_distance_ratio"] < m["floor"]["nn_distance_ratio"] - 1
    assert m["inpaint_agreement"] > 0.3
    assert sum(m["class_counts"]) == m["n_samples"]
    assert m["n_params"] <= 500_000


def test_the_default_sampler_is_cheap_and_keeps_annealed_langevins_quality(run):
    _, m = run
    # network calls counted by wrapping the net: the default, annealed Langevin with one step on
    # each of 19 levels, then Tweedie's step; at the quick schedule, 21 levels x 5 steps + Tweedie's
    assert m["n_score_evals"] == 19 + 1 and m["annealed_langevin"]["n_score_evals"] == 21 * 5 + 1
    # Each confidence is a mean over n = 150 samples of a maximum probability in [0.1, 1], so
    # its standard deviation is at most 0.45 and the difference of the two means has a standard
    # error of at most sqrt(2) 0.45 / sqrt(150) = 0.052; 3 of those, 0.16, is the sampling part
    # of the margin. The rest, 0.10, is the quick net's: on the full run's model the one-step
    # sampler is 0.017 below annealed Langevin (0.852 against 0.869, 500 digits), but one large
    # Langevin step per level magnifies the error of a net trained 600 steps (measured at
    # seed 0: 0.63 against 0.78, a gap of 0.15)
    margin = 3 * np.sqrt(2) * 0.45 / np.sqrt(m["n_samples"]) + 0.10
    assert m["sample_confidence"] > m["annealed_langevin"]["confidence"] - margin


def test_bits_per_dim_has_the_model_and_each_baseline(run):
    _, m = run
    bits = m["bits_per_dim"]
    assert set(bits) == {"model (Hutchinson)", "model (exact divergence)", "pixel histogram", "Gaussian",
                         "Gaussian mixture"}
    # a 64-pixel, 17-level digit costs at most log2(17) = 4.09 bits a pixel under the uniform
    # law; every fitted density must beat that clearly
    assert all(np.isfinite(v) and v < np.log2(17) for v in bits.values())
    rows = m["bits_per_dim_rows"]
    exact = rows["model (exact divergence)"]
    # Hutchinson's estimate is unbiased: on the same digits it differs from the exact divergence
    # by its probe noise alone, within 4 of its standard errors (MEASURED)
    assert abs(exact["hutchinson_minus_exact"]) < 4 * exact["difference_se"]


def test_guidance_gives_the_requested_class(run):
    out, m = run
    g = m["guided"]
    by_scale = g["by_scale"]
    # 10 digits per class, 100 at each scale: a share's standard error is at most 0.5/sqrt(100)
    # = 0.05, a difference of two at most 0.071; the best scale must beat no guidance (chance,
    # 0.1) by 3 of those, 0.21
    margin = 3 * np.sqrt(2) * 0.5 / np.sqrt(100)
    assert by_scale[str(g["best_scale"])]["requested_class"] > by_scale["0.0"]["requested_class"] + margin
    labels = np.load(out / "guided_labels.npy")
    assert np.array_equal(labels, np.repeat(np.arange(10), 10))
    assert np.load(out / "guided_samples.npy").shape == (100, 1, 8, 8)
    accuracy = list(g["classifier_accuracy_by_sigma"].values())
    assert accuracy[-1] > 0.8 and accuracy[0] < 0.4  # sharp at sigma_L, near chance at sigma_1


def test_the_saved_model_samples_and_inpaints_again_to_the_same_numbers(run, tmp_path):
    out, m = run
    again = digits.main(["sample", "--checkpoint", str(out), "--out", str(tmp_path)])
    assert again["sample_confidence"] == m["sample_confidence"] and again["n_samples"] == m["n_samples"]
    assert np.array_equal(np.load(tmp_path / "samples.npy"), np.load(out / "samples.npy"))
    again = digits.main(["--out", str(tmp_path), "inpaint", "--checkpoint", str(out)])
    assert again["inpaint_agreement_by_mask"] == m["inpaint_agreement_by_mask"]
    assert (tmp_path / "inpaint_metrics.json").exists() and (tmp_path / "inpaint_right.png").exists()


@pytest.mark.parametrize("flags, field", [(["--seed", "5"], "seed: 0 in the checkpoint, 5 now"),
                                          (["--size", "16"], "size: 8 in the checkpoint, 16 now")])
def test_resume_refuses_another_seed_or_model_and_writes_nothing(run, flags, field):
    out, _ = run
    before = {name: os.path.getmtime(out / name) for name in os.listdir(out)}
    with pytest.raises(SystemExit, match=f"checkpoint.npz: {field}"):
        digits.main(["--quick", "--out", str(out), "--resume", *flags])
    with pytest.raises(SystemExit, match=r"checkpoint.npz: channels: 8 in the checkpoint, 16 now"):
        digits.main(["--out", str(out), "--resume"])  # the full run's wider net
    assert {name: os.path.getmtime(out / name) for name in os.listdir(out)} == before


def test_resume_continues_and_appends_to_the_training_record(run, tmp_path):
    out, _ = run
    resumed_out = tmp_path / "resumed"
    shutil.copytree(out, resumed_out)
    m = digits.main(["--quick", "--out", str(resumed_out), "--resume", "--steps", "610"])
    record = losses(resumed_out)
    assert record[:600] == losses(out) and [step for step, _ in record[600:]] == list(range(601, 611))
    assert [(s["from_step"], s["to_step"]) for s in m["training"]] == [(0, 600), (600, 610)]
    assert m["train_steps"] == 10


@pytest.mark.parametrize("argv", [["--steps", "0"], ["sample", "--checkpoint", ".", "--n", "-3"],
                                  ["inpaint", "--checkpoint", ".", "--steps", "2.5"]])
def test_counts_on_the_command_line_are_checked(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        digits.main(argv)
    assert exit_info.value.code == 2 and "expected a positive integer" in capsys.readouterr().err


def test_a_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match=f"{tmp_path}/model.npz: cannot read the checkpoint"):
        digits.main(["sample", "--checkpoint", str(tmp_path), "--out", str(tmp_path)])


def test_help_is_complete_on_its_own(capsys):
    for argv in (["--help"], ["sample", "--help"], ["inpaint", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            digits.main(argv)
        assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for needed in ("sample --checkpoint", "inpaint --checkpoint", "--resume", "model.npz", "loss.csv",
                   "Langevin steps per noise level", "the --out folder of a training run"):
        assert needed in text
    assert "below" not in text and "comment" not in text and "source" not in text
