"""The frame labeller task: see `rnn_toolkit.tasks` for what each file holds."""
