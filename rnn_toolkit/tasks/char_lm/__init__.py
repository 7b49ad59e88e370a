"""The char_lm task: see `rnn_toolkit.tasks` for what each file holds."""
