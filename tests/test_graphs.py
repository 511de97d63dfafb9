"""CUDA graphs of the training step's network pass (training/graphs.py): on a GPU a graphed step
trains exactly as the eager one (the same losses, weights and batch-norm statistics, for each
batch shape of an epoch); elsewhere nothing is recorded. The CUDA tests run on a GPU machine
(`pytest tests/test_graphs.py` there) and are skipped without one."""

import pytest
import torch
from synth import blobs

from mnistlab import TrainConfig, train
from mnistlab.data.tensors import prepare_data, to_input
from mnistlab.training import graphs
from mnistlab.training.cohort import CohortLearner
from mnistlab.training.single import ModelLearner

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CONV = dict(model="cnn", filters=(4, 8), dense=(16,), batchnorm=True, dropout=0.0,
            optimizer="adam", lr=0.003, val_size=200, eval_train_size=200, batch_size=50,
            epochs=1, seed=0)
MLP = dict(model="mlp", hidden=(32, 16), dropout=0.0, optimizer="sgd", momentum=0.9, lr=0.05,
           schedule="constant", val_size=200, eval_train_size=200, batch_size=50, epochs=1)
# two shapes of an epoch (full batches and the last one), then a third that runs eagerly
SIZES = (50, 50, 30, 50, 30, 20, 50)


def test_graphs_are_for_cuda_only_and_can_be_turned_off(monkeypatch):
    monkeypatch.delenv(graphs.ENV, raising=False)
    assert graphs.graphs_wanted(torch.device("cuda"))
    assert not graphs.graphs_wanted(torch.device("cpu"))
    assert not graphs.graphs_wanted(torch.device("mps"))
    monkeypatch.setenv(graphs.ENV, "0")
    assert not graphs.graphs_wanted(torch.device("cuda"))


def test_on_a_cpu_a_step_zeroes_the_gradients_and_computes_eagerly():
    net = torch.nn.Linear(4, 1)

    def compute(x, y):
        loss = ((net(x).squeeze(1) - y) ** 2).mean()
        loss.backward()
        return (loss.detach(),)

    step = graphs.GraphedStep(compute, net, enabled=True)  # enabled, but x is not on a GPU
    x, y = torch.randn(5, 4), torch.randn(5)
    first = step(x, y)[0]
    grad = net.weight.grad.clone()
    assert torch.equal(step(x, y)[0], first)
    assert torch.equal(net.weight.grad, grad)  # zeroed before each pass, not accumulated
    assert step.recorded == {}
    config = TrainConfig(device="cpu", **CONV)
    learner = ModelLearner(config, prepare_data(config, blobs(300, 100), torch.device("cpu")),
                           torch.device("cpu"))
    assert not learner.graphed.enabled


def _batches(splits, config):
    start = 0
    for size in SIZES:
        idx = torch.arange(start, start + size, device=splits.train_y.device)
        start += size
        yield to_input(splits.train_x[idx], config, splits.mean, splits.std), splits.train_y[idx]


def _train_twice(make_learner, config, splits):
    """The same steps with graphs and eagerly: each one's per-step losses and its learner."""
    results = []
    for enabled in (True, False):
        learner = make_learner()
        learner.graphed.enabled = enabled
        losses = [learner.step(x, y)[0].clone() for x, y in _batches(splits, config)]
        torch.cuda.synchronize()
        results.append((torch.stack(losses), learner))
    return results


def _assert_same_state(graphed, eager, tolerance):
    for (name, a), b in zip(graphed.state_dict().items(), eager.state_dict().values()):
        if a.is_floating_point():
            assert torch.allclose(a, b, rtol=tolerance, atol=tolerance), name
        else:
            assert torch.equal(a, b), name  # batch norm's step count: one per step, as eagerly


@cuda
@pytest.mark.parametrize("settings, precision, tolerance",
                         [(CONV, "fp32", 1e-4), (CONV, "bf16", 2e-2), (MLP, "fp32", 1e-5)])
def test_a_graphed_step_trains_as_the_eager_one(settings, precision, tolerance):
    config = TrainConfig(device="cuda", precision=precision, **settings)
    splits = prepare_data(config, blobs(600, 100), torch.device("cuda"))
    graphed, eager = _train_twice(
        lambda: ModelLearner(config, splits, torch.device("cuda")), config, splits)
    assert torch.allclose(graphed[0], eager[0], rtol=tolerance, atol=tolerance)
    _assert_same_state(graphed[1].model, eager[1].model, tolerance)
    assert len(graphed[1].graphed.recorded) == graphs.MAX_SHAPES  # the third shape: eager
    assert eager[1].graphed.recorded == {}


@cuda
def test_an_ensemble_whose_members_draw_their_own_images_graphs_its_copies():
    config = TrainConfig(device="cuda", ensemble=3, augment="shift=0.1", **CONV)
    splits = prepare_data(config, blobs(600, 100), torch.device("cuda"))

    def make():
        learner = ModelLearner(config, splits, torch.device("cuda"))
        assert learner.input_copies == 3
        return learner

    torch.manual_seed(1)  # both runs see the same augmented copies: made once, here
    batches = [(torch.cat([x] * 3, dim=1), y) for x, y in _batches(splits, config)]
    results = []
    for enabled in (True, False):
        learner = make()
        learner.graphed.enabled = enabled
        results.append((torch.stack([learner.step(x, y)[0].clone() for x, y in batches]), learner))
    (graphed_losses, graphed), (eager_losses, eager) = results
    assert torch.allclose(graphed_losses, eager_losses, rtol=1e-4, atol=1e-4)
    _assert_same_state(graphed.model, eager.model, 1e-4)


@cuda
def test_a_cohort_graphs_its_stacked_pass():
    configs = [TrainConfig(device="cuda", seed=s, **{**MLP, "lr": lr})
               for s, lr in ((0, 0.05), (1, 0.02), (2, 0.1))]
    splits = prepare_data(configs[0], blobs(600, 100), torch.device("cuda"))
    graphed, eager = _train_twice(
        lambda: CohortLearner(configs, splits, torch.device("cuda")), configs[0], splits)
    assert torch.allclose(graphed[0], eager[0], rtol=1e-5, atol=1e-5)
    _assert_same_state(graphed[1].model, eager[1].model, 1e-5)


@cuda
def test_a_run_trained_with_graphs_scores_and_saves_like_an_eager_one(tmp_path, monkeypatch):
    config = TrainConfig(device="cuda", **{**CONV, "epochs": 2, "dropout": 0.3})
    data = blobs(600, 200)
    result = train(config, dataset=data, out=tmp_path / "run", write_plots=False)
    assert result.summary.test_accuracy > 0.5  # it learned (10 classes)
    assert (tmp_path / "run" / "model.pt").is_file()
    monkeypatch.setenv(graphs.ENV, "0")
    eager = train(config, dataset=data, write_plots=False)
    assert abs(eager.summary.test_accuracy - result.summary.test_accuracy) < 0.05


@cuda
def test_a_pass_that_cannot_be_recorded_trains_eagerly_with_one_warning():
    net = torch.nn.Linear(4, 1).cuda()

    def compute(x, y):
        loss = ((net(x).squeeze(1) - y) ** 2).mean()
        loss.backward()
        if loss.item() < 0:  # waits for the GPU: not allowed while recording
            raise AssertionError
        return (loss.detach(),)

    step = graphs.GraphedStep(compute, net, enabled=True)
    x, y = torch.randn(5, 4, device="cuda"), torch.randn(5, device="cuda")
    with pytest.warns(RuntimeWarning, match="could not be recorded"):
        loss = step(x, y)[0]
    assert not step.enabled and step.recorded == {}
    assert torch.allclose(loss, ((net(x).squeeze(1) - y) ** 2).mean())
    assert torch.allclose(step(x, y)[0], loss)  # and on, eagerly, without another warning
