"""`python -m client` is the `trainserve` command."""
from client.cli import main

main()
