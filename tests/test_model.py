"""Model unit tests: configurations, cascade attention against a naive loop, gradients, bank, the training step
against the algorithm written out, where the batch statistics come from."""
import ast
import math

import pytest
import torch

from model.attention import CascadeCrossAttention, SelfAttention
from model.bank import LatentAnomalyBank
from conftest import ROOT
from model.frd import FRDUVAD, BatchStatistics, ModelConfig
from model.reconstructor import VALID_BLOCKS, cascade_flags, sinusoid_table

CONFIGS = [(cc, vb) for cc, vbs in VALID_BLOCKS.items() for vb in vbs]


@pytest.mark.parametrize("cc,vb", [(3, 2), (2, 1), (1, 0), (2, 0), (4, 3), (4, 16), (1, 5)])
def test_invalid_configurations_rejected_with_the_valid_list(cc, vb):
    with pytest.raises(ValueError, match=r"cross_clip=4: Vitblock_num in \[0, 1, 2, 4, 6, 8\]"):
        FRDUVAD(ModelConfig(256, cc, vb))


def test_feature_size_must_split_into_tokens_and_heads():
    with pytest.raises(ValueError, match="multiple of 256"):
        FRDUVAD(ModelConfig(200, 4, 8))


def test_block_kinds():
    assert cascade_flags(4, 8) == [False] * 4 + [True] * 4
    assert cascade_flags(2, 2) == [False, True]
    assert cascade_flags(4, 6) == [False] * 3 + [True] * 3
    assert cascade_flags(4, 1) == [False]
    assert cascade_flags(1, 8) == [False] * 8
    assert cascade_flags(4, 0) == []


def naive_attention(attn: SelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Per clip and per head, with clip k (k ≥ 1) using the queries of clip k−1 when cascading."""
    n, cc, t, d = x.shape
    h, hd = attn.num_heads, d // attn.num_heads
    wq, wk, wv = attn.qkv.weight.chunk(3)
    out = torch.empty(n, cc, t, d)
    for k in range(cc):
        src = max(k - 1, 0) if isinstance(attn, CascadeCrossAttention) else k
        q = (x[:, src] @ wq.T).view(n, t, h, hd)
        key = (x[:, k] @ wk.T).view(n, t, h, hd)
        val = (x[:, k] @ wv.T).view(n, t, h, hd)
        for head in range(h):
            a = torch.softmax(q[:, :, head] @ key[:, :, head].transpose(1, 2) / math.sqrt(hd), dim=-1)
            out[:, k, :, head * hd:(head + 1) * hd] = a @ val[:, :, head]
    return attn.proj(out)


@pytest.mark.parametrize("cc", [1, 2, 4])
@pytest.mark.parametrize("cascade", [False, True])
@pytest.mark.parametrize("heads", [4, 16])  # heads of 8 values: the explicit softmax; of 2: SDPA
def test_attention_equals_per_clip_loop(cc, cascade, heads):
    torch.manual_seed(0)
    attn = (CascadeCrossAttention if cascade else SelfAttention)(32, num_heads=heads)
    x = torch.randn(3, cc, 16, 32)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), naive_attention(attn, x), rtol=1e-5, atol=1e-5)


def test_cascade_changes_only_clips_after_the_first():
    torch.manual_seed(0)
    msa, mca = SelfAttention(32, 4), CascadeCrossAttention(32, 4)
    mca.load_state_dict(msa.state_dict())
    x = torch.randn(2, 4, 16, 32)
    with torch.no_grad():
        a, b = msa(x), mca(x)
    torch.testing.assert_close(a[:, 0], b[:, 0])
    assert not torch.allclose(a[:, 1:], b[:, 1:])


def test_position_table_is_a_non_persistent_buffer():
    model = FRDUVAD(ModelConfig(256, 4, 2))
    assert not any("pos_embed" in k for k in model.state_dict())
    table = dict(model.named_buffers())["decoder.pos_embed"]
    assert table.shape == (16, 16)
    torch.testing.assert_close(table, sinusoid_table(16, 16))
    assert table[3, 0].item() == pytest.approx(math.sin(3.0), abs=1e-7)
    assert table[3, 1].item() == pytest.approx(math.cos(3.0), abs=1e-7)
    assert table[3, 5].item() == pytest.approx(math.cos(3.0 / 10000 ** (4 / 16)), abs=1e-7)


def test_init_xavier_zero_bias():
    model = FRDUVAD(ModelConfig(256, 4, 2))
    assert torch.count_nonzero(model.scorer.fc1.bias) == 0
    assert model.decoder.decoder_blocks[0].attn.qkv.bias is None
    w = model.decoder.decoder_blocks[0].attn.qkv.weight
    assert w.abs().max() <= math.sqrt(6 / sum(w.shape)) and w.std() > 0
    assert torch.all(model.decoder.norm.weight == 1)


def test_auxiliary_scorer_gets_no_gradient_and_stays_fixed():
    torch.manual_seed(0)
    model = FRDUVAD(ModelConfig(256, 4, 2, lab=True, bank_capacity=6)).train()
    assert not model.scorer_c2fpl.training
    aux_before = {k: v.clone() for k, v in model.scorer_c2fpl.state_dict().items()}
    others_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("scorer_c2fpl")}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    out = model.training_step(torch.rand(6, 2, 4, 256), generator=torch.Generator().manual_seed(0))
    opt.zero_grad()
    out.loss.backward()
    assert all(p.grad is None for p in model.scorer_c2fpl.parameters())
    assert model.scorer.fc1.weight.grad.abs().sum() > 0
    assert model.decoder.decoder_blocks[1].attn.qkv.weight.grad.abs().sum() > 0
    opt.step()
    for k, v in model.scorer_c2fpl.state_dict().items():
        torch.testing.assert_close(v, aux_before[k], rtol=0, atol=0)
    after = model.state_dict()
    for key in ("scorer.fc1.weight", "decoder.decoder_embed.weight", "decoder.decoder_blocks.1.mlp.0.weight"):
        assert not torch.equal(after[key], others_before[key]), key


def reference_step(model: FRDUVAD, x: torch.Tensor, bank: torch.Tensor, given: torch.Tensor | None) -> dict:
    """docs/model.md written out, on the model's own networks (called with the random state the step had)."""
    cfg, b = model.config, x.shape[0]
    inputs = torch.cat([x, bank]) if cfg.lab and len(bank) else x
    lossr = ((model.reconstruct(inputs) - inputs) ** 2).mean(dim=-1).max(dim=1).values  # (B+M, cc)
    threshold = lossr.mean() + lossr.std()
    recon_labels = (lossr[:b] >= threshold).float()
    s = model.scorer(x)  # (B, cc, 1), per crop then averaged over crops
    scores = torch.stack([s[:, : k + 1].mean(dim=1) for k in range(cfg.cross_clip)], dim=1)
    aux = {"c2fpl": (model.scorer_c2fpl(x) >= 0.5).squeeze(-1).float(), "labels": given,
           "none": torch.ones(b, cfg.cross_clip)}[cfg.aux]
    y = (recon_labels * aux).unsqueeze(-1)
    Ls = -(y * scores.log() + (1 - y) * (1 - scores).log()).mean()
    Lre = lossr[:b].mean()
    Ldi = torch.relu(-(lossr[b:] - threshold).mean()) if len(inputs) > b else torch.zeros(())
    flags = (scores.squeeze(-1) >= scores.mean() + cfg.delta * scores.std()) * y.squeeze(-1)
    keep = flags.any(dim=1) if cfg.lab_type == "wlab" else flags.all(dim=1)
    new_bank = torch.cat([bank, x[keep]]) if len(bank) else x[keep]
    return {"lossr": lossr, "threshold": threshold, "recon_labels": recon_labels, "aux_labels": aux,
            "pseudo_labels": y.squeeze(-1), "scores": scores, "Lre": Lre, "Ldi": Ldi, "Ls": Ls,
            "loss": Lre + 0.5 * Ldi + 2 * Ls, "bank": new_bank}


@pytest.mark.parametrize("cc,vb", CONFIGS)
def test_training_step_follows_the_algorithm(cc, vb):
    torch.manual_seed(cc * 10 + vb)
    aux = ("c2fpl", "labels", "none")[vb % 3]
    crops = 1 if vb % 2 else 3
    model = FRDUVAD(ModelConfig(256, cc, vb, lab=True, lab_type="wlab" if cc != 2 else "slab", lambdas=(1, 0.5, 2),
                                aux=aux, bank_capacity=100)).train()
    model.bank.load(torch.rand(2, crops, cc, 256))  # replayed from the first step on: Ldi and the threshold see it
    for step in range(2):
        x = torch.rand(4, crops, cc, 256) * (1 + 3 * (torch.rand(4, 1, 1, 1) > 0.5))
        labels = torch.randint(0, 2, (4, cc)).float() if aux == "labels" else None
        bank = model.bank.state()
        torch.manual_seed(step)
        out = model.training_step(x, labels)
        torch.manual_seed(step)  # the same disruption and scorer dropout
        with torch.no_grad():
            expected = reference_step(model, x, bank, labels)
        for name in ("lossr", "threshold", "scores", "Lre", "Ldi", "Ls", "loss"):
            torch.testing.assert_close(getattr(out, name).detach(), expected[name], rtol=1e-5, atol=1e-6, msg=name)
        for name in ("recon_labels", "aux_labels", "pseudo_labels"):
            assert torch.equal(getattr(out, name).float(), expected[name]), name
        assert out.bank_size == len(model.bank) == len(expected["bank"])
        torch.testing.assert_close(model.bank.state(), expected["bank"], rtol=0, atol=0)
    torch.testing.assert_close(model.score(x[:, :, 0]), model.scorer.eval()(x[:, :, 0]).squeeze(-1))


def test_the_batch_statistics_and_the_banks_gather_come_from_the_object_given():
    calls = []

    class Given(BatchStatistics):
        def mean_std(self, values, shared_from=None):
            calls.append((tuple(values.shape), shared_from))
            return values.new_tensor(-1.0), values.new_tensor(0.5)

        def gather(self, rows):
            return torch.cat([rows, rows.flip(0)])  # as if another process had flagged the same rows

    model = FRDUVAD(ModelConfig(256, 2, 2, lab=True, aux="none", bank_capacity=100)).eval()
    bank = torch.rand(3, 1, 2, 256)
    model.bank.load(bank)
    x = torch.rand(5, 1, 2, 256)
    out = model.training_step(x, statistics=Given())
    assert calls == [((8, 2), 5), ((5, 2, 1), None)]  # batch + bank (the bank's rows shared), then the scores
    assert out.threshold.item() == -0.5 and out.recon_labels.all()  # mean + std as given
    torch.testing.assert_close(out.Ldi.detach(), torch.relu(-(out.lossr[5:] + 0.5).mean()))
    assert torch.equal(model.bank.samples, torch.cat([bank, x, x.flip(0)]))  # every score >= -1 + 0.5 · 0.5


def test_the_model_imports_nothing_of_ranks_data_or_files():
    banned = {"utils", "dataset", "engine", "video", "deploy", "main", "run_test", "extract_features", "os", "pathlib",
              "io"}
    for path in sorted((ROOT / "model").glob("*.py")):
        tree = ast.parse(path.read_text())
        modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not {m.split(".")[0] for m in modules} & banned, path.name


def test_real_batch_size_is_used_with_the_bank():
    torch.manual_seed(0)
    model = FRDUVAD(ModelConfig(256, 2, 2, lab=True, aux="none")).eval()
    model.bank.load(torch.rand(3, 2, 2, 256))
    out = model.training_step(torch.rand(5, 2, 2, 256))
    assert out.lossr.shape == (8, 2)
    torch.testing.assert_close(out.Lre.detach(), out.lossr[:5].mean())
    expected_ldi = torch.relu(-(out.lossr[5:] - out.threshold).mean())
    torch.testing.assert_close(out.Ldi.detach(), expected_ldi)
    torch.testing.assert_close(out.threshold, out.lossr.mean() + out.lossr.std())
    torch.testing.assert_close(out.recon_labels, (out.lossr[:5] >= out.threshold).float())


def test_labels_aux_requires_labels():
    model = FRDUVAD(ModelConfig(256, 2, 2, aux="labels"))
    with pytest.raises(ValueError, match="aux_labels"):
        model.training_step(torch.rand(3, 1, 2, 256))
    out = model.training_step(torch.rand(3, 1, 2, 256), torch.tensor([[1.0, 0], [0, 1], [1, 1]]))
    torch.testing.assert_close(out.pseudo_labels, out.recon_labels * out.aux_labels)


def test_score_has_no_dropout_and_keeps_the_mode():
    model = FRDUVAD(ModelConfig(256, 4, 1)).train()
    x = torch.rand(7, 10, 256)
    torch.testing.assert_close(model.score(x), model.score(x))
    assert model.scorer.training


def test_bank_policies():
    x = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 2, 1)
    flags = torch.tensor([[1, 0], [1, 1], [0, 0]])
    weak, strong = LatentAnomalyBank(10, "wlab"), LatentAnomalyBank(10, "slab")
    weak.add(x, flags)
    strong.add(x, flags)
    assert weak.samples[:, 0, 0, 0].tolist() == [0.0, 1.0]
    assert strong.samples[:, 0, 0, 0].tolist() == [1.0]
    strong.add(x + 10, flags)
    assert strong.samples[:, 0, 0, 0].tolist() == [1.0, 11.0]  # old rows first
    with pytest.raises(ValueError, match="policy"):
        LatentAnomalyBank(3, "xlab")


def fill(seed: int) -> LatentAnomalyBank:
    bank = LatentAnomalyBank(5, "wlab")
    gen = torch.Generator().manual_seed(seed)
    for start in (0, 4, 8):
        bank.add(torch.arange(start, start + 4.0).view(4, 1, 1, 1), torch.ones(4, 1), gen)
    return bank


def test_bank_overflow_keeps_capacity_and_is_seeded():
    a, b, c = fill(0), fill(0), fill(1)
    assert len(a) == 5
    rows = a.samples.flatten().tolist()
    assert len(set(rows)) == 5 and set(rows) <= set(range(12))
    torch.testing.assert_close(a.samples, b.samples)
    assert not torch.equal(a.samples, c.samples)


def test_bank_state_round_trip():
    bank = fill(0)
    other = LatentAnomalyBank(5)
    other.load(bank.state())
    torch.testing.assert_close(other.samples, bank.samples)
    other.load(LatentAnomalyBank(5).state())
    assert len(other) == 0


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = FRDUVAD(ModelConfig(256, 4, 4, aux="none")).train()
    recomputed = FRDUVAD(ModelConfig(256, 4, 4, aux="none", checkpoint_blocks=True)).train()
    recomputed.load_state_dict(plain.state_dict())
    recomputed.decoder.checkpoint_rows = 4  # three chunks of the 3 × 4 (sample, crop) rows
    x = torch.rand(3, 4, 4, 256)
    saved, losses = [], []
    for model in (plain, recomputed):
        sizes = []

        def pack(t, sizes=sizes):
            sizes.append(t.numel())
            return t

        torch.manual_seed(1)  # the same disruption and scorer dropout in both
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model.training_step(x)
        out.loss.backward()
        saved.append(sum(sizes))
        losses.append(out.loss.detach())
    assert saved[1] < saved[0] / 2
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-6, atol=0)
    for (name, a), b in zip(plain.named_parameters(), recomputed.parameters()):
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7, msg=name)
