"""--tta: exact shifted (and mirrored) views, averaged softmax in the final scores, recorded in
summary.json and shown by train and evaluate; identity views change nothing."""

import json

import torch
from synth import blobs

from mnistlab import TrainConfig, train
from mnistlab.cli import main
from mnistlab.runs import load_summary
from mnistlab.training import evaluate, evaluation
from mnistlab.training.evaluation import tta_view_count, tta_views

SHAPE = (1, 28, 28)  # an MNIST image: (C, H, W)
FAST = dict(model="mlp", hidden=(32,), val_size=200, eval_train_size=200, batch_size=50,
            epochs=1, seed=0, device="cpu")


def test_views_are_exact_one_pixel_shifts_and_a_mirror_only_when_asked():
    x = torch.zeros(2, 1, 9, 9, dtype=torch.uint8)
    x[:, :, 4, 6] = 200
    views = tta_views(x)
    assert len(views) == 5 and torch.equal(views[0], x)
    dots = [tuple(v[0, 0].nonzero()[0].tolist()) for v in views]
    assert dots == [(4, 6), (5, 6), (3, 6), (4, 7), (4, 5)]  # each moved by one pixel
    assert all(v.sum() == x.sum() and v.shape == x.shape for v in views)
    mirrored = tta_views(x, flip=True)
    assert len(mirrored) == 10
    assert all(torch.equal(m, v.flip(3)) for m, v in zip(mirrored[5:], views, strict=True))


def test_views_reach_as_far_as_training_cropped_up_to_two_pixels():
    x = torch.zeros(1, 1, 9, 9, dtype=torch.uint8)
    x[:, :, 4, 4] = 200
    views = tta_views(x, shifts=(1, 2))
    dots = [tuple(v[0, 0].nonzero()[0].tolist()) for v in views]
    assert dots == [(4, 4), (5, 4), (3, 4), (4, 5), (4, 3), (6, 4), (2, 4), (4, 6), (4, 2)]
    fashion = dict(dataset="fashion-mnist")
    assert tta_view_count(TrainConfig(), SHAPE) == 5  # digits: 1-pixel moves, never mirrored
    assert tta_view_count(TrainConfig(augment="crop=2"), SHAPE) == 9
    assert tta_view_count(TrainConfig(**fashion, augment="flip=0.5"), SHAPE) == 10
    assert tta_view_count(TrainConfig(**fashion, augment="crop=2,flip=0.5"), SHAPE) == 18
    assert tta_view_count(TrainConfig(**fashion, augment="crop=4,flip=0.5"), SHAPE) == 18  # capped


def test_views_reach_as_far_as_training_shifted_in_whole_pixels():
    # shift is a fraction of the side: 0.1 of 28 pixels moves digits up to 2.8 pixels, so the
    # views reach 2; 0.05 (1.4 pixels) and the same 0.1 of a 14-pixel image stay at 1
    mnist_best = TrainConfig(augment="rotate=10,scale=0.1,shift=0.1")
    assert tta_view_count(mnist_best, SHAPE) == 9
    assert tta_view_count(TrainConfig(augment="shift=0.05"), SHAPE) == 5
    assert tta_view_count(mnist_best, (1, 14, 14)) == 5
    assert tta_view_count(TrainConfig(augment="shift=0.3"), SHAPE) == 9  # capped at 2 pixels
    assert tta_view_count(TrainConfig(augment="rotate=10,scale=0.1"), SHAPE) == 5  # no move
    x = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    x[:, :, 14, 14] = 200
    dots = [tuple(v[0, 0].nonzero()[0].tolist()) for v in evaluation.config_views(x, mnist_best)]
    assert dots == [(14, 14), (15, 14), (13, 14), (14, 15), (14, 13),
                    (16, 14), (12, 14), (14, 16), (14, 12)]


def test_identity_views_change_nothing(monkeypatch):
    data = blobs(n_train=300, n_test=200)
    config = TrainConfig(**FAST)
    model = train(config, dataset=data).model
    x, y = data.test_images.unsqueeze(1), data.test_labels
    plain = evaluate(model, x, y, config, data.mean, data.std, 10)
    monkeypatch.setattr(evaluation, "tta_views", lambda images, **_: [images] * 5)
    same = evaluate(model, x, y, config, data.mean, data.std, 10, tta=True)
    assert same.accuracy == plain.accuracy
    assert torch.equal(same.predictions, plain.predictions)
    assert abs(same.loss - plain.loss) < 1e-5


def test_the_summary_records_tta_and_its_scores_are_the_averaged_ones(tmp_path):
    data = blobs()
    result = train(TrainConfig(**FAST, tta=True), dataset=data, out=tmp_path / "run")
    stored = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert stored["tta_views"] == 5 and load_summary(tmp_path / "run").tta_views == 5
    x, y = data.test_images.unsqueeze(1), data.test_labels
    config = result.config
    with_tta = evaluate(result.model, x, y, config, data.mean, data.std, 10, tta=True)
    assert result.summary.test_accuracy == with_tta.accuracy
    plain = train(TrainConfig(**FAST), dataset=data)
    assert "tta_views" not in plain.summary.to_dict()
    # the epochs are scored without TTA: the same records as a run without it
    assert [r.replace(seconds=0) for r in plain.history] == [
        r.replace(seconds=0) for r in result.history]


def test_train_and_evaluate_say_so(tmp_path, tiny_idx_dir, capsys):
    out = tmp_path / "run"
    args = ["train", "--dataset", str(tiny_idx_dir), "--model", "mlp", "--epochs", "1",
            "--val-size", "100", "--device", "cpu"]
    assert main([*args, "--tta", "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert "test-time augmentation: 5 views" in " ".join(said.out.split())
    # the quiet minute of scoring after the bar is said before it starts
    assert "scoring validation and test with 5 test-time views (the epochs' scores above were " \
           "without the views) ..." in " ".join(said.err.split())
    assert main([*args, "--ensemble", "2", "--out", str(tmp_path / "two")]) == 0
    # the epochs scored the ensemble already: it said they were "without"
    said = " ".join(capsys.readouterr().err.split())
    assert "scoring validation and test with 2 members (each member is scored alone too; the " \
           "epochs' scores above are the ensemble's) ..." in said
    # both: the ensemble's scores said once, not two clauses that repeat it (hunt)
    assert main([*args, "--ensemble", "2", "--tta", "--out", str(tmp_path / "both")]) == 0
    assert "(the epochs' scores above are the ensemble's, without the views; each member is " \
           "scored alone too) ..." in " ".join(capsys.readouterr().err.split())
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert "scoring" not in capsys.readouterr().err  # a second's pass: nothing to say
    assert main(["evaluate", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tta_views"] == 5
    assert main(["evaluate", str(out), "--json", "--no-tta"]) == 0
    assert json.loads(capsys.readouterr().out)["tta_views"] is None
    assert main(["evaluate", str(out)]) == 0
    assert "test-time augmentation over 5 views" in " ".join(capsys.readouterr().out.split())
