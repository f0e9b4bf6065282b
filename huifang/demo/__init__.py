"""`huifang demo`: the closed loop on simulated citizens, agents and units (`run`), its
summary from the statistics' own functions (`summary`), the simulated staff (`staff`) and
the console served on the demo's database (`serve`)."""

from huifang.demo.run import (
    DEMO_ACCOUNTS,
    DEMO_PASSWORD,
    MODEL_HINT,
    DemoOptions,
    DemoReport,
    demo_settings,
    run_demo,
)
from huifang.demo.serve import PortBusy, demo_app, reserve_port
from huifang.demo.summary import demo_summary, render_summary

__all__ = [
    "DEMO_ACCOUNTS",
    "DEMO_PASSWORD",
    "MODEL_HINT",
    "DemoOptions",
    "DemoReport",
    "demo_app",
    "demo_settings",
    "demo_summary",
    "PortBusy",
    "render_summary",
    "reserve_port",
    "run_demo",
]
