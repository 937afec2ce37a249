"""How long and how wide each part of ``python -m benchmarks compare`` runs, and its options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.stacks import PROJECT_ROOT
from benchmarks.sweep import SweepConfig

DEFAULT_ARTIFACT = PROJECT_ROOT / "artifacts" / "driver-ranking"


@dataclass(frozen=True)
class Plan:
    """How long and how wide each part runs."""

    point_s: float
    warmup_s: float
    berth: SweepConfig
    baseline: SweepConfig
    kernel_seconds: float
    kernel_batches: tuple[int, ...]
    feature_reads: int
    protocol_sweeps: bool
    batching_rates: tuple[float, ...]  # fixed points; empty: sweep
    batching_sweep: SweepConfig = field(default_factory=SweepConfig)
    widths: tuple[tuple[int, ...], ...] = ()
    profile_s: float = 0.0
    stage_requests: int = 20
    shadow_rounds: int = 1  # alternating off/on points of the shadow-cost measurement
    shadow_point_s: float = 0.5  # short points, many rounds: disturbances hit both sides
    peers: SweepConfig | None = None  # predictor peers + tuned/floor/REST-hop chains; None: skip
    peer_point_s: float = 1.0


PLANS = {
    "full": Plan(
        point_s=6.0,
        warmup_s=1.0,
        berth=SweepConfig(start_rps=20, factor=1.4, refine=2, max_points=20, min_requests=600),
        baseline=SweepConfig(start_rps=10, factor=1.4, refine=2, max_points=20, min_requests=600),
        kernel_seconds=3.0,
        kernel_batches=(1, 10, 64, 256),
        feature_reads=2000,
        protocol_sweeps=True,
        batching_rates=(),
        batching_sweep=SweepConfig(start_rps=200, factor=1.5, refine=2, max_points=12),
        widths=((512, 256), (1024, 512)),
        profile_s=8.0,
        stage_requests=500,
        shadow_rounds=16,
        shadow_point_s=2.0,
        peers=SweepConfig(start_rps=100, factor=1.4, refine=2, max_points=14, min_requests=300),
        peer_point_s=3.0,
    ),
    "quick": Plan(
        point_s=2.0,
        warmup_s=0.5,
        berth=SweepConfig(  # 8 points reach ~1000 rps, 12 ~7000
            start_rps=40, factor=1.6, refine=1, max_points=12, min_requests=80, max_point_s=3
        ),
        baseline=SweepConfig(
            start_rps=10, factor=1.6, refine=1, max_points=9, min_requests=80, max_point_s=3
        ),
        kernel_seconds=0.5,
        kernel_batches=(1, 10, 64, 256),
        feature_reads=400,
        protocol_sweeps=False,
        batching_rates=(400.0, 1600.0),
        widths=((512, 256),),
        profile_s=3.0,
        stage_requests=150,
        shadow_rounds=8,
        shadow_point_s=1.0,
        # from 50 rps: on a slow machine a peer that misses 10 ms at 200 rps still gets a figure
        peers=SweepConfig(start_rps=50, factor=2.0, refine=2, max_points=8, cooldown_s=0.5),
        peer_point_s=0.8,
    ),
    "smoke": Plan(
        point_s=1.0,
        warmup_s=0.3,
        berth=SweepConfig(
            start_rps=20,
            factor=2.0,
            refine=0,
            probe_down=0,
            max_points=2,
            extend=0,
            cooldown_s=0.2,
        ),
        baseline=SweepConfig(
            start_rps=10,
            factor=2.0,
            refine=0,
            probe_down=0,
            max_points=2,
            extend=0,
            cooldown_s=0.2,
        ),
        kernel_seconds=0.2,
        kernel_batches=(64,),
        feature_reads=50,
        protocol_sweeps=False,
        batching_rates=(200.0,),
    ),
}


@dataclass
class Options:
    out: Path
    mode: str = "full"
    artifact: Path = DEFAULT_ARTIFACT
    data: Path | None = None
    bound_ms: float = 10.0
    candidates: int = 10
    profile: bool = True
    nice: int = 0
    arrivals: str = "constant"
    quiet_wait_s: float = 0.0  # wait up to this long for other load on the machine to settle
    argv: list[str] = field(default_factory=list)
