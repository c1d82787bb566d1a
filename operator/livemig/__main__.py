from livemig.cli import main

raise SystemExit(main())
