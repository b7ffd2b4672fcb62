"""PatchCore embedding vs a transcription of the original code path (unfold, permute, resize, two poolings)."""

import pytest
import torch
import torch.nn.functional as F

from autopatch.features.patchcore import patchcore_embed, pool_channels


def _original_patchcore_embed(maps, patch_size, pretrain_dim, target_dim):
    """The steps of patchcore-inspection's PatchCore._embed, written out one by one."""
    padding = (patch_size - 1) // 2
    patches, shapes = [], []
    for x in maps:
        unfolded = F.unfold(x, kernel_size=patch_size, padding=padding)
        unfolded = unfolded.reshape(*x.shape[:2], patch_size, patch_size, -1).permute(0, 4, 1, 2, 3)
        patches.append(unfolded)
        shapes.append(x.shape[-2:])
    ref = shapes[0]
    for i in range(1, len(patches)):
        f = patches[i].reshape(patches[i].shape[0], shapes[i][0], shapes[i][1], *patches[i].shape[2:])
        f = f.permute(0, -3, -2, -1, 1, 2)
        base = f.shape
        f = f.reshape(-1, *f.shape[-2:])
        f = F.interpolate(f.unsqueeze(1), size=tuple(ref), mode="bilinear", align_corners=False).squeeze(1)
        f = f.reshape(*base[:-2], ref[0], ref[1]).permute(0, -2, -1, 1, 2, 3)
        patches[i] = f.reshape(len(f), -1, *f.shape[-3:])
    flat = [p.reshape(-1, *p.shape[-3:]) for p in patches]
    pooled = [F.adaptive_avg_pool1d(p.reshape(len(p), 1, -1), pretrain_dim).squeeze(1) for p in flat]
    stacked = torch.stack(pooled, dim=1).reshape(len(pooled[0]), 1, -1)
    return F.adaptive_avg_pool1d(stacked, target_dim).reshape(len(pooled[0]), -1)


def test_pool_channels_matches_adaptive_avg_pool1d():
    torch.manual_seed(0)
    for in_dim, out_dim in [(10, 4), (7, 7), (36, 1024), (4608, 1024), (2048, 1024)]:
        x = torch.randn(2, in_dim, 5, dtype=torch.float64)
        expected = F.adaptive_avg_pool1d(x.transpose(1, 2).reshape(10, 1, in_dim), out_dim).view(2, 5, out_dim)
        torch.testing.assert_close(pool_channels(x, out_dim), expected.transpose(1, 2))


@pytest.mark.parametrize(("pretrain_dim", "target_dim"), [(16, 12), (100, 64), (1024, 1024)])
def test_embedding_matches_original_steps(pretrain_dim, target_dim):
    torch.manual_seed(0)
    maps = [torch.randn(2, 6, 8, 8), torch.randn(2, 10, 4, 4), torch.randn(2, 3, 2, 3)]
    ours = patchcore_embed(maps, 3, pretrain_dim, target_dim)  # [N, D, H, W]
    expected = _original_patchcore_embed(maps, 3, pretrain_dim, target_dim)  # [N*H*W, D]
    torch.testing.assert_close(ours.permute(0, 2, 3, 1).reshape(-1, target_dim), expected, rtol=1e-5, atol=1e-5)
