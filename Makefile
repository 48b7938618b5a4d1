# The two set-up commands: `make demo` (try it) and `make test` (prove it).
.PHONY: demo walkthrough test bench screenshots clean

demo:            ## the app on a throwaway vault of fake credentials
	@scripts/bootstrap.sh app
	.venv/bin/aegis-vault demo

walkthrough:     ## a scripted tour of the command line on a throwaway vault
	@scripts/bootstrap.sh app
	@scripts/cli_walkthrough.sh

test:
	@scripts/bootstrap.sh test
	.venv/bin/python -m pytest -n 2 -q

bench:
	@scripts/bootstrap.sh bench
	.venv/bin/python bench/run_all.py

screenshots:
	@scripts/bootstrap.sh app
	.venv/bin/python scripts/screenshots.py

clean:
	rm -rf .venv .pytest_cache vault-demo
