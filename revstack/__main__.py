from revstack.cli import main

raise SystemExit(main())
