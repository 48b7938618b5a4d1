# The two set-up commands: `make demo` (try it) and `make test` (prove it).
.PHONY: demo test bench screenshots clean

demo:
	@scripts/bootstrap.sh app
	@scripts/demo.sh

test:
	@scripts/bootstrap.sh test
	.venv/bin/python -m pytest -n 2 -q

bench:
	@scripts/bootstrap.sh bench
	.venv/bin/python bench/run_all.py

clean:
	rm -rf .venv .pytest_cache vault-demo
