"""Engine backends; each module imports its heavy library only when an engine is built."""
