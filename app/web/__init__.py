"""The web layer: the callback blueprint, the Flask extension that wires everything, the CLI."""
