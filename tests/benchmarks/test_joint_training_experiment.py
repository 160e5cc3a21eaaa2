"""benchmarks/joint_training_experiment.py: reading a run's final AP and the table of the runs."""

import json

from benchmarks import joint_training_experiment as tool


def test_experiment_reads_the_final_ap_and_tabulates(tmp_path):
    rows = [{"iteration": 9, "total_loss": 1.0}, {"iteration": 9, "segm/AP": 42.5}]
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(r) for r in rows))
    assert tool.final_ap(str(tmp_path)) == 42.5
    assert tool.final_ap(str(tmp_path / "missing")) is None
    table = tool.summarize({"videos": {0: 40.0, 1: 44.0}, "joint": {0: 50.0, 1: None}})
    assert "42.0 ± 2.8" in table and "50.0 ± 0.0" in table and "40.0, 44.0" in table
