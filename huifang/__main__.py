"""`python -m huifang` runs the same command line as `huifang`."""

from huifang.cli import app

app(prog_name="huifang")
