"""What a person touches: the click command line and the Textual console."""
