from lossfuzz.harness.cli import main

raise SystemExit(main())
