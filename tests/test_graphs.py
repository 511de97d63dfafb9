"""CUDA graphs of the training step (training/graphs.py): a graphed step trains as the eager one
(the same losses, weights and batch-norm statistics, for each batch shape of an epoch, dropout
masks included); elsewhere nothing is recorded.

Without a GPU the recording is stood in for (`graphs_on_cpu`): a stand-in "graph" runs the
recorded pass again at each replay and writes into the tensors the recording returned, as a CUDA
graph does. That tests everything around the graph (shapes, restored buffers, forked random
streams, gradients pointed back, the fallback) on a CPU, exactly. The CUDA tests record real
graphs on a GPU machine (`pytest tests/test_graphs.py` there) and are skipped without one."""

import gc
import weakref

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
# dropout, a moving average, one-cycle and label smoothing: what the recipes train with
RECIPE_LIKE = dict(CONV, dropout=0.3, ema=0.9, schedule="onecycle", label_smoothing=0.1)
MLP = dict(model="mlp", hidden=(32, 16), dropout=0.0, optimizer="sgd", momentum=0.9, lr=0.05,
           schedule="constant", val_size=200, eval_train_size=200, batch_size=50, epochs=1)
# two shapes of an epoch (full batches and the last one), then a third that runs eagerly
# between two replays of the same graph
SIZES = (50, 50, 30, 50, 30, 50, 20, 50)


class _ReplayOnCpu:
    """A CUDA graph's stand-in: replay runs the pass again on the graph's own inputs and writes
    the results into the outputs and gradients the recording returned."""

    def __init__(self, step, compute, x, y, outputs):
        self.step, self.compute, self.x, self.y, self.outputs = step, compute, x, y, outputs
        self.grads = [p.grad for p in step.params]

    def replay(self):
        pointed = [p.grad for p in self.step.params]  # a replay leaves .grad where it was
        self.step.module.zero_grad(set_to_none=True)
        fresh = self.compute(self.x, self.y)
        for out, new in zip(self.outputs, fresh):
            if out is not None:
                out.copy_(new)
        for grad, param, before in zip(self.grads, self.step.params, pointed):
            grad.copy_(param.grad)
            param.grad = before


def _capture_on_cpu(self, compute, x, y):
    with torch.random.fork_rng(devices=[]):  # recording draws nothing: a replay does
        outputs = compute(x, y)
    return _ReplayOnCpu(self, compute, x, y, outputs), outputs


@pytest.fixture
def graphs_on_cpu(monkeypatch):
    monkeypatch.setattr(graphs.GraphedStep, "device_type", "cpu")
    monkeypatch.setattr(graphs.GraphedStep, "_warm_up", lambda self, compute, x, y: [
        self._eager(compute, x, y) for _ in range(graphs.WARMUP)])
    monkeypatch.setattr(graphs.GraphedStep, "_capture", _capture_on_cpu)


def test_graphs_are_for_cuda_only_and_can_be_turned_off(monkeypatch):
    monkeypatch.delenv(graphs.ENV, raising=False)
    assert graphs.graphs_wanted(torch.device("cuda"))
    assert not graphs.graphs_wanted(torch.device("cpu"))
    assert not graphs.graphs_wanted(torch.device("mps"))
    monkeypatch.setenv(graphs.ENV, "0")
    assert not graphs.graphs_wanted(torch.device("cuda"))


def _linear_compute(net):
    def compute(x, y):
        loss = ((net(x).squeeze(1) - y) ** 2).mean()
        loss.backward()
        return (loss.detach(),)
    return compute


def test_on_a_cpu_a_step_zeroes_the_gradients_and_computes_eagerly():
    net = torch.nn.Linear(4, 1)
    step = graphs.GraphedStep(net, enabled=True)  # enabled, but x is not on a GPU
    x, y = torch.randn(5, 4), torch.randn(5)
    first = step(_linear_compute(net), x, y)[0]
    grad = net.weight.grad.clone()
    assert torch.equal(step(_linear_compute(net), x, y)[0], first)
    assert torch.equal(net.weight.grad, grad)  # zeroed before each pass, not accumulated
    assert step.recorded == {}
    config = TrainConfig(device="cpu", **CONV)
    learner = ModelLearner(config, prepare_data(config, blobs(300, 100), torch.device("cpu")),
                           torch.device("cpu"))
    assert not learner.graphed.enabled


def test_a_learner_is_freed_when_dropped_not_kept_by_its_graphs():
    config = TrainConfig(device="cpu", **CONV)
    splits = prepare_data(config, blobs(300, 100), torch.device("cpu"))
    gc.disable()
    try:
        learners = [ModelLearner(config, splits, torch.device("cpu")),
                    CohortLearner([TrainConfig(device="cpu", **MLP)], splits, torch.device("cpu"))]
        refs = [weakref.ref(learner) for learner in learners]
        del learners
        assert [ref() for ref in refs] == [None, None]  # no reference cycle holds them
    finally:
        gc.enable()


def _batches(splits, config):
    start = 0
    for size in SIZES:
        idx = torch.arange(start, start + size, device=splits.train_y.device)
        start += size
        yield to_input(splits.train_x[idx], config, splits.mean, splits.std), splits.train_y[idx]


def _train_twice(make_learner, batches):
    """The same steps with graphs and eagerly: each one's per-step losses and its learner."""
    results = []
    for enabled in (True, False):
        learner = make_learner()  # seeds the random streams: both runs draw the same masks
        learner.graphed.enabled = enabled
        losses = [learner.step(x, y)[0].clone() for x, y in batches]
        results.append((torch.stack(losses), learner))
    return results


def _assert_same(graphed, eager, tolerance):
    (graphed_losses, graphed_learner), (eager_losses, eager_learner) = graphed, eager
    assert torch.allclose(graphed_losses, eager_losses, rtol=tolerance, atol=tolerance)
    assert len(graphed_learner.graphed.recorded) == graphs.MAX_SHAPES  # the third: eager
    assert eager_learner.graphed.recorded == {}
    # weights, batch-norm statistics and step counts, optimizer moments, the moving average
    pairs = list(zip(_tensors(graphed_learner.state_dict()), _tensors(eager_learner.state_dict())))
    assert pairs and all(name_a == name_b for (name_a, _), (name_b, _) in pairs)
    for (name, a), (_, b) in pairs:
        if a.is_floating_point():
            assert torch.allclose(a, b, rtol=tolerance, atol=tolerance), name
        else:
            assert torch.equal(a, b), name  # batch norm's step count: one per step, as eagerly


def _tensors(state, name=""):
    """(path, tensor) for every tensor in a nested state dict."""
    if isinstance(state, torch.Tensor):
        yield name, state
    elif isinstance(state, dict):
        for key, value in state.items():
            yield from _tensors(value, f"{name}/{key}")
    elif isinstance(state, (list, tuple)):
        for index, value in enumerate(state):
            yield from _tensors(value, f"{name}/{index}")


def _learner_pair(settings, device, precision="fp32"):
    config = TrainConfig(device=device, precision=precision, **settings)
    splits = prepare_data(config, blobs(600, 100), torch.device(device))
    return _train_twice(lambda: ModelLearner(config, splits, torch.device(device)),
                        list(_batches(splits, config)))


@pytest.mark.parametrize("settings", [CONV, RECIPE_LIKE, MLP, dict(MLP, dropout=0.4)])
def test_around_the_graph_a_step_trains_exactly_as_the_eager_one(settings, graphs_on_cpu):
    graphed, eager = _learner_pair(settings, "cpu")
    _assert_same(graphed, eager, 0.0)
    if settings.get("ema"):
        for a, b in zip(graphed[1].average.module.state_dict().values(),
                        eager[1].average.module.state_dict().values()):
            assert torch.equal(a, b)


def test_around_the_graph_a_cohort_trains_exactly_as_the_eager_one(graphs_on_cpu):
    configs = [TrainConfig(device="cpu", seed=s, **{**MLP, "lr": lr, "dropout": d})
               for s, lr, d in ((0, 0.05, 0.0), (1, 0.02, 0.3), (2, 0.1, 0.5))]
    splits = prepare_data(configs[0], blobs(600, 100), torch.device("cpu"))
    graphed, eager = _train_twice(lambda: CohortLearner(configs, splits, torch.device("cpu")),
                                  list(_batches(splits, configs[0])))
    _assert_same(graphed, eager, 0.0)


def test_a_pass_that_cannot_be_recorded_trains_eagerly_with_one_warning(graphs_on_cpu,
                                                                       monkeypatch):
    def second_fails(self, compute, x, y):  # the first shape records, the second cannot
        if self.recorded:
            raise RuntimeError("operation not permitted when stream is capturing")
        return _capture_on_cpu(self, compute, x, y)

    monkeypatch.setattr(graphs.GraphedStep, "_capture", second_fails)
    net = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.BatchNorm1d(1))
    step = graphs.GraphedStep(net, enabled=True)
    step(_linear_compute(net), torch.randn(6, 4), torch.randn(6))
    assert len(step.recorded) == 1
    x, y = torch.randn(5, 4), torch.randn(5)
    with pytest.warns(RuntimeWarning, match="could not be recorded"):
        loss = step(_linear_compute(net), x, y)[0]
    assert not step.enabled and step.recorded == {}  # the first shape's graph is freed too
    assert net[1].num_batches_tracked.item() == 2  # the warm-ups' batches were taken back
    assert torch.isfinite(loss) and net[0].weight.grad is not None
    step(_linear_compute(net), torch.randn(6, 4), torch.randn(6))  # eagerly from now on
    assert step.recorded == {} and net[1].num_batches_tracked.item() == 3


def test_the_warning_names_the_first_error_not_the_failed_capture_s_end(graphs_on_cpu,
                                                                        monkeypatch):
    def fail(self, compute, x, y):
        try:
            raise RuntimeError("operation not permitted when stream is capturing")
        except RuntimeError:
            raise RuntimeError("the capture was invalidated")  # noqa: B904 - as torch does

    monkeypatch.setattr(graphs.GraphedStep, "_capture", fail)
    net = torch.nn.Linear(4, 1)
    with pytest.warns(RuntimeWarning, match="not permitted when stream is capturing"):
        graphs.GraphedStep(net, enabled=True)(_linear_compute(net), torch.randn(5, 4),
                                              torch.randn(5))


@pytest.mark.parametrize("settings", [dict(RECIPE_LIKE, epochs=2, augment="shift=0.1"),
                                      dict(MLP, epochs=2, dropout=0.3)])
def test_a_whole_run_around_the_graph_is_the_eager_run_and_says_so(settings, graphs_on_cpu,
                                                                   monkeypatch, tmp_path):
    from mnistlab.training import single

    config, data = TrainConfig(device="cpu", **settings), blobs(650, 100)
    eager = train(config, dataset=data, write_plots=False).summary
    monkeypatch.setattr(single, "graphs_wanted", lambda device: True)
    graphed = train(config, dataset=data, out=tmp_path / "run", write_plots=False).summary
    assert eager.cuda_graphs is None and graphed.cuda_graphs is True
    assert '"cuda_graphs": true' in (tmp_path / "run" / "summary.json").read_text()
    for field in ("train_loss", "val_accuracy", "val_loss", "test_accuracy", "loss_trace"):
        assert getattr(graphed, field) == getattr(eager, field), field


def test_a_cohort_run_around_the_graph_says_so(graphs_on_cpu, monkeypatch):
    from mnistlab.training import cohort

    configs = [TrainConfig(device="cpu", seed=s, **MLP) for s in (0, 1)]
    splits = prepare_data(configs[0], blobs(600, 100), torch.device("cpu"))
    monkeypatch.setattr(cohort, "graphs_wanted", lambda device: True)
    results = cohort.train_cohort(configs, splits=splits, outs=[None, None], tests=[True, True])
    assert [r.summary.cuda_graphs for r in results] == [True, True]


def test_a_failed_recording_is_in_the_summary(graphs_on_cpu, monkeypatch):
    from mnistlab.training import single

    def fail(self, compute, x, y):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(graphs.GraphedStep, "_capture", fail)
    monkeypatch.setattr(single, "graphs_wanted", lambda device: True)
    with pytest.warns(RuntimeWarning, match="could not be recorded"):
        summary = train(TrainConfig(device="cpu", **MLP), dataset=blobs(600, 100),
                        write_plots=False).summary
    assert summary.cuda_graphs is False and summary.test_accuracy is not None


@cuda
@pytest.mark.parametrize("settings, precision, tolerance",
                         [(CONV, "fp32", 1e-4), (CONV, "bf16", 2e-2), (MLP, "fp32", 1e-5),
                          (RECIPE_LIKE, "fp32", 1e-4)])
def test_a_graphed_step_trains_as_the_eager_one(settings, precision, tolerance):
    graphed, eager = _learner_pair(settings, "cuda", precision)
    torch.cuda.synchronize()
    _assert_same(graphed, eager, tolerance)


@cuda
def test_an_ensemble_whose_members_draw_their_own_images_graphs_its_copies():
    config = TrainConfig(device="cuda", ensemble=3, augment="shift=0.1", **CONV)
    splits = prepare_data(config, blobs(600, 100), torch.device("cuda"))
    batches = [(torch.cat([x] * 3, dim=1), y) for x, y in _batches(splits, config)]

    def make():
        learner = ModelLearner(config, splits, torch.device("cuda"))
        assert learner.input_copies == 3
        return learner

    _assert_same(*_train_twice(make, batches), 1e-4)


@cuda
def test_a_cohort_graphs_its_stacked_pass():
    configs = [TrainConfig(device="cuda", seed=s, **{**MLP, "lr": lr})
               for s, lr in ((0, 0.05), (1, 0.02), (2, 0.1))]
    splits = prepare_data(configs[0], blobs(600, 100), torch.device("cuda"))
    graphed, eager = _train_twice(lambda: CohortLearner(configs, splits, torch.device("cuda")),
                                  list(_batches(splits, configs[0])))
    _assert_same(graphed, eager, 1e-5)


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
def test_a_pass_that_waits_for_the_gpu_trains_eagerly_with_one_warning():
    net = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(4, 1)).cuda()

    def compute(x, y):
        loss = ((net(x).squeeze(1) - y) ** 2).mean()  # dropout: a random draw
        loss.backward()
        if loss.item() < 0:  # waits for the GPU: not allowed while recording
            raise AssertionError
        return (loss.detach(),)

    step = graphs.GraphedStep(net, enabled=True)
    x, y = torch.randn(5, 4, device="cuda"), torch.randn(5, device="cuda")
    with pytest.warns(RuntimeWarning, match="could not be recorded"):
        loss = step(compute, x, y)[0]
    assert not step.enabled and step.recorded == {} and torch.isfinite(loss)
    # and on, eagerly, without a warning: random draws still work after the failed capture
    # (before torch 2.13 they fail unless the generator's capture mark is cleared)
    assert all(torch.isfinite(step(compute, x, y)[0]) for _ in range(2))
    assert torch.rand(1, device="cuda").item() < 1


@pytest.mark.parametrize("replayed, said", [(True, "CUDA graphs"),
                                            (False, "CUDA graphs failed: eager steps"),
                                            (None, None)])
def test_the_summary_table_says_how_the_steps_ran(replayed, said, capsys):
    from mnistlab.cli.common import print_summary
    from mnistlab.records import RunSummary

    summary = RunSummary(status="completed", dataset="mnist", model="cnn", parameters=10,
                         epochs=1, epochs_planned=1, seconds=1.0, cuda_graphs=replayed)
    print_summary(summary, None)
    out = " ".join(capsys.readouterr().out.split())
    assert ("CUDA graphs" in out) == (said is not None)
    assert said is None or said in out


@pytest.mark.parametrize("value, ok", [(True, True), (False, True), (None, True), ([1], False),
                                       ("yes", False), (1, False)])
def test_a_summary_s_cuda_graphs_is_read_back_checked(value, ok, tmp_path):
    import json

    from mnistlab.errors import MnistlabError
    from mnistlab.runs import load_summary

    (tmp_path / "summary.json").write_text(json.dumps({"status": "completed",
                                                       "cuda_graphs": value}))
    if ok:
        assert load_summary(tmp_path).cuda_graphs is value
    else:
        with pytest.raises(MnistlabError, match="cuda_graphs is not true, false or null"):
            load_summary(tmp_path)
