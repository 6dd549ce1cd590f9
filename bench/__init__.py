"""Benchmarks and soaks of ltx-retake: each module has a `main(argv)` that runs it and prints a table."""
