"""The opt-in fast paths: bfloat16 autocast and torch.compile; with both off nothing changes."""
import pytest
import torch

from model.frd import FRDUVAD, ModelConfig
from utils.device import autocast

CPU = torch.device("cpu")


def step_outputs(model: FRDUVAD, x: torch.Tensor, amp: str = "off", seed: int = 0) -> tuple:
    torch.manual_seed(seed)
    with autocast(CPU, amp):
        out = model.training_step(x)
    out.loss.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    return out, grads


def tiny_model(seed: int = 0, **kwargs) -> FRDUVAD:
    torch.manual_seed(seed)
    return FRDUVAD(ModelConfig(256, 4, 2, lab=True, bank_capacity=4, **kwargs)).train()


@pytest.mark.parametrize("amp,dtype", [("off", torch.float32), ("bf16", torch.bfloat16)])
def test_amp_sets_the_networks_precision_and_the_losses_stay_float32(amp, dtype):
    model = tiny_model()
    seen = {}

    def record(name: str):
        def hook(module, args, output) -> None:
            seen[name] = output.dtype
        return hook

    model.decoder.decoder_embed.register_forward_hook(record("reconstructor"))
    model.scorer.fc1.register_forward_hook(record("scorer"))
    out, grads = step_outputs(model, torch.rand(8, 3, 4, 256), amp)
    assert seen == {"reconstructor": dtype, "scorer": dtype}
    for name in ("loss", "Lre", "Ldi", "Ls", "lossr", "threshold", "scores"):
        assert getattr(out, name).dtype == torch.float32, name
    assert all(g.dtype == torch.float32 for g in grads)


def test_bf16_autocast_step_keeps_float32_losses_close_to_float32():
    x = torch.rand(8, 3, 4, 256)
    exact, exact_grads = step_outputs(tiny_model(), x, "off")
    half, half_grads = step_outputs(tiny_model(), x, "bf16")
    for name in ("loss", "Lre", "Ls", "lossr", "scores", "threshold"):
        value = getattr(half, name)
        assert value.dtype == torch.float32, name
        torch.testing.assert_close(value, getattr(exact, name), rtol=5e-2, atol=5e-3)
    assert all(g.dtype == torch.float32 for g in half_grads)
    cos = torch.nn.functional.cosine_similarity(torch.cat([g.flatten() for g in half_grads]),
                                                torch.cat([g.flatten() for g in exact_grads]), dim=0)
    assert cos > 0.95


def test_compiled_networks_match_eager_and_keep_the_release_keys():
    x = torch.rand(4, 2, 4, 256)
    eager = tiny_model(aux="none").eval()
    compiled = tiny_model(aux="none").eval()
    keys = list(compiled.state_dict())
    compiled.decoder.compile()
    compiled.scorer.compile()
    assert list(compiled.state_dict()) == keys
    with torch.no_grad():
        torch.testing.assert_close(compiled.reconstruct(x), eager.reconstruct(x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(compiled.score(x[:, :, 0]), eager.score(x[:, :, 0]), rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_step_matches_cpu():
    x = torch.rand(8, 3, 4, 256)
    cpu_model = tiny_model(aux="none").eval()
    gpu_model = tiny_model(aux="none").eval().cuda()
    cpu_out = cpu_model.training_step(x)
    gpu_out = gpu_model.training_step(x.cuda())
    torch.testing.assert_close(gpu_out.loss.cpu(), cpu_out.loss, rtol=1e-4, atol=1e-5)
