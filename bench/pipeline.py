"""Pipeline benchmark: `python bench/pipeline.py [vigil bench options]` (same as `vigil bench`)."""
import sys

from app.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))
