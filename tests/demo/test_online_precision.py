"""The online loop runs every network step in the predictor's precision context (the demo's
--precision / MODEL.INFERENCE_PRECISION) and writes outside it. Runs without detectron2."""

import contextlib

import torch

from tests.demo.test_online import _frames, _Predictor, _run
from tests.data.test_live import FakeCapture


def test_each_step_runs_inside_the_context_and_hands_on_outside():
    from video_mask2former.demo.online import _each_step_within

    state = {"inside": False, "entered": 0}

    @contextlib.contextmanager
    def context():
        state["inside"], state["entered"] = True, state["entered"] + 1
        yield
        state["inside"] = False

    def steps():
        for index in range(3):
            assert state["inside"]
            yield index

    seen = []
    for item in _each_step_within(context, steps()):
        assert not state["inside"]
        seen.append(item)
    assert seen == [0, 1, 2] and state["entered"] == 4  # the last entry finds the end


def test_online_windows_run_in_the_predictors_precision(monkeypatch, tmp_path):
    from video_mask2former.demo import online

    dtypes = []

    class BF16Predictor(_Predictor):
        def __init__(self):
            super().__init__()
            self.model.allow_slow_low_precision = True  # bf16 even where the CPU emulates it
            predict = self.model.predict

            def recording(*args, **kwargs):
                outputs = predict(*args, **kwargs)
                dtypes.append(outputs["pred_masks"].dtype)
                return outputs

            self.model.predict = recording

        def precision_context(self):
            return torch.autocast("cpu", dtype=torch.bfloat16)

    monkeypatch.setattr(
        online, "run_online", _with_predictor(online.run_online, BF16Predictor), raising=True
    )
    status, lines, _ = _run(online, monkeypatch, FakeCapture(_frames(4)), tmp_path)
    assert status == 0 and len(lines) == 4
    assert dtypes == [torch.bfloat16, torch.bfloat16]  # two windows of 2 frames


def _with_predictor(run_online, predictor_class):
    def run(args, cfg, make_predictor, categories, video_id=None):
        return run_online(args, cfg, lambda cfg: predictor_class(), categories, video_id)

    return run
