from mdc_widgets.cli import main

raise SystemExit(main())
