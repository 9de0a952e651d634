"""The bundled examples: task functions (:mod:`.tasks`, allowed by default) and the graph
documents the demo submits."""
