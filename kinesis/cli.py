"""The `kinesis` command line: one entry point, subcommands in their own modules."""
def main(argv=None) -> int:
    raise SystemExit("not yet")
