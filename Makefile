# Convenience aliases; the README's commands are the scripts themselves.
.PHONY: demo test setup bench-hub
demo:
	./scripts/demo.sh
test:
	./scripts/test.sh
setup:
	./scripts/setup.sh
bench-hub:
	.venv/bin/python bench/hub_fanout.py
