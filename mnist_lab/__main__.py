"""`python -m mnist_lab ...`: see mnist_lab/cli.py."""

from mnist_lab.cli import main

raise SystemExit(main())
