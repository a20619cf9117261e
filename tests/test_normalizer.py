"""RunningNorm against running_norm.npz (conformance README section 6) and its own definition."""

from pathlib import Path

import numpy as np
import pytest
import torch

from kinesis_training.normalizer import RunningNorm

DATA = Path(__file__).parent / "data" / "conformance"


@pytest.fixture(scope="module")
def ref():
    return np.load(DATA / "running_norm.npz")


def test_updates_reproduce_reference(ref):
    norm = RunningNorm(309).train()
    for i in range(4):
        norm(torch.from_numpy(ref[f"batch{i}"]))
        assert int(norm.n) == ref["n"][i]
        np.testing.assert_allclose(norm.mean.numpy(), ref["mean"][i], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(norm.var.numpy(), ref["var"][i], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(norm.std.numpy(), ref["std"][i], rtol=1e-5, atol=1e-7)
    norm.eval()
    out = norm(torch.from_numpy(ref["probe_obs"])).numpy()
    np.testing.assert_allclose(out, ref["probe_out"], atol=1e-5)
    assert int(norm.n) == 172  # evaluation mode does not update


def test_merged_statistics_equal_whole_data_statistics(ref):
    """The parallel update must give the float64 mean and biased variance of all rows seen."""
    norm = RunningNorm(309).train()
    batches = [ref[f"batch{i}"] for i in range(4)]
    for batch in batches:
        norm(torch.from_numpy(batch))
    rows = np.concatenate(batches).astype(np.float64)
    np.testing.assert_allclose(norm.mean.numpy(), rows.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(norm.var.numpy(), rows.var(0), rtol=1e-4, atol=1e-5)


def test_empty_normalizer_is_identity_and_output_is_clipped():
    norm = RunningNorm(3).eval()
    x = torch.tensor([[1.0, -200.0, 3.0]])
    assert torch.equal(norm(x), x)
    norm.update(torch.tensor([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]]))  # mean 1, std 1
    np.testing.assert_allclose(norm(x).numpy(), [[0.0, -5.0, 2.0]], atol=1e-6)
    assert norm.state_dict()["n"].dtype == torch.int64
    assert list(norm.state_dict()) == ["n", "mean", "var", "std"]
