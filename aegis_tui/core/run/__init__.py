"""Running a command with secrets in its environment and its output masked on the way out."""
