"""Data-parallel training: two CPU processes (gloo) under torchrun end with identical
weights although each trains on its own batches (with gradient accumulation too), rank 0
alone writes checkpoints, and a run that crashes on both ranks resumes to exactly the
weights of an uninterrupted one.

One torchrun launch does all four runs (torchrun and the imports cost seconds); the
first train() joins the process group and the others reuse it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import torch

from conftest import ROOT
from speechssl.train import checkpoint as ckpt

SCRIPT = """
import json, os, sys
sys.path.insert(0, {tests!r})
import torch
from speechssl.cli import setup_logging
from speechssl.train import checkpoint, distributed, trainer
from test_trainer import FakeData, SimulatedCrash, ToyMethod, toy_config

instances, saves = [], []
class Recorded(ToyMethod):
    def __init__(self, *args):
        super().__init__(*args)
        instances.append(self)
real_save = checkpoint.save_checkpoint
def counting_save(state, path):
    saves.append(str(path))
    real_save(state, path)
checkpoint.save_checkpoint = counting_save

def run(exp):
    trainer.train(toy_config(), "unused", exp, "cpu", method_cls=Recorded, data_cls=FakeData)

out = sys.argv[1]
rank = int(os.environ["RANK"])
setup_logging(f"rank{{rank}}")
run(f"{{out}}/straight")   # train() joins the process group; later runs reuse it
torch.save(instances[-1].state_dict(), f"{{out}}/weights.rank{{rank}}.pt")
with open(f"{{out}}/saves.rank{{rank}}.json", "w") as f:
    json.dump(saves, f)
Recorded.crash_at = 4
try:
    run(f"{{out}}/resumed")
except SimulatedCrash:
    print("crashed as planned", file=sys.stderr)
Recorded.crash_at = None
run(f"{{out}}/resumed")
accumulated = toy_config()
accumulated.optim.accumulate = 2
trainer.train(accumulated, "unused", f"{{out}}/accumulated", "cpu", method_cls=Recorded,
              data_cls=FakeData)
torch.save(instances[-1].state_dict(), f"{{out}}/accumulated.rank{{rank}}.pt")
distributed.leave_process_group()   # as bin/train_ssl ends
"""


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def test_two_processes_train_one_model_and_resume_exactly(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT / "ssl"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "torchrun"), "--standalone",
                           "--nproc-per-node", "2", str(script), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]

    exp = tmp_path / "straight"
    rank0, rank1 = _weights(tmp_path / "weights.rank0.pt"), _weights(tmp_path / "weights.rank1.pt")
    final = ckpt.load_checkpoint(exp / "final.pt")
    assert final["world_size"] == 2 and len(final["rng"]) == 2
    assert not torch.equal(final["rng"][0]["torch"], final["rng"][1]["torch"])
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), f"{name} differs between the ranks"
        assert torch.equal(value, final["model"][name]), f"{name} differs from final.pt"
    saves = [json.loads((tmp_path / f"saves.rank{r}.json").read_text()) for r in (0, 1)]
    assert saves[1] == [] and saves[0][-1] == str(exp / "final.pt")
    assert proc.stderr.count("Training done after 14 steps") == 2  # rank 0 only, 2 runs

    assert proc.stderr.count("crashed as planned") == 2
    assert "Resuming from step 3" in proc.stderr
    resumed = ckpt.load_checkpoint(tmp_path / "resumed" / "final.pt")["model"]
    for name, value in final["model"].items():
        assert torch.equal(value, resumed[name]), f"{name} differs after resuming"

    # Gradient accumulation: the ranks synchronise once per step, on the summed gradients.
    assert "Training done after 8 steps" in proc.stderr   # 7 batches a rank: 4 steps an epoch
    rank0, rank1 = (_weights(tmp_path / f"accumulated.rank{r}.pt") for r in (0, 1))
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), f"{name} differs between the ranks"
