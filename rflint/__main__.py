from rflint.cli import entry

entry()
