from experiments.core.cli import main

raise SystemExit(main())
