"""One driver per framework, each run in a process of its own (bench/peers/driver.py)."""
