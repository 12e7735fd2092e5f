"""The device, dtype and CPU threads a model runs with."""

from __future__ import annotations

import os

import torch

from debate_ft.errors import ModelError


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"backend.device={device} but no CUDA GPU is visible; use backend.device=cpu")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return gpu_half() if device.type == "cuda" else torch.float32
    if dtype == "fast":
        return gpu_half() if device.type == "cuda" else torch.bfloat16 if cpu_has_bfloat16() else torch.float32
    if dtype == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise ModelError(f"backend.dtype=bfloat16: the GPU {device} has no bfloat16 (before Ampere); use float16")
    return getattr(torch, dtype)


def gpu_half() -> torch.dtype:
    """bfloat16 where the GPU computes it (Ampere and later), else float16."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


def cpu_has_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); elsewhere torch emulates it, slower
    than float32. torch exposes the check only privately (torch is pinned)."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def set_threads(threads: int | None) -> None:
    torch.set_num_threads(threads or os.cpu_count() or 1)
