"""What a person touches: the click command line (:mod:`.cli`, one module per command group)
and the Textual console (:mod:`.app`, with :mod:`.screens`, :mod:`.widgets`, :mod:`.data` for
its data sources and :mod:`.messages` for what screens ask of the app)."""
