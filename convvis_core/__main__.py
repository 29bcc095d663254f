from convvis_core.cli import main

raise SystemExit(main())
