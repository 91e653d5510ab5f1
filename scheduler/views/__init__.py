"""What the CLI's `--format json` prints and the dashboard serves: one builder per document,
over the history store (and jobs.yaml for `plan`), so both say exactly the same thing."""
