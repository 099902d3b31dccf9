"""`python -m runner.cli`: what a job script runs (the venv's own Python, wherever `runner` is on PATH)."""
from runner.cli import main

main()
